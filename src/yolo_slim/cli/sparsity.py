"""`python -m yolo_slim sparsity CFG WEIGHTS`: is it sparse enough yet?

Prints, for a darknet `.weights` file or a Lightning checkpoint, the same sparsity
figures the `BNSparsity` callback logs every epoch: the share of |gamma| below 1e-2
and 1e-3, the mean |gamma|, the threshold ceiling and the BFLOPs left after channel
pruning at a few global percents. `--plot` saves the |gamma| histogram.
"""

from __future__ import annotations

import argparse
import json

from yolo_slim.cli import positive_int
from yolo_slim.errors import ConfigError


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cfg", metavar="CFG_OR_NAME", help="the darknet .cfg (or zoo name) the weights belong to")
    parser.add_argument("weights", metavar="WEIGHTS", help="a darknet .weights file or a Lightning .ckpt (its EMA weights)")
    parser.add_argument("--classes", type=positive_int, help="rewrite the heads for this many classes (as the weights were trained)")
    parser.add_argument("--img-size", type=positive_int, metavar="PIXELS", help="input size the BFLOPs are counted at (default: the [net] size)")
    parser.add_argument("--scope", default="prunable", help="prunable (default), prunable+shortcut or all")
    parser.add_argument("--percents", type=_percent, nargs="+", default=[0.5, 0.7, 0.9], metavar="P", help="global percents to predict BFLOPs for")
    parser.add_argument("--plot", metavar="PNG", help="also save a histogram of |gamma| to this PNG")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")


def run(args: argparse.Namespace) -> int:
    from yolo_slim.model.loading import load_model
    from yolo_slim.sparsity.scope import SCOPES, select_bn_layers
    from yolo_slim.sparsity.stats import gamma_vector, plot_gamma_histograms, sparsity_summary

    if args.scope not in SCOPES:
        raise ConfigError(f"--scope {args.scope!r} is not supported; expected one of {', '.join(SCOPES)}")
    model = load_model(args.cfg, args.weights, classes=args.classes, img_size=args.img_size)
    layers = select_bn_layers(model, args.scope)
    summary = sparsity_summary(model, layers, args.percents)
    if args.plot:
        plot_gamma_histograms({args.weights: gamma_vector(model, layers)}, args.plot)
    if args.json:
        print(json.dumps({"layers": len(layers), **summary.scalars()}, indent=2))
    else:
        print(f"{args.weights}: {len(layers)} BatchNorm layers in scope {args.scope!r}")
        print(summary.format())
    return 0
