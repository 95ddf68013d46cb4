"""The whole slimming process: `python pipeline.py [experiment=NAME] [data=PATH] [stages=[...]]`."""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))


@hydra.main(version_base="1.3", config_path="conf", config_name="pipeline")
def main(cfg: DictConfig) -> None:
    from yolo_slim.cli.guard import run_command
    from yolo_slim.pipeline import run_pipeline

    run_command(lambda: run_pipeline(cfg), "pipeline")  # one line and exit 2 / 130 / 143


if __name__ == "__main__":
    from yolo_slim.cli.overrides import rename_override

    sys.argv = rename_override(sys.argv, "data", "dataset")  # data=PATH names the dataset here
    main()
