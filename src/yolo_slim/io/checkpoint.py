"""yolo_slim's checkpoint format: a Lightning checkpoint that rebuilds its own model.

A checkpoint is a dict saved with `torch.save` and read with ``weights_only=True``
(nothing in it is unpickled as code). Besides Lightning's own keys it holds:

- ``state_dict``: ``model.*`` (the raw weights) and, when EMA was on, ``ema.module.*``
  (the averaged weights, which validation, export and `best.weights` use);
- ``darknet_cfg`` (`CFG_KEY`): the darknet cfg text of the architecture, so a pruned
  model's checkpoint needs no separate `.cfg`;
- ``rng_states`` (`RNG_KEY`): the RNG states `YoloLitModule` restores on resume.

`read_checkpoint` and `model_state_dict` read it; `write_model_checkpoint` writes one
for a bare `Darknet` (what `prune.py` produces), which `train.py weights=...` loads.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from yolo_slim.errors import WeightsError
from yolo_slim.io.atomic import temporary_path
from yolo_slim.io.finite import check_state_dict_finite

CFG_KEY = "darknet_cfg"
RNG_KEY = "rng_states"
_GLOBAL_RE = re.compile(r"GLOBAL ([\w.]+)")


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """`torch.load` a Lightning checkpoint with ``weights_only=True`` and check it.

    Nothing in the file is unpickled as code: a file that asks for any Python object
    beyond tensors and plain containers is refused, naming that object.

    Raises:
        WeightsError: the file is missing, unreadable, not a Lightning checkpoint, asks
            to unpickle code, or its weights hold NaN/inf (one line each).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: checkpoint not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols of foreign files
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = _GLOBAL_RE.search(str(exc))
        if found:
            raise WeightsError(
                f"{path}: not a yolo_slim checkpoint: it asks to build the Python object {found.group(1)}, "
                "and yolo_slim will not unpickle it (a checkpoint holds tensors and plain containers only)"
            ) from None
        raise WeightsError(f"{path}: not a yolo_slim checkpoint (not a torch.save file of tensors, or corrupted); it will not be unpickled") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise WeightsError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {first_line(exc)})") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), Mapping):
        raise WeightsError(f"{path}: not a yolo_slim checkpoint (a Lightning checkpoint with a 'state_dict' of tensors)")
    check_state_dict_finite(ckpt["state_dict"], str(path))
    return ckpt


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (its type name if empty)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def ema_state_dict(state_dict: Mapping[str, Tensor], prefer_ema: bool = True) -> dict[str, Tensor]:
    """The `Darknet` weights inside a `YoloLitModule` state dict.

    Args:
        state_dict: a module (or checkpoint ``state_dict``) with ``model.*`` and
            ``ema.module.*`` keys.
        prefer_ema: take the EMA weights when present, else the raw ones.

    Returns:
        A state dict for `Darknet.load_state_dict` (empty when neither prefix is there).
    """
    for prefix in (("ema.module.", "model.") if prefer_ema else ("model.",)):
        picked = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        if picked:
            return picked
    return {}


def check_matching_state(own: Mapping[str, Tensor], state: Mapping[str, Tensor], source: str) -> None:
    """Raise a `WeightsError` listing every key and shape where ``state`` differs from ``own``."""
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [f"{k}: {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            parts.append(f"{len(wrong)} tensors differ in shape, e.g. " + ", ".join(wrong[:2]))
        if missing:
            parts.append(f"{len(missing)} tensors missing, e.g. {', '.join(missing[:2])}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors, e.g. {', '.join(unexpected[:2])}")
        raise WeightsError(
            f"{source}: the weights do not match the model's architecture (cfg): {'; '.join(parts)}; "
            "use the .cfg the weights were trained with (a pruned model needs its pruned .cfg)"
        )


def load_matching_state(model: nn.Module, state: Mapping[str, Tensor], source: str) -> None:
    """Load ``state`` into ``model`` or raise a `WeightsError` listing every mismatch."""
    check_matching_state(model.state_dict(), state, source)
    model.load_state_dict(state)


def model_checkpoint(state_dict: Mapping[str, Tensor], cfg_text: str) -> dict[str, Any]:
    """A checkpoint dict for a bare model: its weights as ``model.*`` and its cfg text."""
    import pytorch_lightning as pl

    return {
        "state_dict": {f"model.{k}": v.detach().cpu() for k, v in state_dict.items()},
        CFG_KEY: cfg_text,
        "epoch": 0,
        "global_step": 0,
        "pytorch-lightning_version": pl.__version__,
    }


def write_model_checkpoint(path: str | os.PathLike, state_dict: Mapping[str, Tensor], cfg_text: str) -> Path:
    """Save `model_checkpoint(state_dict, cfg_text)` to `path` atomically."""
    path = Path(path)
    with temporary_path(path) as tmp:
        torch.save(model_checkpoint(state_dict, cfg_text), tmp)
        os.replace(tmp, path)
    return path
