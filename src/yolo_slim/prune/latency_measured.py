"""Latency plans held to what the device measures: plan with the table, measure, correct, plan again.

The latency table predicts a network as the sum of its layers timed alone plus fixed
costs. Inside one compiled network OpenVINO fuses, reorders and schedules layers
differently, so for a thin model the prediction of a pruned network can be far off:
on the demo model at 160 px a plan for 0.6 of the unpruned latency measured 0.86 (the
table was 18-46 % off there), while on yolov4 at 416 px plans landed within 5 %.

`plan_to_measured_budget` closes the loop. Each round plans with
`plan_latency_pruning`, exports the pruned and the unpruned network as the deployment
does and times them side by side (a ratio within one session, so a loaded machine
slows both alike), and when the measured fraction misses the budget by more than
`tolerance` it plans again against a corrected budget: after the first round
``asked x target / measured`` (the table's error taken as a factor), after two the secant
through the last two rounds' (asked, measured) points, which also corrects for the part of
the latency that pruning does not remove (on the demo in f32 the factor rule needed three
rounds for 0.869 -> 0.702 -> 0.661 against a budget of 0.6), and once two rounds bracket
the target, an interpolation between them (`_next_asked`). The
result is the plan of the round closest to the target among those within
``target x (1 + tolerance)``; when no round is, the fastest one. The rounds are logged and
returned, so a report can show what was asked and what was measured.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from yolo_slim.errors import PruneError
from yolo_slim.graph import ChannelGraph, build_graph
from yolo_slim.latency.predict import predict_latency
from yolo_slim.latency.table import LatencyTable
from yolo_slim.prune.latency_plan import check_latency_budget, plan_latency_pruning
from yolo_slim.prune.plan_value import PrunePlan

_log = logging.getLogger(__name__)

MIN_ASKED = 0.02
"""The lowest budget fraction a correction asks the planner for."""

BELOW_FLOOR_TRIES = 4
"""Budgets tried per round, each halfway back to the last one that planned, when a
correction asks for less than the fastest plan the table knows."""

Measure = Callable[[PrunePlan], tuple[float, float]]
"""plan -> (pruned ms, unpruned ms), measured side by side on the device."""


@dataclass(frozen=True)
class MeasuredRound:
    """One plan-and-measure round.

    Attributes:
        asked: the budget the planner was given, a fraction of the unpruned
            network's predicted latency.
        predicted_ms: the table's prediction for the plan.
        pruned_ms: the pruned network's measured batch-1 latency.
        original_ms: the unpruned network's, measured in the same session.
        target: the budget as a fraction of `original_ms`.
    """

    asked: float
    predicted_ms: float
    pruned_ms: float
    original_ms: float
    target: float

    @property
    def fraction(self) -> float:
        """Measured pruned / unpruned latency."""
        return self.pruned_ms / self.original_ms

    @property
    def error(self) -> float:
        """Measured fraction over the target, minus 1 (+0.10: 10 % slower than asked)."""
        return self.fraction / self.target - 1.0


def openvino_measure(model: Any, table: LatencyTable, hw: tuple[int, int], graph: ChannelGraph | None = None,
                     runs: int = 30) -> Measure:
    """A `Measure` that exports the unpruned `model` and each plan's compact network to
    OpenVINO (`yolo_slim.latency.network.network_latency`) and times them round robin
    with the table's device settings."""
    from yolo_slim.latency.network import network_latency
    from yolo_slim.prune.surgery import apply_plan

    original = model if next(model.parameters()).device.type == "cpu" else copy.deepcopy(model).cpu()

    def measure(plan: PrunePlan) -> tuple[float, float]:
        pruned = apply_plan(original, plan, graph=graph)
        results = network_latency({"original": original, "pruned": pruned}, table, hw=hw, runs=runs)
        return results["pruned"].measured_ms, results["original"].measured_ms

    return measure


