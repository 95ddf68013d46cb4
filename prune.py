"""Prune a YOLO model: `python prune.py model.cfg=... weights=... prune=channel|layer|layer_channel`."""

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))


@hydra.main(version_base="1.3", config_path="conf", config_name="prune")
def main(cfg: DictConfig) -> None:
    from yolo_slim.cli.guard import run_command
    from yolo_slim.prune.sweep import fail_job
    from yolo_slim.prune.task import prune

    # a user error exits 2 (in a multirun it is recorded so the other jobs and the sweep table go on)
    result = run_command(lambda: prune(cfg), "prune", on_error=fail_job)
    if result is None:
        return None
    metrics, artifacts = result
    for key, value in sorted(metrics.items()):
        print(f"{key}: {value:.6g}")
    for key, path in artifacts.items():
        print(f"{key}: {path}")


if __name__ == "__main__":
    main()
