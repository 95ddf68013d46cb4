"""The gamma-ranked planners: what to cut, as a `PrunePlan`.

The plan itself (the frozen value, its JSON file `plan.json`, `check_plan`) lives in
`yolo_slim.prune.plan_value`; its names are re-exported here, where callers have
always imported them.

Planners:
- `plan_channel_pruning`: `global_percent` sets one global threshold, the original
  tutorial's: the `global_percent` quantile of the scores of every prunable conv
  channel (each conv's channels counted on their own), and every coupled channel whose
  aggregated score is at or below it is cut (`cut_by="threshold"`, the default). On a
  sparsity-trained model that means "cut what is near zero", whatever fraction that
  is; the fraction actually cut is reported as `achieved_percent`. `cut_by="quota"`
  instead cuts the lowest coupled channels until `global_percent` of the prunable conv
  channels are gone, which reaches into live channels where shortcut groups are large.
  Then a per-layer minimum, optional rounding of kept counts to a multiple
  (SIMD-friendly shapes for OpenVINO) and split-route balance add channels back, all
  resolved as one monotone fixpoint (channels are only ever added back, so it
  terminates and never cuts more than the threshold did).
- `plan_layer_pruning`: rank residual units by the mean |gamma| of the conv before
  their shortcut (over the channels a base plan keeps) and remove the N weakest.
- `plan_layer_channel_pruning`: channel first, then layer on the slimmed channels.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any, Literal

import numpy as np

from yolo_slim.errors import PruneError
from yolo_slim.graph import ChannelGraph, build_graph
from yolo_slim.prune.importance import (
    ConvArrays,
    Importance,
    bn_gamma_importance,
    coupled_scores,
    get_importance,
    prunable_channel_scores,
)
from yolo_slim.prune.plan_value import (
    PLAN_VERSION,
    PrunePlan,
    RemovedUnit,
    cfg_fingerprint,
    check_plan,
    load_plan,
    plan_from_keep,
    save_plan,
)

_log = logging.getLogger(__name__)

CutBy = Literal["threshold", "quota"]
CUT_BY: tuple[str, ...] = ("threshold", "quota")


# ----------------------------------------------------------------------------- planning


def _arrays_and_graph(model_or_arrays: Any, graph: ChannelGraph | None) -> tuple[ConvArrays, ChannelGraph]:
    if hasattr(model_or_arrays, "darknet_arrays"):
        arrays = model_or_arrays.darknet_arrays()
        graph = graph if graph is not None else build_graph(model_or_arrays.cfg)
    else:
        arrays = model_or_arrays
        if graph is None:
            raise PruneError("plan_* needs `graph` when given conv arrays instead of a model")
    return arrays, graph


def _check_range(name: str, value: float, low: float, high: float, high_open: bool) -> None:
    ok = value >= low and (value < high if high_open else value <= high)
    if not ok or math.isnan(value):
        bracket = ")" if high_open else "]"
        raise PruneError(f"{name}={value} is outside [{low}, {high}{bracket}")


def _enforce(graph: ChannelGraph, keep: np.ndarray, scores: np.ndarray, layer_keep: float, multiple: int) -> None:
    """Add channels back (highest score first) until every conv keeps its minimum,
    kept counts are multiples of `multiple` and split blocks are balanced."""
    rank = np.where(np.isnan(scores), np.inf, scores)
    convs = [(layer, ids) for layer, ids in ((l, graph.positions[l]) for l in graph.conv_nodes) if graph.prunable[ids].any()]

    def add(ids: np.ndarray, n: int) -> None:
        cands = np.unique(ids[~keep[ids]])
        take = cands[np.argsort(-rank[cands], kind="stable")[:n]]
        keep[take] = True

    changed = True
    while changed:
        changed = False
        for layer, ids in convs:
            c = len(ids)
            count = int(keep[ids].sum())
            target = max(count, max(math.ceil(c * layer_keep), 1))
            target = min(c, -(-target // multiple) * multiple)
            while count < target:
                add(ids, target - count)
                count = int(keep[ids].sum())
                changed = True
        for blocks in graph.balance:
            counts = [int(keep[b].sum()) for b in blocks]
            target = max(counts)
            for b, count in zip(blocks, counts):
                while count < target:
                    add(b, target - count)
                    count = int(keep[b].sum())
                    changed = True


def global_threshold(scores: np.ndarray, percent: float) -> float | None:
    """The original tutorial's global threshold: `sorted(scores)[int(N * percent)]`.

    Channels scoring at or below it are cut (those strictly above are kept), so on N
    distinct scores `int(N * percent) + 1` go. Scores that tie with the threshold all
    go: on a model whose gammas are all equal (freshly initialised) any percent > 0
    cuts every channel down to the per-layer floor; a warning says so.

    Args:
        scores: Float[N], one score per prunable conv channel.
        percent: in [0, 1); 0 means no threshold (nothing is cut).

    Returns:
        The threshold, or None when `percent` is 0 or there are no scores.
    """
    if percent <= 0 or scores.size == 0:
        return None
    threshold = float(np.sort(scores, kind="stable")[int(scores.size * percent)])
    ties = int(np.count_nonzero(scores == threshold))
    if ties > max(1, 0.01 * scores.size):
        _log.warning(
            "global_percent=%g: %d of %d prunable channels score exactly the threshold %g and are all cut "
            "(the threshold keeps only channels strictly above it)", percent, ties, scores.size, threshold,
        )
    return threshold


def _conv_members(graph: ChannelGraph) -> np.ndarray:
    """Int[num_coupled]: how many conv output channels each coupled channel stands for."""
    return np.bincount(graph.node_coupled[graph.node_layer >= 0], minlength=graph.num_coupled)


def _quota_cut(graph: ChannelGraph, scores: np.ndarray, percent: float) -> tuple[np.ndarray, float | None]:
    """The lowest coupled channels until `percent` of the prunable conv channels are cut."""
    members = _conv_members(graph)
    candidates = np.flatnonzero(graph.prunable & ~np.isnan(scores))
    order = candidates[np.argsort(scores[candidates], kind="stable")]
    cumulative = np.cumsum(members[order])
    total = cumulative[-1] if cumulative.size else 0
    n_cut = int(np.searchsorted(cumulative, percent * total + 1e-9, side="right"))
    cut = np.zeros(graph.num_coupled, dtype=bool)
    cut[order[:n_cut]] = True
    return cut, (float(scores[order[n_cut - 1]]) if n_cut else None)


def achieved_percent(graph: ChannelGraph, keep: np.ndarray) -> float:
    """The fraction of prunable conv output channels (each conv's counted) not in `keep`."""
    members = _conv_members(graph)
    total = int(members[graph.prunable].sum())
    return float(members[~keep].sum()) / total if total else 0.0


def plan_channel_pruning(
    model_or_arrays: Any,
    graph: ChannelGraph | None = None,
    global_percent: float = 0.5,
    layer_keep: float = 0.01,
    channel_multiple: int = 1,
    importance: str | Importance = "bn_gamma",
    aggregate: str = "max",
    cut_by: CutBy = "threshold",
) -> PrunePlan:
    """Plan channel pruning with one global threshold.

    `cut_by="threshold"` (the original tutorial's meaning): the threshold is the
    `global_percent` quantile of the scores of all prunable conv channels, each conv's
    channels counted on their own (`global_threshold`); every prunable coupled channel
    whose aggregated score is <= the threshold is cut. With `aggregate="max"` a coupled
    channel (a residual stream's channel, shared by every conv of the stream) is only
    cut when all its members are at or below the threshold, so no channel scoring above
    it is ever cut. `cut_by="quota"`: the lowest coupled channels are cut until
    `global_percent` of the prunable conv channels are gone, live or not.

    Then every conv keeps at least `max(ceil(C * layer_keep), 1)` channels, kept counts
    round up to a multiple of `channel_multiple` (capped at C), and split routes keep
    equal counts per block; channels are only added back (by importance) until all hold.
    The plan records the threshold, the requested and the achieved percent.

    Args:
        model_or_arrays: a `Darknet`, or its `darknet_arrays()` (then pass `graph`).
        graph: the channel graph (built from the model's cfg when None).
        global_percent: in [0, 1); 0 cuts nothing.
        layer_keep: minimum kept fraction per conv, in [0, 1].
        channel_multiple: >= 1.
        importance: a registered criterion name or an `Importance`.
        aggregate: "max", "mean" or "sum" over coupled members.
        cut_by: "threshold" or "quota" (what `global_percent` means, see above).

    Raises:
        PruneError: a value out of range, an unknown criterion, aggregate or cut_by.
    """
    _check_range("global_percent", float(global_percent), 0.0, 1.0, high_open=True)
    _check_range("layer_keep", float(layer_keep), 0.0, 1.0, high_open=False)
    if int(channel_multiple) != channel_multiple or channel_multiple < 1:
        raise PruneError(f"channel_multiple={channel_multiple} must be an integer >= 1")
    if cut_by not in CUT_BY:
        raise PruneError(f"cut_by={cut_by!r}; expected one of {', '.join(CUT_BY)}")
    arrays, graph = _arrays_and_graph(model_or_arrays, graph)
    criterion = get_importance(importance)
    conv_scores = criterion(arrays)
    scores = coupled_scores(graph, conv_scores, aggregate)
    if cut_by == "threshold":
        threshold = global_threshold(prunable_channel_scores(graph, conv_scores), float(global_percent))
        cut = np.zeros(graph.num_coupled, dtype=bool)
        if threshold is not None:
            cut = graph.prunable & (np.nan_to_num(scores, nan=np.inf) <= threshold)  # unscored: never cut
    else:
        cut, threshold = _quota_cut(graph, scores, float(global_percent))
    keep = ~cut
    _enforce(graph, keep, scores, float(layer_keep), int(channel_multiple))
    name = importance if isinstance(importance, str) else getattr(importance, "__name__", type(importance).__name__)
    return plan_from_keep(
        graph,
        keep,
        global_percent=float(global_percent),
        layer_keep=float(layer_keep),
        channel_multiple=int(channel_multiple),
        threshold=threshold,
        importance=name,
        aggregate=aggregate,
        cut_by=cut_by,
        achieved_percent=achieved_percent(graph, keep),
    )


def rank_units(model_or_arrays: Any, graph: ChannelGraph | None = None, base: PrunePlan | None = None) -> list[tuple[float, int]]:
    """Residual units ranked weakest first by the mean |gamma| of the conv before their
    shortcut, over the channels `base` keeps (all when None).

    Returns:
        (mean |gamma|, index into graph.units) pairs, ascending.
    """
    arrays, graph = _arrays_and_graph(model_or_arrays, graph)
    gammas = bn_gamma_importance(arrays)
    ranked = []
    for index, unit in enumerate(graph.units):
        if unit.last_conv not in gammas:
            continue
        g = gammas[unit.last_conv]
        if base is not None and unit.last_conv in base.kept:
            g = g[list(base.kept[unit.last_conv])]
        ranked.append((float(g.mean()), index))
    ranked.sort()
    return ranked


def plan_layer_pruning(
    model_or_arrays: Any,
    shortcuts: int,
    graph: ChannelGraph | None = None,
    base: PrunePlan | None = None,
) -> PrunePlan:
    """Plan the removal of the `shortcuts` weakest residual units.

    Args:
        model_or_arrays: a `Darknet`, or its `darknet_arrays()` (then pass `graph`).
        shortcuts: number of units to remove, >= 0.
        graph: the channel graph.
        base: a channel plan to combine with (units are then ranked on its kept channels,
            which equals ranking the channel-pruned model).

    Raises:
        PruneError: `shortcuts` negative or more than the removable units.
    """
    if int(shortcuts) != shortcuts or shortcuts < 0:
        raise PruneError(f"shortcuts={shortcuts} must be an integer >= 0")
    arrays, graph = _arrays_and_graph(model_or_arrays, graph)
    ranked = rank_units(arrays, graph, base)
    if shortcuts > len(ranked):
        raise PruneError(
            f"shortcuts={shortcuts} but {graph.cfg.source} has only {len(ranked)} removable residual units "
            "(a chain of convs with batch_normalize closed by a linear [shortcut] back to the chain's input)"
        )
    chosen = sorted((graph.units[i] for _, i in ranked[: int(shortcuts)]), key=lambda u: u.shortcut)
    base = base or PrunePlan(fingerprint=cfg_fingerprint(graph.cfg))
    return dataclasses.replace(
        base,
        removed_units=tuple(u.layers for u in chosen),
        fingerprint=cfg_fingerprint(graph.cfg),
        shortcuts=int(shortcuts),
    )


def plan_layer_channel_pruning(
    model_or_arrays: Any,
    shortcuts: int,
    graph: ChannelGraph | None = None,
    global_percent: float = 0.5,
    layer_keep: float = 0.01,
    channel_multiple: int = 1,
    importance: str | Importance = "bn_gamma",
    aggregate: str = "max",
    cut_by: CutBy = "threshold",
) -> PrunePlan:
    """Channel pruning, then layer pruning ranked on the slimmed channels, as one plan."""
    arrays, graph = _arrays_and_graph(model_or_arrays, graph)
    channel = plan_channel_pruning(arrays, graph, global_percent, layer_keep, channel_multiple, importance, aggregate, cut_by)
    return plan_layer_pruning(arrays, shortcuts, graph, base=channel)


__all__ = [
    "CUT_BY", "PLAN_VERSION", "CutBy", "PrunePlan", "RemovedUnit", "achieved_percent", "cfg_fingerprint", "check_plan",
    "global_threshold", "load_plan", "plan_channel_pruning", "plan_from_keep", "plan_layer_channel_pruning",
    "plan_layer_pruning", "rank_units", "save_plan",
]
