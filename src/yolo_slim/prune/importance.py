"""How important each channel is: per-conv channel scores and their aggregation.

An importance criterion maps a network's conv arrays to one score per output channel
of every conv it can rank (`Importance` protocol). The default, `bn_gamma`, is the
BatchNorm |gamma| that sparsity training drives to zero (Liu et al., "Learning
Efficient Convolutional Networks through Network Slimming", 2017). Coupled channels
(see `yolo_slim.graph`) are decided together, so their member scores are aggregated
by max, mean or sum into one score per coupled channel; `prunable_channel_scores`
lists the per-conv scores the global threshold is the quantile of (each conv's
channels counted individually, as the original tutorial counts its gammas).

New criteria register with `register_importance(name, criterion)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Protocol

import numpy as np

from yolo_slim.errors import PruneError
from yolo_slim.graph import ChannelGraph

ConvArrays = Mapping[int, Mapping[str, np.ndarray]]
Aggregate = Literal["max", "mean", "sum"]
AGGREGATES: tuple[str, ...] = ("max", "mean", "sum")


class Importance(Protocol):
    """A channel-importance criterion."""

    def __call__(self, arrays: ConvArrays) -> dict[int, np.ndarray]:
        """Per conv layer id, Float[filters] scores (higher = more important).

        Convs the criterion cannot rank are left out.
        """
        ...


def bn_gamma_importance(arrays: ConvArrays) -> dict[int, np.ndarray]:
    """|gamma| of every conv with BatchNorm."""
    return {i: np.abs(np.asarray(p["gamma"], dtype=np.float64)) for i, p in arrays.items() if "gamma" in p}


def filter_l1_importance(arrays: ConvArrays) -> dict[int, np.ndarray]:
    """L1 norm of each output filter's kernel, for convs with BatchNorm (Li et al. 2017)."""
    out = {}
    for i, p in arrays.items():
        if "gamma" in p:
            w = np.asarray(p["weight"], dtype=np.float64)
            out[i] = np.abs(w).reshape(w.shape[0], -1).sum(1)
    return out


_REGISTRY: dict[str, Importance] = {
    "bn_gamma": bn_gamma_importance,
    "filter_l1": filter_l1_importance,
}


def register_importance(name: str, criterion: Importance) -> None:
    """Make `criterion` available as `importance=name`."""
    _REGISTRY[name] = criterion


def get_importance(name_or_criterion: str | Importance) -> Importance:
    """A registered criterion by name (or the criterion itself).

    Raises:
        PruneError: unknown name.
    """
    if callable(name_or_criterion):
        return name_or_criterion
    try:
        return _REGISTRY[name_or_criterion]
    except KeyError:
        raise PruneError(f"unknown importance {name_or_criterion!r}; expected one of {', '.join(sorted(_REGISTRY))}") from None


def importance_names() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def _channel_scores(graph: ChannelGraph, layer: int, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Int[filters] coupled ids, Float64[filters] scores) of conv `layer`.

    Raises:
        PruneError: `scores` has the wrong length.
    """
    coupled = graph.positions[layer]
    flat = np.asarray(scores, dtype=np.float64).reshape(-1)
    if flat.shape != coupled.shape:
        raise PruneError(f"conv {layer}: {flat.size} channel scores for {coupled.size} filters")
    return coupled, flat


def coupled_scores(graph: ChannelGraph, conv_scores: Mapping[int, np.ndarray], aggregate: str = "max") -> np.ndarray:
    """Aggregate per-conv channel scores over coupled channels.

    Args:
        graph: the network's channel graph.
        conv_scores: per conv layer id, Float[filters] channel scores.
        aggregate: "max", "mean" or "sum" over the scored members of a coupled channel.

    Returns:
        Float64[graph.num_coupled]; NaN where no member is scored.

    Raises:
        PruneError: unknown aggregate, or a score array of the wrong length.
    """
    if aggregate not in AGGREGATES:
        raise PruneError(f"unknown aggregate {aggregate!r}; expected one of {', '.join(AGGREGATES)}")
    ids, vals = [], []
    for layer, scores in conv_scores.items():
        coupled, scores = _channel_scores(graph, layer, scores)
        ids.append(coupled)
        vals.append(scores)
    n = graph.num_coupled
    if not ids:
        return np.full(n, np.nan)
    ids_a, vals_a = np.concatenate(ids), np.concatenate(vals)
    count = np.bincount(ids_a, minlength=n).astype(np.float64)
    if aggregate == "max":
        out = np.full(n, -np.inf)
        np.maximum.at(out, ids_a, vals_a)
    else:
        out = np.bincount(ids_a, weights=vals_a, minlength=n)
        if aggregate == "mean":
            out = out / np.maximum(count, 1)
    out[count == 0] = np.nan
    return out


def prunable_channel_scores(graph: ChannelGraph, conv_scores: Mapping[int, np.ndarray]) -> np.ndarray:
    """The scores of every prunable conv output channel, each conv counted on its own.

    A channel is prunable when its coupled channel is (`graph.prunable`); the members
    of one coupled channel (e.g. a residual stream) each contribute their own score.
    This is the population whose quantile is the global threshold.

    Args:
        graph: the network's channel graph.
        conv_scores: per conv layer id, Float[filters] channel scores.

    Returns:
        Float64[N], in conv order (N = the prunable channels of the scored convs).

    Raises:
        PruneError: a score array of the wrong length.
    """
    parts = []
    for layer, scores in sorted(conv_scores.items()):
        coupled, scores = _channel_scores(graph, layer, scores)
        parts.append(scores[graph.prunable[coupled]])
    return np.concatenate(parts) if parts else np.zeros(0)
