"""Prune a YOLO model: `python prune.py model.cfg=... weights=... prune=channel|layer|layer_channel`."""

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))


@hydra.main(version_base="1.3", config_path="conf", config_name="prune")
def main(cfg: DictConfig) -> None:
    from yolo_slim.errors import YoloSlimError
    from yolo_slim.prune.sweep import fail_job
    from yolo_slim.prune.task import prune

    try:
        metrics, artifacts = prune(cfg)
    except YoloSlimError as exc:
        return fail_job(exc)  # exits 2; in a multirun, records it so the other jobs and the sweep table go on
    for key, value in sorted(metrics.items()):
        print(f"{key}: {value:.6g}")
    for key, path in artifacts.items():
        print(f"{key}: {path}")


if __name__ == "__main__":
    main()
