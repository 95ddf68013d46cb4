"""Validate any model file: `python val.py weights=RUN/checkpoints/best.ckpt [data=PATH] [img_size=N]`.

Prints P, R, mAP@0.5 and mAP@0.5:0.95 per class for a .ckpt, a .weights (with
model.cfg=) or an OpenVINO IR. Every key is described in conf/val.yaml; `dry_run=true`
only checks the command.
"""

from pathlib import Path

from yolo_slim.cli.apps import run_app

if __name__ == "__main__":
    run_app("val", Path(__file__).resolve().parent / "conf")
