"""Export a darknet model to ONNX and OpenVINO IR: `python export.py model.cfg=... weights=... [data=...]`.

Every key is described in conf/export.yaml; `dry_run=true` only checks the command.
"""

from pathlib import Path

from yolo_slim.cli.apps import run_app

if __name__ == "__main__":
    run_app("export", Path(__file__).resolve().parent / "conf")
