"""`python -m yolo_slim graph CFG_OR_NAME`: the channel dependency graph of a network.

Prints each channel group (conv layers whose output channels are cut together), how
many of its channels are prunable and, when some are not, why; the split routes whose
halves keep balanced counts; and the residual units layer pruning may remove.
"""

from __future__ import annotations

import argparse

from yolo_slim.cli import positive_int
from yolo_slim.darknet.cfg import load_cfg
from yolo_slim.graph import build_graph, format_graph




def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cfg", metavar="CFG_OR_NAME", help="a darknet .cfg file or a model-zoo name (yolov4, yolov4-tiny, ...)")
    parser.add_argument("--classes", type=positive_int, help="rewrite the heads for this many classes (default: as in the cfg)")


def run(args: argparse.Namespace) -> int:
    cfg = load_cfg(args.cfg, classes=args.classes)
    print(format_graph(build_graph(cfg)))
    return 0
