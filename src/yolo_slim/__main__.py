"""`python -m yolo_slim COMMAND ...`: inspection commands.

    info CFG_OR_NAME      per-layer table, params, BFLOPs, .weights size
    graph CFG_OR_NAME     the channel dependency graph: what is prunable and why not
    sparsity CFG WEIGHTS  the BatchNorm-gamma sparsity summary of a .weights or .ckpt
    anchors DATA          anchors fitted to a dataset's boxes (k-means, 1 - IoU), BPR and mean IoU

Each command lives in `yolo_slim.cli.<command>` and exposes `add_arguments(parser)`
and `run(args) -> int`. A `YoloSlimError` prints as one line, exit status 2; Ctrl-C or
SIGTERM prints one line, exit status 130 or 143 (`yolo_slim.cli.guard`).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from yolo_slim.cli.guard import command_status

COMMANDS = {
    "info": "print a darknet-style per-layer table with params, BFLOPs and .weights size",
    "sparsity": "summarise BatchNorm gamma sparsity of a .weights file or checkpoint",
    "graph": "print the channel dependency graph: coupled channel groups, what is prunable and why not",
    "anchors": "fit anchors to a dataset's boxes at the training size; report BPR and mean IoU, optionally write them into a cfg",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m yolo_slim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f"yolo_slim.cli.{name}")
        module.add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module = importlib.import_module(f"yolo_slim.cli.{args.command}")
    try:
        return command_status(lambda: int(module.run(args) or 0), f"yolo_slim {args.command}")
    except BrokenPipeError:  # `python -m yolo_slim info yolov4 | head`: the reader left
        sys.stdout = None  # nothing more to flush at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
