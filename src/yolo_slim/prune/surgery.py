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

from yolo_slim.darknet.cfg import DarknetCfg, remove_layers
from yolo_slim.darknet.sections import ConvSection, layer_input
from yolo_slim.darknet.shapes import input_channels
from yolo_slim.graph import ChannelGraph, build_graph
from yolo_slim.prune.fold import Arrays, fold_constants
from yolo_slim.prune.plan_value import PrunePlan, check_plan


def _compact_layers(cfg: DarknetCfg, graph: ChannelGraph, keep: np.ndarray, removed: frozenset[int]) -> tuple[DarknetCfg, dict[int, int] | None]:
    """The one section rewrite: each kept conv's ``filters`` (and ``groups`` when
    depthwise) set to its kept channels, then the removed layers deleted.

    Returns:
        The compact cfg and the map old id -> new id (None when no layer is removed).
    """
    layers = list(cfg.layers)
    for i, s in enumerate(cfg.layers):
        if isinstance(s, ConvSection) and i not in removed:
            kept = int(np.count_nonzero(keep[graph.positions[i]]))
            if kept != s.filters:
                depthwise = s.is_depthwise(input_channels(cfg, graph.shapes, i))
                layers[i] = replace(s, filters=kept, groups=kept) if depthwise else replace(s, filters=kept)
    new_cfg = replace(cfg, layers=tuple(layers))
    if not removed:
        return new_cfg, None
    return remove_layers(new_cfg, set(removed))


def _slice_conv(section: ConvSection, parts: dict[str, np.ndarray], out_idx: np.ndarray, in_idx: np.ndarray, c_in: int) -> dict[str, np.ndarray]:
    """One conv's `.weights` arrays cut to output channels `out_idx` and, for a dense
    conv, input channels `in_idx` (a depthwise conv's inputs follow its outputs)."""
    full_out = len(out_idx) == section.filters
    weight = parts["weight"] if full_out else parts["weight"][out_idx]
    if section.groups == 1 and len(in_idx) != c_in:
        weight = weight[:, in_idx]
    new_parts = {k: (v if full_out else v[out_idx]) for k, v in parts.items() if k != "weight"}
    new_parts["weight"] = np.ascontiguousarray(weight)
    return new_parts


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
    sliced: Arrays = {}
    image = np.arange(cfg.net.channels)
    for i, s in enumerate(cfg.layers):
        if not isinstance(s, ConvSection) or i in removed:
            continue
        out_idx = np.flatnonzero(keep[graph.positions[i]])
        source = layer_input(graph.positions, i, None)  # None: the image, never cut
        in_idx = image if source is None else np.flatnonzero(keep[source])
        sliced[i] = _slice_conv(s, arrays[i], out_idx, in_idx, input_channels(cfg, graph.shapes, i))
    new_cfg, new_id = _compact_layers(cfg, graph, keep, removed)
    if new_id is not None:
        sliced = {new_id[i]: p for i, p in sliced.items()}
    return new_cfg, sliced, notes


def compact_cfg(graph: ChannelGraph, plan: PrunePlan) -> DarknetCfg:
    """The compact cfg `plan` leads to, without touching any weights (for cost
    predictions such as "BFLOPs after pruning at 0.7")."""
    keep = check_plan(graph, plan)
    return _compact_layers(graph.cfg, graph, keep, plan.removed_layers)[0]


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
    compact.load_arrays(arrays)
    compact.header = model.header
    compact.eval()
    return compact
