"""Latency-budget pruning: the most important channels and residual units within a
latency measured on the deployment device.

In the spirit of HALP (Shen et al., "Structural Pruning via Latency-Saliency
Knapsack", NeurIPS 2022): a latency lookup table measured on the target device
(`yolo_slim.latency`), and a knapsack that maximises the kept importance under a
latency budget, solved greedily by importance lost per microsecond saved.

The decisions are the widths of the coupled channel groups (`yolo_slim.graph`: a
residual stream and every conv on it share one width) and the removal of whole
residual units. A group of width w keeps its w most important coupled channels
(aggregated BN |gamma|, as `plan_channel_pruning` ranks them), so its kept
importance I_g(w) is a prefix sum of its sorted scores; a unit is worth the
importance of its private groups plus its convs' own |gamma| on the stream. The
network's latency is the table's prediction: the fixed per-inference cost plus each
op's cost at the channel counts the widths give it (a conv's input and output
channels, a shortcut's or a route's maps), read from `GridCost`, which interpolates
measured grid points of each layer's own staircase.

Widths are chosen on the staircase: the candidate widths of a group are multiples
of the device's channel quantum (measured, `LatencyTable.quantum`), its floor and
its full width, and each step's saving is measured per layer, so a width that saves
nothing (a flat stretch of a layer's staircase) is never chosen over the next one
that does. Then:

1. down: while the predicted latency is over the budget, apply the move with the
   least importance lost per microsecond saved: lowering one group to one of its
   next two lower candidates, or removing one residual unit;
2. fill: while some move fits in the slack, apply the one gaining the most
   importance per microsecond spent: raising a group to one of its next two
   candidates, or restoring a unit; then top up the same way with any width below
   a group's next candidate (a width off the staircase only where the whole step
   does not fit the budget: it still saves the consumers' input channels);
3. check: the plan's exact layer shapes are measured (no interpolation); if the
   exact prediction is over the budget, the budget the grid plans against shrinks
   by the ratio of exact to interpolated latency and steps 1-2 run again (at most
   `rounds` times).

The result is group-exact (coupled channels cut together, split routes balanced,
the per-layer floor `layer_keep` held, repaired by the same fixpoint as the gamma
planner) and an ordinary `PrunePlan` that `check_plan` accepts and `apply_plan`
applies.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import numpy as np

from yolo_slim.errors import PruneError
from yolo_slim.graph import ChannelGraph
from yolo_slim.latency.grid import GridCost
from yolo_slim.latency.predict import predict_latency
from yolo_slim.latency.table import LatencySource
from yolo_slim.prune.importance import Importance, coupled_scores, get_importance
from yolo_slim.prune.plan import _arrays_and_graph, _check_range, _enforce
from yolo_slim.prune.latency_problem import LatencyProblem
from yolo_slim.prune.plan_value import PrunePlan, plan_from_keep
from yolo_slim.prune.surgery import compact_cfg
from yolo_slim.progress import progress_task

_log = logging.getLogger(__name__)

def check_latency_budget(budget: float | None, budget_ms: float | None) -> None:
    """Exactly one budget, in range: a fraction in (0, 1] or a positive number of milliseconds.

    Raises:
        PruneError: naming the key and what it must be.
    """
    if (budget is None) == (budget_ms is None):
        raise PruneError("give exactly one latency budget: prune.latency_budget (a fraction of the unpruned latency) or prune.latency_budget_ms")
    if budget is not None:
        _check_range("latency_budget", float(budget), 0.0, 1.0, high_open=False)
        if budget <= 0:
            raise PruneError(f"latency_budget={budget} must be > 0 (a fraction of the unpruned network's latency)")
    elif not (budget_ms is not None and budget_ms > 0 and math.isfinite(budget_ms)):
        raise PruneError(f"latency_budget_ms={budget_ms} must be a positive number of milliseconds")


def plan_latency_pruning(
    model_or_arrays: Any,
    graph: ChannelGraph | None = None,
    *,
    table: LatencySource,
    budget: float | None = None,
    budget_ms: float | None = None,
    hw: tuple[int, int] | None = None,
    layer_keep: float = 0.01,
    importance: str | Importance = "bn_gamma",
    aggregate: str = "max",
    units: bool = True,
    rounds: int = 4,
) -> PrunePlan:
    """Plan pruning to a latency budget on the table's device (see the module doc).

    Args:
        model_or_arrays: a `Darknet`, or its `darknet_arrays()` (then pass `graph`).
        graph: the channel graph (built from the model's cfg when None).
        table: the device's latency table (`LatencyTable`, or any `LatencySource`).
        budget: the target as a fraction in (0, 1] of the unpruned network's
            predicted latency; or
        budget_ms: the target in milliseconds (give exactly one of the two).
        hw: input (height, width) the latency is for; default the cfg's `[net]` size.
        layer_keep: minimum kept fraction per conv, in [0, 1].
        importance: a registered criterion name or an `Importance`.
        aggregate: "max", "mean" or "sum" over coupled members.
        units: whether removing residual units is allowed.
        rounds: exact-measurement checks of the plan (>= 1).

    Returns:
        The plan; `latency_budget`, `latency_budget_ms` and `latency_ms` (the exact
        prediction for the pruned network) record what was asked and reached.

    Raises:
        PruneError: a bad budget, one below the fastest plan, or values out of range.
        LatencyError: measuring failed or passed the table's time bound.
    """
    check_latency_budget(budget, budget_ms)
    _check_range("layer_keep", float(layer_keep), 0.0, 1.0, high_open=False)
    if int(rounds) != rounds or rounds < 1:
        raise PruneError(f"rounds={rounds} must be an integer >= 1")
    arrays, graph = _arrays_and_graph(model_or_arrays, graph)
    hw = tuple(hw) if hw is not None else graph.cfg.input_hw  # type: ignore[assignment]
    criterion = get_importance(importance)
    conv_scores = criterion(arrays)
    scores = coupled_scores(graph, conv_scores, aggregate)
    baseline_us = predict_latency(graph.cfg, table, hw).total_us
    target_us = float(budget) * baseline_us if budget is not None else float(budget_ms) * 1000.0
    name = importance if isinstance(importance, str) else getattr(importance, "__name__", type(importance).__name__)
    meta = dict(layer_keep=float(layer_keep), importance=name, aggregate=aggregate,
                latency_budget=None if budget is None else float(budget), latency_budget_ms=target_us / 1000.0)

    problem = LatencyProblem(graph, scores, conv_scores, GridCost(table), hw, float(layer_keep), bool(units))
    plan = plan_from_keep(graph, np.ones(graph.num_coupled, dtype=bool), **meta, latency_ms=baseline_us / 1000.0)
    if target_us >= baseline_us:
        _log.info("latency plan: the unpruned network's %.3f ms is within the budget of %.3f ms; nothing to cut", baseline_us / 1000, target_us / 1000)
        return plan
    scale = 1.0  # exact / interpolated latency of the last plan
    with progress_task("prune: latency plan", int(rounds)) as steps:
        for round_ in range(int(rounds)):
            problem.down(target_us / scale)
            problem.fill(target_us / scale)
            problem.fill(target_us / scale, fine=True)
            keep = problem.keep_mask()
            _enforce(graph, keep, scores, float(layer_keep), 1)
            removed = tuple(graph.units[u].layers for u in sorted(problem.removed, key=lambda u: graph.units[u].shortcut))
            plan = dataclasses.replace(plan_from_keep(graph, keep, **meta), removed_units=removed, shortcuts=len(removed))
            exact_us = predict_latency(compact_cfg(graph, plan), table, hw).total_us
            modelled = problem.total_us()
            _log.info(
                "latency plan round %d: %d residual units removed, predicted %.3f ms (grid %.3f ms), budget %.3f ms",
                round_ + 1, len(removed), exact_us / 1000, modelled / 1000, target_us / 1000,
            )
            plan = dataclasses.replace(plan, latency_ms=exact_us / 1000.0)
            steps.advance(detail=f"predicted {exact_us / 1000:.3f} ms, budget {target_us / 1000:.3f} ms")
            if exact_us <= target_us:
                return plan
            scale = max(scale * exact_us / target_us, exact_us / modelled)
    raise PruneError(
        f"latency plan: after {rounds} rounds the exact prediction {plan.latency_ms:.3f} ms is still over the budget of "
        f"{target_us / 1000:.3f} ms: the table's costs of neighbouring widths disagree by {scale - 1:.0%} (measured under "
        "changing load?); measure it on a quiet machine (delete its file) or raise prune.latency_rounds"
    )
