"""Surgery: turn a network and a `PrunePlan` into the compact network.

Steps: check the plan against the channel graph, fold the constants of cut channels
and removed units into their consumers (`fold.py`), slice every conv's kernel to its
kept output channels and its input's kept positions, write the new sections
(`dataclasses.replace` of `filters`, and `groups` for depthwise convs) and delete the
removed units with `remove_layers`, which renumbers every reference.

Positions stay in order through every layer (routes concatenate kept positions in
order, split routes see balanced blocks), so a conv's input slice is simply the kept
positions of the layer before it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from yolo_slim.darknet.cfg import DarknetCfg, remove_layers
from yolo_slim.darknet.sections import ConvSection
from yolo_slim.graph import ChannelGraph, build_graph
from yolo_slim.prune.fold import Arrays, fold_constants
from yolo_slim.prune.plan import PrunePlan, check_plan


def _is_depthwise(section: ConvSection, c_in: int) -> bool:
    return section.groups > 1 and section.groups == c_in == section.filters


def apply_plan_arrays(
    cfg: DarknetCfg,
    arrays: Arrays,
    plan: PrunePlan,
    *,
    graph: ChannelGraph | None = None,
    fold: bool = True,
) -> tuple[DarknetCfg, Arrays, list[str]]:
    """Compact cfg and `.weights` arrays for `plan`, without building a model.

    Args:
        cfg: the original network.
        arrays: its per-conv `.weights` arrays (as `read_darknet_weights` returns).
        plan: what to cut, in `cfg`'s layer ids.
        graph: `cfg`'s channel graph (built when None).
        fold: fold the cut channels' constants into consumers (False only to measure
            what folding buys).

    Returns:
        The compact cfg, its arrays keyed by the new layer ids, and folding notes.

    Raises:
        PruneError: the plan does not fit `cfg` (see `check_plan`).
    """
    graph = graph if graph is not None else build_graph(cfg)
    keep = check_plan(graph, plan)
    notes: list[str] = []
    if fold:
        arrays, notes = fold_constants(graph, arrays, keep, plan.removed_units)
    removed = plan.removed_layers
    layers = list(cfg.layers)
    sliced: Arrays = {}
    image = np.arange(cfg.net.channels)
    for i, s in enumerate(cfg.layers):
        if not isinstance(s, ConvSection) or i in removed:
            continue
        out_idx = np.flatnonzero(keep[graph.positions[i]])
        in_idx = np.flatnonzero(keep[graph.positions[i - 1]]) if i > 0 else image
        c_in = graph.shapes[i - 1].c if i > 0 else cfg.net.channels
        parts = arrays[i]
        weight = parts["weight"]
        full_out = len(out_idx) == s.filters
        depthwise = _is_depthwise(s, c_in)
        if depthwise:
            new_weight = weight if full_out else weight[out_idx]
            layers[i] = replace(s, filters=len(out_idx), groups=len(out_idx))
        else:
            new_weight = weight if full_out else weight[out_idx]
            if s.groups == 1 and len(in_idx) != c_in:
                new_weight = new_weight[:, in_idx]
            if not full_out:
                layers[i] = replace(s, filters=len(out_idx))
        new_parts = {k: (v if full_out else v[out_idx]) for k, v in parts.items() if k != "weight"}
        new_parts["weight"] = np.ascontiguousarray(new_weight)
        sliced[i] = new_parts
    new_cfg = replace(cfg, layers=tuple(layers))
    if removed:
        new_cfg, new_id = remove_layers(new_cfg, set(removed))
        sliced = {new_id[i]: p for i, p in sliced.items()}
    return new_cfg, sliced, notes


def compact_cfg(graph: ChannelGraph, plan: PrunePlan) -> DarknetCfg:
    """The compact cfg `plan` leads to, without touching any weights (for cost
    predictions such as "BFLOPs after pruning at 0.7")."""
    keep = check_plan(graph, plan)
    cfg = graph.cfg
    layers = list(cfg.layers)
    for i, s in enumerate(cfg.layers):
        if isinstance(s, ConvSection) and i not in plan.removed_layers:
            kept = int(np.count_nonzero(keep[graph.positions[i]]))
            if kept != s.filters:
                c_in = graph.shapes[i - 1].c if i > 0 else cfg.net.channels
                layers[i] = replace(s, filters=kept, groups=kept) if _is_depthwise(s, c_in) else replace(s, filters=kept)
    new_cfg = replace(cfg, layers=tuple(layers))
    if plan.removed_layers:
        new_cfg, _ = remove_layers(new_cfg, set(plan.removed_layers))
    return new_cfg


def load_arrays(model: "Darknet", arrays: Arrays) -> None:  # noqa: F821
    """Copy per-conv `.weights` arrays into a model built from the matching cfg."""
    blocks = model.conv_blocks()
    with torch.no_grad():
        for i, block in blocks.items():
            parts = arrays[i]
            block.conv.weight.copy_(torch.from_numpy(np.asarray(parts["weight"], dtype=np.float32)))
            if block.bn is not None:
                block.bn.bias.copy_(torch.from_numpy(np.asarray(parts["beta"], dtype=np.float32)))
                block.bn.weight.copy_(torch.from_numpy(np.asarray(parts["gamma"], dtype=np.float32)))
                block.bn.running_mean.copy_(torch.from_numpy(np.asarray(parts["running_mean"], dtype=np.float32)))
                block.bn.running_var.copy_(torch.from_numpy(np.asarray(parts["running_var"], dtype=np.float32)))
            else:
                block.conv.bias.copy_(torch.from_numpy(np.asarray(parts["bias"], dtype=np.float32)))


def apply_plan(model: "Darknet", plan: PrunePlan, *, graph: ChannelGraph | None = None, fold: bool = True) -> "Darknet":  # noqa: F821
    """Build the compact model for `plan` (the input model is not modified).

    The result is in eval mode and carries the input's `.weights` header; its
    modules are built fresh from the compact cfg (darknet's BN epsilon 1e-5).

    Raises:
        PruneError: the plan does not fit the model's cfg.
    """
    from yolo_slim.model import Darknet

    new_cfg, arrays, _ = apply_plan_arrays(model.cfg, model.darknet_arrays(), plan, graph=graph, fold=fold)
    compact = Darknet(new_cfg)
    load_arrays(compact, arrays)
    compact.header = model.header
    compact.eval()
    return compact
