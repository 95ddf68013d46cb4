"""The whole slimming process: `python pipeline.py [experiment=NAME] [data=PATH] [stages=[...]]`."""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))


@hydra.main(version_base="1.3", config_path="conf", config_name="pipeline")
def main(cfg: DictConfig) -> None:
    from yolo_slim.errors import YoloSlimError
    from yolo_slim.pipeline import run_pipeline

    try:
        run_pipeline(cfg)
    except YoloSlimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    from yolo_slim.cli.overrides import rename_override

    sys.argv = rename_override(sys.argv, "data", "dataset")  # data=PATH names the dataset here
    main()
