"""One way to get a trained model: cfg (path or zoo name) + weights (.weights or .ckpt).

Every entry point (prune, export, the sparsity report) loads models through
`load_model`, so they all accept the same inputs and give the same errors.
"""

from __future__ import annotations

import os
from pathlib import Path

from yolo_slim.darknet.cfg import DarknetCfg, load_cfg
from yolo_slim.io.checkpoint import ema_state_dict, load_matching_state, read_checkpoint
from yolo_slim.model.darknet import Darknet


def load_model(
    cfg_or_name: str | os.PathLike | DarknetCfg,
    weights: str | os.PathLike | None = None,
    classes: int | None = None,
    img_size: int | None = None,
) -> Darknet:
    """A `Darknet` in eval mode from a zoo name or `.cfg`, with optional weights.

    Args:
        cfg_or_name: a `.cfg` path, a model-zoo name, or a parsed cfg.
        weights: darknet `.weights`, or a Lightning `.ckpt` (its EMA weights when it
            holds them, else the raw ones).
        classes: rewrite the heads for this many classes.
        img_size: set the `[net]` input size (pixels, square).

    Raises:
        CfgError, WeightsError: the cfg or the weights are unusable or do not fit.
    """
    model = Darknet(load_cfg(cfg_or_name, classes=classes, img_size=img_size))
    if weights:
        path = Path(weights)
        if path.suffix == ".ckpt":
            load_matching_state(model, ema_state_dict(read_checkpoint(path)["state_dict"]), str(path))
        else:
            model.load_darknet_weights(path)
    return model.eval()
