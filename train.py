"""Train, fine-tune or resume a YOLO model: `python train.py [experiment=NAME] [key=value ...]`.

Every key is described in conf/train.yaml; `dry_run=true` only checks the command.
"""

from pathlib import Path

from yolo_slim.cli.apps import run_app

if __name__ == "__main__":
    run_app("train", Path(__file__).resolve().parent / "conf")
