"""Multi-stream detection with an OpenVINO IR: `python detect.py model=.../model.xml source=[...] mode=...`."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from yolo_slim.errors import YoloSlimError


@hydra.main(version_base="1.3", config_path="conf", config_name="detect")
def main(cfg: DictConfig) -> None:
    from yolo_slim.deploy.task import detect

    try:
        metrics, artifacts = detect(cfg)
    except YoloSlimError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    for key, value in sorted(metrics.items()):
        print(f"{key}: {value:.4g}")
    if metrics["detect/failed"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
