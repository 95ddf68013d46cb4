"""Multi-stream detection with an OpenVINO IR: `python detect.py weights=.../model.xml source=[...] mode=...`.

Every key is described in conf/detect.yaml; `dry_run=true` only checks the command.
"""

from pathlib import Path

from yolo_slim.cli.apps import run_app

if __name__ == "__main__":
    run_app("detect", Path(__file__).resolve().parent / "conf")
