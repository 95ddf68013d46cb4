"""`plan_to_measured_budget`: the latency plan corrected by whole-network measurements.

The "device" here is a formula that the table does not know: a fixed share of the
unpruned latency that pruning never removes (what OpenVINO's per-call and per-node
costs are on a thin model), so the table's plan for a budget measures slower than asked.
"""

from __future__ import annotations

import pytest

from latency_fixtures import FormulaTable, sparse_model
from yolo_slim.darknet.cfg import parse_cfg
from yolo_slim.errors import PruneError
from yolo_slim.graph import build_graph
from yolo_slim.latency.predict import predict_latency
from yolo_slim.prune.latency_measured import plan_to_measured_budget
from yolo_slim.prune.plan import check_plan
from yolo_slim.prune.surgery import compact_cfg

from pathlib import Path

DEMO = Path(__file__).parents[3] / "conf" / "model" / "cfg" / "yolov3-demo.cfg"


def _device(model, table, graph, hidden_share: float):
    """measure(plan) -> (pruned ms, unpruned ms): predicted ms scaled so that `hidden_share`
    of the unpruned latency stays whatever is cut."""
    base = predict_latency(model.cfg, table).total_ms
    calls = []

    def measure(plan):
        predicted = predict_latency(compact_cfg(graph, plan), table).total_ms
        calls.append(plan)
        return hidden_share * base + (1 - hidden_share) * predicted, base

    return measure, calls


def test_the_table_alone_misses_and_the_measured_rounds_reach_the_budget() -> None:
    model = sparse_model(parse_cfg(str(DEMO)), img_size=160)
    table, graph = FormulaTable(), build_graph(model.cfg)
    measure, calls = _device(model, table, graph, hidden_share=0.3)
    once, first = plan_to_measured_budget(model, graph, table=table, budget=0.6, rounds=1, measure=measure)
    assert len(first) == 1 and first[0].error > 0.1  # the table's plan measures well over 0.6
    plan, rounds = plan_to_measured_budget(model, graph, table=table, budget=0.6, rounds=4, measure=measure)
    assert 1 < len(rounds) <= 4 and abs(rounds[-1].error) <= 0.1
    assert rounds[0].asked == pytest.approx(0.6) and rounds[1].asked < 0.6  # asked lower after measuring slower
    assert plan.latency_budget == 0.6 and plan.latency_budget_ms is None  # what the user asked
    check_plan(graph, plan)  # still group-exact
    assert len(calls) == 1 + len(rounds)


def test_after_two_rounds_the_secant_corrects_for_what_pruning_cannot_remove() -> None:
    # 45 % of the latency stays: the factor rule alone would creep towards 0.6 (0.78, 0.70, 0.66, ...)
    model = sparse_model(parse_cfg(str(DEMO)), img_size=160)
    table, graph = FormulaTable(), build_graph(model.cfg)
    measure, _ = _device(model, table, graph, hidden_share=0.45)
    _, rounds = plan_to_measured_budget(model, graph, table=table, budget=0.6, rounds=6, tolerance=0.05, measure=measure)
    assert len(rounds) <= 4 and abs(rounds[-1].error) <= 0.05
    assert rounds[1].asked == pytest.approx(0.6 * 0.6 / rounds[0].fraction)  # the factor first
    slope = (rounds[1].fraction - rounds[0].fraction) / (rounds[1].asked - rounds[0].asked)
    secant = (0.6 - rounds[1].fraction) / slope
    factor_step = rounds[1].asked * 0.6 / rounds[1].fraction - rounds[1].asked
    # then the secant, its step at most twice the factor's
    assert rounds[2].asked == pytest.approx(rounds[1].asked + max(secant, 2 * factor_step))


