"""`python -m yolo_slim anchors DATA --img-size N`: anchors fitted to a dataset's boxes.

DATA is anything a dataset is given as: ``builtin``, a darknet ``.data`` file, an
Ultralytics ``data.yaml``, a COCO json or a dataset folder. The training boxes are
measured letterboxed to ``--img-size`` and clustered with darknet's k-means
(``1 - IoU``); it prints the anchors, their best possible recall (BPR) and mean
best IoU, and with ``--cfg`` the same figures for that cfg's own anchors.
``--write OUT.cfg`` writes the cfg with the fitted anchors in every ``[yolo]``
head (masks unchanged), atomically, never over the cfg it read.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from yolo_slim.cli import positive_int
from yolo_slim.errors import ConfigError


def _option(text: str) -> tuple[str, Any]:
    """argparse type: ``KEY=VALUE`` with VALUE an int, a float or a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    for convert in (int, float):
        try:
            return key.strip(), convert(value)
        except ValueError:
            continue
    return key.strip(), value


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 1, got {text!r}") from None
    if not value > 1:
        raise argparse.ArgumentTypeError(f"expected a number > 1, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", metavar="DATA", help="builtin, a .data file, a data.yaml, a COCO .json or a dataset folder")
    parser.add_argument("--img-size", type=positive_int, required=True, metavar="PIXELS", help="the training input size (boxes are measured letterboxed to it)")
    parser.add_argument("--cfg", metavar="CFG_OR_NAME", help="a .cfg or zoo name: also measure its anchors; the anchor count defaults to its own")
    parser.add_argument("--classes", type=positive_int, help="with --cfg: rewrite its heads for this many classes (default: as in the cfg)")
    parser.add_argument("--write", metavar="OUT.cfg", help="write the cfg with the fitted anchors here (needs --cfg; never the --cfg file itself)")
    parser.add_argument("--n", type=positive_int, metavar="K", help="number of anchors (default: the cfg's, else 9)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the k-means starts (default 0)")
    parser.add_argument("--anchor-t", type=_ratio, default=4.0, metavar="RATIO", help="width/height ratio the BPR allows (default 4, the loss's)")
    parser.add_argument("--builtin", type=_option, action="append", default=[], metavar="KEY=VALUE",
                        help="an option of the built-in data for DATA=builtin, e.g. preset=aerial (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the anchors and figures as one JSON object")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def run(args: argparse.Namespace) -> int:
    from yolo_slim.darknet.anchors import anchor_count, used_anchors, with_anchors
    from yolo_slim.darknet.cfg import load_cfg, write_cfg
    from yolo_slim.data.anchors import fit_anchors
    from yolo_slim.data.sources import resolve_dataset

    if args.write and not args.cfg:
        raise ConfigError("--write needs --cfg: the cfg to write the anchors into")
    if args.classes and not args.cfg:
        raise ConfigError("--classes needs --cfg")
    out = Path(args.write) if args.write else None
    if out is not None and (out.resolve() == Path(args.cfg).resolve() or _same_file(out, Path(args.cfg))):
        raise ConfigError(f"--write {out}: that is the --cfg file itself; write the result to another file")
    if args.builtin and args.data != "builtin":
        raise ConfigError("--builtin options apply to DATA=builtin only")
    cfg = load_cfg(args.cfg, classes=args.classes) if args.cfg else None
    k = args.n if args.n is not None else (anchor_count(cfg) if cfg is not None else 9)
    if out is not None and cfg is not None and k != anchor_count(cfg):
        raise ConfigError(f"--n {k}: {cfg.source} indexes {anchor_count(cfg)} anchors with its masks; "
                          f"--write needs --n {anchor_count(cfg)}")
    spec = resolve_dataset(args.data, builtin=dict(args.builtin), need_valid=False)
    fit = fit_anchors(spec, args.img_size, k, current=used_anchors(cfg) if cfg is not None else None,
                      seed=args.seed, anchor_t=args.anchor_t)
    if out is not None and cfg is not None:
        write_cfg(with_anchors(cfg, fit.anchors), out)
    if args.json:
        print(json.dumps({**fit.to_dict(), "cfg": cfg.source if cfg else None, "written": str(out) if out else None}))
        return 0
    print(fit.format())
    if out is not None:
        print(f"wrote {out}: {cfg.source if cfg else ''} with these anchors in every [yolo] head (masks unchanged)")
    return 0
