"""Darknet `.cfg` files: the entry point (`load_cfg`) and the names other modules import.

The work is split by concern: `parser.py` reads text into a `DarknetCfg` (the type
lives in `sections.py`), `validate.py` checks a network as a whole, `writer.py` writes
one back (`parse_cfg_text(write_cfg_text(cfg)) == cfg`), `edit.py` changes the class
count, the input size or the layers, and `zoo.py` generates the stock networks.
`load_cfg` turns what a user names (a parsed cfg, a `.cfg` path or a zoo name) into
a validated `DarknetCfg`.
"""

from __future__ import annotations

import os
from pathlib import Path

from yolo_slim.darknet.edit import remove_layers, with_classes, with_input_size
from yolo_slim.darknet.parser import parse_cfg, parse_cfg_text
from yolo_slim.darknet.sections import DarknetCfg
from yolo_slim.darknet.shapes import check_input_size
from yolo_slim.darknet.validate import validate_cfg
from yolo_slim.darknet.writer import write_cfg, write_cfg_text
from yolo_slim.darknet.zoo import ZOO_NAMES, zoo_cfg_text
from yolo_slim.errors import CfgError

__all__ = [
    "DarknetCfg",
    "load_cfg",
    "parse_cfg",
    "parse_cfg_text",
    "remove_layers",
    "validate_cfg",
    "with_classes",
    "with_input_size",
    "write_cfg",
    "write_cfg_text",
]


def load_cfg(cfg_or_name: str | os.PathLike | DarknetCfg, classes: int | None = None, img_size: int | None = None) -> DarknetCfg:
    """A `DarknetCfg` from a parsed cfg, a `.cfg` path, or a model-zoo name.

    Args:
        classes: rewrite the heads for this many classes (`with_classes`).
        img_size: set the `[net]` input size (pixels, square).

    Raises:
        CfgError: not a readable cfg file nor a zoo name, or the cfg is invalid.
    """
    if isinstance(cfg_or_name, DarknetCfg):
        cfg = cfg_or_name
    elif Path(cfg_or_name).is_file():
        cfg = parse_cfg(cfg_or_name)
    elif str(cfg_or_name) in ZOO_NAMES:
        name = str(cfg_or_name)
        cfg = parse_cfg_text(zoo_cfg_text(name, classes=classes or 80), f"<zoo:{name}>")
    else:
        raise CfgError(f"{cfg_or_name}: no such cfg file, and not a model-zoo name (zoo: {', '.join(ZOO_NAMES)})")
    edited = False
    if classes is not None and classes != cfg.num_classes:
        cfg, edited = with_classes(cfg, classes), True
    if img_size is not None:
        check_input_size(cfg, img_size, "img_size")
        cfg, edited = with_input_size(cfg, img_size), True
    if edited:
        validate_cfg(cfg)
    return cfg
