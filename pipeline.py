"""The whole slimming process: `python pipeline.py [experiment=NAME] [data=PATH] [stages=[...]]`.

Every key is described in conf/pipeline.yaml; `dry_run=true` only checks the command.
"""

from pathlib import Path

from yolo_slim.cli.apps import run_app

if __name__ == "__main__":
    run_app("pipeline", Path(__file__).resolve().parent / "conf")
