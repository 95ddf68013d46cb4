"""Export a darknet model to ONNX and OpenVINO IR: `python export.py model.cfg=... weights=...`."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
def main(cfg: DictConfig) -> None:
    from yolo_slim.cli.guard import run_command
    from yolo_slim.export.task import export

    metrics, artifacts = run_command(lambda: export(cfg), "export")  # one line and exit 2 / 130 / 143
    for key, value in sorted(metrics.items()):
        print(f"{key}: {value:.6g}")
    for key, path in artifacts.items():
        print(f"{key}: {path}")


if __name__ == "__main__":
    from yolo_slim.cli.overrides import rename_override

    sys.argv = rename_override(sys.argv, "data", "dataset")  # data=PATH names the dataset here
    main()
