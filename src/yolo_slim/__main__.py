"""`yolo-slim COMMAND ...` (or `python -m yolo_slim COMMAND ...`): every command in one.

The Hydra apps take ``key=value`` overrides exactly as the top-level scripts do
(``yolo-slim train experiment=yolov4_baseline data=my.data`` is ``python train.py
experiment=yolov4_baseline data=my.data``), with the configs the package ships
(`yolo_slim.config.location.package_conf_dir`); their runs go under the current
directory (``$YOLO_SLIM_OUTPUT_ROOT`` or ``paths.output_root=`` choose another root):

    train     train, fine-tune or resume a model
    val       P, R, mAP@0.5 and mAP@0.5:0.95 per class of a .weights, .ckpt or OpenVINO IR
    predict   detections of any model file on images, folders, videos and streams
    prune     channel and layer pruning, sweeps (-m) and the search for the optimal point
    export    ONNX and OpenVINO IR (FP32, FP16, INT8)
    detect    multi-stream detection with an OpenVINO IR
    pipeline  the whole slimming process, resumable

The inspection commands take ordinary options:

    info CFG_OR_NAME      per-layer table, params, BFLOPs, .weights size
    graph CFG_OR_NAME     the channel dependency graph: what is prunable and why not
    sparsity CFG WEIGHTS  the BatchNorm-gamma sparsity summary of a .weights or .ckpt
    anchors DATA          anchors fitted to a dataset's boxes (k-means, 1 - IoU), BPR and mean IoU

Each inspection command lives in `yolo_slim.cli.<command>` and exposes
`add_arguments(parser)` and `run(args) -> int`. A `YoloSlimError` prints as one line,
exit status 2; Ctrl-C or SIGTERM prints one line, exit status 130 or 143
(`yolo_slim.cli.guard`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from yolo_slim.cli.guard import command_status
from yolo_slim.errors import YoloSlimError

APP_HELP = {
    "train": "train, fine-tune or resume a model (key=value overrides as for train.py)",
    "val": "P, R, mAP@0.5 and mAP@0.5:0.95 per class of a .weights, .ckpt or OpenVINO IR on a data set",
    "predict": "detections of any model file on images, folders, videos and streams: annotated images, YOLO labels, JSON",
    "prune": "prune channels and residual units; sweeps with -m",
    "export": "export to ONNX and OpenVINO IR (FP32, FP16, INT8)",
    "detect": "multi-stream detection with an OpenVINO IR",
    "pipeline": "the whole slimming process, resumable",
}

COMMANDS = {
    "info": "print a darknet-style per-layer table with params, BFLOPs and .weights size",
    "sparsity": "summarise BatchNorm gamma sparsity of a .weights file or checkpoint",
    "graph": "print the channel dependency graph: coupled channel groups, what is prunable and why not",
    "anchors": "fit anchors to a dataset's boxes at the training size; report BPR and mean IoU, optionally write them into a cfg",
}


def build_parser() -> argparse.ArgumentParser:
    """The parser of the inspection commands (the Hydra apps are listed for --help only)."""
    parser = argparse.ArgumentParser(prog="yolo-slim", description="Every yolo_slim command in one (also python -m yolo_slim).",
                                     epilog="Hydra apps: yolo-slim APP --help lists their keys (as python APP.py --help does).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in APP_HELP.items():
        app = sub.add_parser(name, help=help_text, description=help_text, add_help=False)
        app.add_argument("overrides", nargs=argparse.REMAINDER, metavar="key=value")
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f"yolo_slim.cli.{name}")
        module.add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def run_hydra_app(app: str, argv: list[str]) -> int:
    """`yolo-slim APP ARGV`: the app of the top-level script `APP.py` on the package's configs,
    writing under the current directory."""
    from yolo_slim.cli.apps import run_app
    from yolo_slim.config.location import package_conf_dir

    try:
        conf_dir = package_conf_dir()
    except YoloSlimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    run_app(app, conf_dir, argv, project_root=Path.cwd(), relaunch=[sys.argv[0], app, *argv], prog=f"yolo-slim {app}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in APP_HELP:
        return run_hydra_app(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    module = importlib.import_module(f"yolo_slim.cli.{args.command}")
    try:
        return command_status(lambda: int(module.run(args) or 0), f"yolo_slim {args.command}")
    except BrokenPipeError:  # `yolo-slim info yolov4 | head`: the reader left
        sys.stdout = None  # nothing more to flush at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
