"""Beta folding: move the constant output of cut channels into their consumers.

In eval mode a channel whose BatchNorm gamma is 0 outputs the constant `act(beta)`
everywhere; a removed residual unit whose last conv has gamma 0 adds the constant
`act(beta)` to the residual stream. Constants pass unchanged through upsample and
-inf padded maxpool (max is shift-equivariant), concatenate through routes and add
through linear shortcuts. A conv consumer that sees a per-channel constant `d` at its
input adds `sum_{kh,kw} W[o, c] d_c` to output o at every position whose window lies
inside the map; that amount is moved into its BN running mean (subtracted) or conv
bias (added), so the channel can be deleted.

Exact for 1x1 consumers and for constants equal to 0. At the zero-padded border of
k > 1 consumers part of the window reads padding, not the constant, so folding
over-corrects there (quantified in the tests). The reference did the same for two
activations and one step of the graph; here every activation (computed by the
layer's own activation module) and every path of the graph are followed.

Per layer the walk keeps `d_L`, Float64[C_L]: for kept channels the offset between
the masked network's output and the compact network's, for cut channels their
constant value. The invariant `masked[kept] = compact + d[kept]` holds layer by layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from yolo_slim.darknet.sections import ConvSection, MaxPoolSection, RouteSection, ShortcutSection, UpsampleSection, YoloSection, layer_input
from yolo_slim.graph import ChannelGraph
from yolo_slim.model.layers import make_activation

if TYPE_CHECKING:
    from yolo_slim.prune.plan_value import RemovedUnit

Arrays = dict[int, dict[str, np.ndarray]]


def activation_of(name: str, x: np.ndarray) -> np.ndarray:
    """Apply darknet activation `name` (by its torch module) to a float64 array."""
    with torch.no_grad():
        return make_activation(name)(torch.from_numpy(np.asarray(x, dtype=np.float64))).numpy()


def constant_output(section: ConvSection, parts: Mapping[str, np.ndarray]) -> np.ndarray:
    """Float64[filters]: each channel's output when its gamma (or kernel, without BN) is 0."""
    base = parts["beta"] if section.batch_normalize else parts["bias"]
    return activation_of(section.activation, base)


def conv_offset(weight: np.ndarray, groups: int, d_in: np.ndarray) -> np.ndarray:
    """Float64[out]: what a constant input `d_in` (Float[in]) adds to each conv output
    away from the border: `sum_{c,kh,kw} W[o, c, kh, kw] d_c` within o's group."""
    w = weight.astype(np.float64).sum(axis=(2, 3))  # (out, in/groups)
    if groups == 1:
        return w @ d_in
    out, per = w.shape
    return np.einsum("goi,gi->go", w.reshape(groups, out // groups, per), d_in.reshape(groups, per)).reshape(out)


def fold_constants(graph: ChannelGraph, arrays: Arrays, keep: np.ndarray, removed_units: Sequence[RemovedUnit]) -> tuple[Arrays, list[str]]:
    """Fold the constants of cut channels and removed units into their consumers.

    Args:
        graph: the channel graph of the original cfg.
        arrays: per conv id, the `.weights` arrays; not modified.
        keep: Bool[graph.num_coupled], the coupled channels the compact network keeps.
        removed_units: the removed residual units (units of `graph`).

    Returns:
        New arrays (consumers' `running_mean`/`bias` updated, the rest shared with the
        input) and notes on constants that could not be folded (they reach a non-linear
        shortcut or a `[yolo]` head on a kept channel).
    """
    cfg = graph.cfg
    units = [graph.unit_of(unit.layers) for unit in removed_units]
    removed = {i for unit in units for i in unit.layers}
    unit_last = {unit.last_conv for unit in units}
    out: Arrays = {i: dict(p) for i, p in arrays.items()}
    offsets: dict[int, np.ndarray] = {}
    notes: list[str] = []
    d: list[np.ndarray | None] = []

    def cut_mask(layer: int) -> np.ndarray:
        return ~keep[graph.positions[layer]]

    for i, s in enumerate(cfg.layers):
        prev = layer_input(d, i, None)
        if isinstance(s, ConvSection):
            if i in unit_last:
                d.append(constant_output(s, arrays[i]))
                continue
            if i in removed:
                d.append(None)
                continue
            if prev is not None and np.any(prev):
                offsets[i] = conv_offset(arrays[i]["weight"], s.groups, prev)
            cut = cut_mask(i)
            if cut.any():
                value = np.zeros(s.filters)
                value[cut] = constant_output(s, arrays[i])[cut]
                d.append(value)
            else:
                d.append(None)
        elif isinstance(s, (MaxPoolSection, UpsampleSection)):
            d.append(prev)
        elif isinstance(s, RouteSection):
            vals = [d[src] for src in s.sources]
            if all(v is None for v in vals):
                d.append(None)
                continue
            parts = []
            for src, v in zip(s.sources, vals):
                c = graph.shapes[src].c
                v = np.zeros(c) if v is None else v
                size = c // s.groups
                parts.append(v[s.group_id * size : (s.group_id + 1) * size])
            d.append(np.concatenate(parts))
        elif isinstance(s, ShortcutSection):
            vals = [v for v in (prev, *(d[src] for src in s.sources)) if v is not None]
            if not vals:
                d.append(None)
                continue
            total = np.sum(vals, axis=0)
            if s.activation == "linear":
                d.append(total)
                continue
            cut = cut_mask(i)
            if np.any(total[~cut]):
                notes.append(f"shortcut {i} ({s.activation}): a removed unit's constant reaches kept channels through a non-linear activation and is dropped")
            value = np.zeros_like(total)
            value[cut] = activation_of(s.activation, total[cut])
            d.append(value)
        elif isinstance(s, YoloSection):
            if prev is not None and np.any(prev):
                notes.append(f"[yolo] {i}: a constant reaches the head input and is dropped")
            d.append(None)
        else:  # pragma: no cover - the section union is closed
            raise TypeError(type(s))

    for i, off in offsets.items():
        parts = out[i]
        if "running_mean" in parts:
            parts["running_mean"] = (parts["running_mean"].astype(np.float64) - off).astype(np.float32)
        else:
            parts["bias"] = (parts["bias"].astype(np.float64) + off).astype(np.float32)
    return out, notes