def plan_to_measured_budget(
    model: Any,
    graph: ChannelGraph | None = None,
    *,
    table: LatencyTable,
    budget: float | None = None,
    budget_ms: float | None = None,
    hw: tuple[int, int] | None = None,
    rounds: int = 6,
    tolerance: float = 0.05,
    measure: Measure | None = None,
    runs: int = 30,
    **planner: Any,
) -> tuple[PrunePlan, list[MeasuredRound]]:
    """Plan to a latency budget that the whole pruned network meets when measured.

    Args:
        model: the unpruned `Darknet` (eval mode).
        graph: its channel graph (built from its cfg when None).
        table: the device's latency table.
        budget: the target as a fraction in (0, 1] of the unpruned network's measured
            latency; or
        budget_ms: the target in measured milliseconds (exactly one of the two).
        hw: input (height, width); default the cfg's `[net]` size.
        rounds: plan-and-measure rounds (>= 1; 1 measures the table's plan once).
        tolerance: a round whose measured fraction is within this relative error of the
            target ends the loop (0.1: 10 %).
        measure: plan -> (pruned ms, unpruned ms); default `openvino_measure`.
        runs: timed inferences per network and round for the default `measure`.
        **planner: further `plan_latency_pruning` arguments (layer_keep, importance,
            aggregate, units, rounds of its own exact check as `table_rounds`).

    Returns:
        ``(plan, rounds)``: the chosen plan, its `latency_budget` / `latency_budget_ms`
        the ones asked here, and every round measured.

    Raises:
        PruneError: a bad budget or round count, or a first plan that fails.
        LatencyError: measuring failed.
    """
    check_latency_budget(budget, budget_ms)
    if int(rounds) != rounds or rounds < 1:
        raise PruneError(f"latency_measured_rounds={rounds} must be an integer >= 1")
    if not 0 < tolerance < 1:
        raise PruneError(f"latency_tolerance={tolerance} must be between 0 and 1 (a relative error of the measured latency)")
    graph = graph if graph is not None else build_graph(model.cfg)
    hw = tuple(hw) if hw is not None else graph.cfg.input_hw  # type: ignore[assignment]
    measure = measure if measure is not None else openvino_measure(model, table, hw, graph, runs)
    table_rounds = planner.pop("table_rounds", 4)
    if budget_ms is not None:
        asked = float(budget_ms) * 1000.0 / predict_latency(graph.cfg, table, hw).total_us
    else:
        asked = float(budget)
    history: list[MeasuredRound] = []
    plans: list[PrunePlan] = []
    for round_ in range(int(rounds)):
        plan = None
        for _ in range(BELOW_FLOOR_TRIES):
            try:
                plan = plan_latency_pruning(model, graph, table=table, budget=min(asked, 1.0), hw=hw, rounds=table_rounds, **planner)
                break
            except PruneError as err:
                if not history:
                    raise
                # below the fastest plan the table knows: halfway back towards the last budget that planned
                _log.info("latency plan, measured round %d: the corrected budget %.3f cannot be planned (%s)", round_ + 1, asked, err)
                asked = (asked + history[-1].asked) / 2
        if plan is None:
            break
        if plans and plan.kept == plans[-1].kept and plan.removed_units == plans[-1].removed_units:
            break  # the correction no longer changes the plan
        pruned_ms, original_ms = measure(plan)
        target = float(budget) if budget is not None else float(budget_ms) / original_ms
        done = MeasuredRound(min(asked, 1.0), float(plan.latency_ms or 0.0), pruned_ms, original_ms, target)
        history.append(done)
        plans.append(plan)
        _log.info("latency plan, measured round %d: asked %.3f of the predicted latency, measured %.3f of the unpruned "
                  "(%.3f against %.3f ms) for a budget of %.3f (%+.1f%%)", round_ + 1, done.asked, done.fraction,
                  pruned_ms, original_ms, target, 100 * done.error)
        if abs(done.error) <= tolerance:
            break
        asked = max(MIN_ASKED, _next_asked(history))
    index = _chosen(history, tolerance)
    chosen = dataclasses.replace(plans[index], latency_budget=None if budget is None else float(budget),
                                 latency_budget_ms=None if budget_ms is None else float(budget_ms))
    if abs(history[index].error) > tolerance:
        _log.warning("latency plan: measured %.3f of the unpruned latency for a budget of %.3f after %d round(s) (%+.0f%%)",
                     history[index].fraction, history[index].target, len(history), 100 * history[index].error)
    return chosen, history


def _next_asked(history: list[MeasuredRound]) -> float:
    """The next budget to plan against, from the rounds so far (module docstring).

    Once some round measured over the target and another at or under it, the next budget
    lies between the two nearest such budgets, interpolated and kept off the ends (the
    measured fraction is a staircase in the budget: removing a residual unit drops it by
    steps). Before that: the factor correction after one round, the secant through the
    last two rounds after more, its step at most twice the factor's (a flat stretch of the
    staircase would send a plain secant far off).
    """
    last = history[-1]
    target = last.target
    over = [r for r in history if r.fraction > target]
    under = [r for r in history if r.fraction <= target]
    if over and under:
        hi = min(over, key=lambda r: r.asked)  # the smallest budget still measuring too slow
        lo = max(under, key=lambda r: r.asked)  # the largest measuring fast enough
        if lo.asked < hi.asked:
            share = (target - lo.fraction) / (hi.fraction - lo.fraction)
            return lo.asked + min(max(share, 0.1), 0.9) * (hi.asked - lo.asked)
    factor = last.asked * target / last.fraction
    if len(history) < 2:
        return factor
    prev = history[-2]
    slope = (last.fraction - prev.fraction) / (last.asked - prev.asked) if last.asked != prev.asked else 0.0
    if slope <= 0:
        return factor
    step, limit = (target - last.fraction) / slope, 2 * abs(factor - last.asked)
    return last.asked + max(-limit, min(limit, step))


def _chosen(history: list[MeasuredRound], tolerance: float) -> int:
    """The round closest to its target among those within ``target x (1 + tolerance)``, else the fastest."""
    within = [i for i, r in enumerate(history) if r.error <= tolerance]
    if within:
        return min(within, key=lambda i: abs(history[i].error))
    return min(range(len(history)), key=lambda i: history[i].fraction)


__all__ = ["MeasuredRound", "Measure", "openvino_measure", "plan_to_measured_budget"]
