"""One way to get a trained model: cfg (path or zoo name) + weights (.weights or .ckpt).

Every entry point (prune, export, the sparsity report) loads models through
`load_model`, so they all accept the same inputs and give the same errors.
"""

from __future__ import annotations

import os
from pathlib import Path

from yolo_slim.darknet.cfg import DarknetCfg, load_cfg, parse_cfg_text
from yolo_slim.errors import WeightsError
from yolo_slim.io.checkpoint import CFG_KEY, ema_state_dict, load_matching_state, read_checkpoint
from yolo_slim.model.darknet import Darknet


def load_model(
    cfg_or_name: str | os.PathLike | DarknetCfg | None,
    weights: str | os.PathLike | None = None,
    classes: int | None = None,
    img_size: int | None = None,
) -> Darknet:
    """A `Darknet` in eval mode from a zoo name or `.cfg`, with optional weights.

    Args:
        cfg_or_name: a `.cfg` path, a model-zoo name, or a parsed cfg; None takes the
            cfg that a yolo_slim `.ckpt` in `weights` carries.
        weights: darknet `.weights`, or a Lightning `.ckpt` (its EMA weights when it
            holds them, else the raw ones).
        classes: rewrite the heads for this many classes.
        img_size: set the `[net]` input size (pixels, square).

    Raises:
        CfgError, WeightsError: the cfg or the weights are unusable or do not fit, or
            no cfg is given and `weights` is not a checkpoint carrying one.
    """
    path = Path(weights) if weights else None
    ckpt = read_checkpoint(path) if path is not None and path.suffix == ".ckpt" else None
    if cfg_or_name is None:
        text = ckpt.get(CFG_KEY) if ckpt is not None else None
        if not text:
            raise WeightsError(f"{weights}: no cfg given, and this is not a yolo_slim .ckpt that carries one; give the model's .cfg")
        cfg_or_name = parse_cfg_text(text, f"{path} (checkpoint cfg)")
    model = Darknet(load_cfg(cfg_or_name, classes=classes, img_size=img_size))
    if path is not None:
        if ckpt is not None:
            load_matching_state(model, ema_state_dict(ckpt["state_dict"]), str(path))
        else:
            model.load_darknet_weights(path)
    return model.eval()
