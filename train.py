"""Train, fine-tune or resume a YOLO model: `python train.py [experiment=NAME] [key=value ...]`."""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    from yolo_slim.errors import YoloSlimError
    from yolo_slim.train_task import train

    try:
        train(cfg)
    except YoloSlimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
