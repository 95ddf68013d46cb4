"""Train, fine-tune or resume a YOLO model: `python train.py [experiment=NAME] [key=value ...]`."""

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    from yolo_slim.cli.guard import run_command
    from yolo_slim.train_task import train

    run_command(lambda: train(cfg), "train")  # one line and exit 2 on a user error, 130/143 on Ctrl-C/SIGTERM


if __name__ == "__main__":
    main()
