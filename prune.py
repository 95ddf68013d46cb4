"""Prune a YOLO model: `python prune.py model.cfg=... weights=... data=... prune=channel|layer|layer_channel`.

Every key is described in conf/prune.yaml; `dry_run=true` only checks the command.
"""

from pathlib import Path

from yolo_slim.cli.apps import run_app

if __name__ == "__main__":
    run_app("prune", Path(__file__).resolve().parent / "conf")
