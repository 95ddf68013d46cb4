"""Detect with any model file: `python predict.py weights=RUN/checkpoints/best.ckpt source=images/`.

Images, folders, videos, cameras and streams; writes annotated images or videos, YOLO
txt labels and predictions.json, and prints where. Every key is described in
conf/predict.yaml; `dry_run=true` only checks the command.
"""

from pathlib import Path

from yolo_slim.cli.apps import run_app

if __name__ == "__main__":
    run_app("predict", Path(__file__).resolve().parent / "conf")
