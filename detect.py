"""Multi-stream detection with an OpenVINO IR: `python detect.py model=.../model.xml source=[...] mode=...`."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig


# conf/detect/ alone is the search path, so `model=PATH` is a value, not the conf/model group
@hydra.main(version_base="1.3", config_path="conf/detect", config_name="detect")
def main(cfg: DictConfig) -> None:
    from yolo_slim.cli.guard import run_command
    from yolo_slim.deploy.task import detect

    metrics, _ = run_command(lambda: detect(cfg), "detect")  # one line and exit 2 / 130 / 143
    for key, value in sorted(metrics.items()):
        print(f"{key}: {value:.4g}")
    sys.exit(1 if metrics["detect/failed"] else 0)


if __name__ == "__main__":
    main()