def test_once_bracketed_the_budget_is_interpolated_between_the_two_nearest_rounds() -> None:
    from yolo_slim.prune.latency_measured import MeasuredRound, _next_asked

    over, under = MeasuredRound(0.45, 1.0, 0.73, 1.0, 0.6), MeasuredRound(0.31, 1.0, 0.44, 1.0, 0.6)
    asked = _next_asked([MeasuredRound(0.6, 1.0, 0.8, 1.0, 0.6), over, under])
    assert asked == pytest.approx(0.31 + (0.6 - 0.44) / (0.73 - 0.44) * (0.45 - 0.31))
    # an interpolation at an end of the bracket is kept 10 % inside it
    assert _next_asked([over, MeasuredRound(0.31, 1.0, 0.599, 1.0, 0.6)]) == pytest.approx(0.31 + 0.1 * 0.14)


def test_a_budget_in_milliseconds_is_a_measured_one() -> None:
    model = sparse_model(parse_cfg(str(DEMO)), img_size=160)
    table, graph = FormulaTable(), build_graph(model.cfg)
    measure, _ = _device(model, table, graph, hidden_share=0.3)
    base = predict_latency(model.cfg, table).total_ms
    plan, rounds = plan_to_measured_budget(model, graph, table=table, budget_ms=0.6 * base, rounds=4, measure=measure)
    assert rounds[-1].target == pytest.approx(0.6) and abs(rounds[-1].error) <= 0.1
    assert plan.latency_budget is None and plan.latency_budget_ms == pytest.approx(0.6 * base)


def test_an_unreachable_budget_keeps_the_fastest_round() -> None:
    # 90 % of the latency never goes: 0.5 cannot be measured; the fastest plan tried is kept
    model = sparse_model(parse_cfg(str(DEMO)), img_size=160)
    table, graph = FormulaTable(), build_graph(model.cfg)
    measure, _ = _device(model, table, graph, hidden_share=0.9)
    plan, rounds = plan_to_measured_budget(model, graph, table=table, budget=0.5, rounds=3, measure=measure)
    assert all(r.error > 0.1 for r in rounds)
    fastest = min(rounds, key=lambda r: r.fraction)
    assert predict_latency(compact_cfg(graph, plan), table).total_ms == pytest.approx(fastest.predicted_ms)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"budget": 0.5, "budget_ms": 1.0}, r"^give exactly one latency budget"),
        ({"budget": 0.5, "rounds": 0}, r"^latency_measured_rounds=0 must be an integer >= 1$"),
        ({"budget": 0.5, "tolerance": 0.0}, r"^latency_tolerance=0.0 must be between 0 and 1"),
    ],
)
def test_bad_arguments_are_one_line(kwargs: dict, message: str) -> None:
    model = sparse_model("yolov4-tiny", img_size=128)
    with pytest.raises(PruneError, match=message):
        plan_to_measured_budget(model, table=FormulaTable(), measure=lambda plan: (1.0, 1.0), **kwargs)


def test_a_correction_below_the_fastest_plan_steps_back_halfway() -> None:
    model = sparse_model(parse_cfg(str(DEMO)), img_size=160)
    table, graph = FormulaTable(), build_graph(model.cfg)
    base = predict_latency(model.cfg, table).total_ms
    fastest = 0.2  # pretend the table's fastest plan is at 0.2 of the baseline: lower budgets are refused
    import yolo_slim.prune.latency_measured as measured

    real = measured.plan_latency_pruning
    asked = []

    def floor_planner(*args, budget, **kw):
        asked.append(budget)
        if budget < fastest:
            raise PruneError(f"latency_budget={budget} is below the fastest plan")
        return real(*args, budget=budget, **kw)

    def device(plan):  # 85 % of the latency stays: 0.4 is far below what the first plans measure
        return 0.85 * base + 0.15 * predict_latency(compact_cfg(graph, plan), table).total_ms, base

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(measured, "plan_latency_pruning", floor_planner)
        _, rounds = plan_to_measured_budget(model, graph, table=table, budget=0.4, rounds=4, measure=device)
    refused = [b for b in asked if b < fastest]
    assert refused and len(rounds) > 2  # it went on after a refusal, with budgets halfway back
    assert all(r.asked >= fastest for r in rounds)
