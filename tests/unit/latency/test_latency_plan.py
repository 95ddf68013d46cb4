"""The latency planner on a formula table: budget reached, group-exact, importance kept."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from latency_fixtures import FormulaTable, sparse_model
from yolo_slim.darknet.cfg import parse_cfg
from yolo_slim.darknet.sections import ConvSection
from yolo_slim.errors import PruneError
from yolo_slim.graph import build_graph
from yolo_slim.latency.predict import predict_latency
from yolo_slim.prune.importance import bn_gamma_importance, coupled_scores
from yolo_slim.prune.latency_plan import plan_latency_pruning
from yolo_slim.prune.plan import PrunePlan, check_plan
from yolo_slim.prune.surgery import apply_plan, compact_cfg

ROOT = Path(__file__).parents[3]
DEMO = ROOT / "conf" / "model" / "cfg" / "yolov3-demo.cfg"
IRREGULAR = Path(__file__).parents[1] / "prune" / "irregular.cfg"


def _plan(model, budget=None, budget_ms=None, table=None, **kw):
    table = table or FormulaTable()
    graph = build_graph(model.cfg)
    plan = plan_latency_pruning(model, graph, table=table, budget=budget, budget_ms=budget_ms, **kw)
    return plan, graph, table


@pytest.mark.parametrize("name, size", [(str(DEMO), 160), ("yolov4-tiny", 128), (str(IRREGULAR), 64)])
@pytest.mark.parametrize("budget", [0.4, 0.7])
def test_reaches_the_budget_within_ten_percent_and_the_plan_is_exact(name, size, budget):
    model = sparse_model(parse_cfg(name) if name.endswith(".cfg") else name, img_size=size)
    plan, graph, table = _plan(model, budget=budget)
    keep = check_plan(graph, plan)
    baseline = predict_latency(model.cfg, table).total_ms
    reached = predict_latency(compact_cfg(graph, plan), table).total_ms
    assert reached <= budget * baseline + 1e-9
    assert reached >= 0.9 * budget * baseline
    assert plan.latency_ms == pytest.approx(reached)
    assert plan.latency_budget == budget and plan.latency_budget_ms == pytest.approx(budget * baseline)
    # the per-layer floor holds and the compact model runs
    for layer in graph.conv_nodes:
        assert keep[graph.positions[layer]].sum() >= 1
    compact = apply_plan(model, plan, graph=graph)
    assert compact(torch.zeros(1, 3, size, size)).shape[0] == 1
    assert PrunePlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


@pytest.mark.parametrize("name, size, budget", [("yolov4-tiny", 128, 0.35), ("yolov4-tiny", 128, 0.8), (str(IRREGULAR), 64, 0.4), (str(DEMO), 160, 0.5)])
def test_widths_land_on_the_fast_side_of_each_step(name, size, budget):
    # a width between two quantum multiples costs its own layer as much as the next
    # multiple: the planner only leaves one there when the whole step does not fit
    model = sparse_model(parse_cfg(name) if name.endswith(".cfg") else name, img_size=size)
    table = FormulaTable(quantum=16)
    plan, graph, _ = _plan(model, budget=budget, table=table)
    cfg = compact_cfg(graph, plan)
    widths = {i: s.filters for i, s in enumerate(cfg.layers) if isinstance(s, ConvSection)}
    full = {i: s.filters for i, s in enumerate(model.cfg.layers) if isinstance(s, ConvSection)}
    assert any(widths[i] < full[i] for i in full)
    keep = check_plan(graph, plan)
    scores = coupled_scores(graph, bn_gamma_importance(model.darknet_arrays()))
    for i, w in widths.items():
        if w % 16 == 0 or w in (1, full[i]):
            continue
        # raising this conv's group to the next multiple must break the budget
        group = graph.group_of(i)
        ids = np.flatnonzero(graph.coupled_group == group.index)
        cut = ids[~keep[ids]]
        more = keep.copy()
        more[cut[np.argsort(-scores[cut])][: 16 - w % 16]] = True
        bigger = compact_cfg(graph, dataclasses.replace(plan, kept=_kept(graph, more)))
        assert predict_latency(bigger, table).total_ms > plan.latency_budget_ms, (i, w)


def _kept(graph, keep):
    return {layer: tuple(int(c) for c in np.flatnonzero(keep[graph.positions[layer]])) for layer in graph.conv_nodes if not keep[graph.positions[layer]].all()}


def test_keeps_the_most_important_channels_of_each_group():
    model = sparse_model(str(DEMO), img_size=160, seed=3)
    plan, graph, _ = _plan(model, budget=0.5)
    keep = check_plan(graph, plan)
    scores = coupled_scores(graph, bn_gamma_importance(model.darknet_arrays()))
    for group in graph.groups:
        ids = np.flatnonzero((graph.coupled_group == group.index) & graph.prunable)
        kept, cut = ids[keep[ids]], ids[~keep[ids]]
        if kept.size and cut.size:
            assert scores[kept].min() >= scores[cut].max(), group.index


def test_removes_a_residual_unit_whose_gammas_are_dead():
    model = sparse_model(str(DEMO), img_size=160, dead=0.2)
    graph = build_graph(model.cfg)
    unit = graph.units[len(graph.units) // 2]
    with torch.no_grad():
        for conv in unit.convs:
            model.conv_blocks()[conv].bn.weight.mul_(1e-4)
    plan, _, _ = _plan(model, budget=0.9)
    assert unit.layers in plan.removed_units
    assert plan.shortcuts == len(plan.removed_units)
    plan_no_units, _, _ = _plan(model, budget=0.9, units=False)
    assert plan_no_units.removed_units == ()


def test_budget_in_milliseconds_and_a_budget_above_the_baseline():
    model = sparse_model("yolov4-tiny", img_size=96)
    table = FormulaTable()
    baseline = predict_latency(model.cfg, table).total_ms
    plan, graph, _ = _plan(model, budget_ms=0.6 * baseline, table=table)
    assert plan.latency_budget is None and plan.latency_budget_ms == pytest.approx(0.6 * baseline)
    assert plan.latency_ms <= 0.6 * baseline
    same, _, _ = _plan(model, budget=1.0, table=table)
    assert same.kept == {} and same.removed_units == ()


def test_bad_budgets_are_refused():
    model = sparse_model("yolov4-tiny", img_size=96)
    with pytest.raises(PruneError, match="give exactly one latency budget"):
        _plan(model)
    with pytest.raises(PruneError, match="give exactly one latency budget"):
        _plan(model, budget=0.5, budget_ms=2.0)
    with pytest.raises(PruneError, match=r"latency_budget=1.5 is outside \[0.0, 1.0\]"):
        _plan(model, budget=1.5)
    with pytest.raises(PruneError, match="latency_budget=0.0 must be > 0"):
        _plan(model, budget=0.0)
    with pytest.raises(PruneError, match="latency_budget_ms=-1.0 must be a positive number"):
        _plan(model, budget_ms=-1.0)
    with pytest.raises(PruneError, match="below the fastest plan found"):
        _plan(model, budget_ms=0.001)


def test_no_channel_is_cut_where_the_plan_cannot_save_time():
    # a table where nothing but the fixed cost counts: no move saves anything, so a
    # budget under the baseline cannot be met, and the planner says so
    class Flat(FormulaTable):
        def entries(self, specs):
            return {s: dataclasses.replace(e, us=1.0) for s, e in super().entries(specs).items()}

    model = sparse_model(str(DEMO), img_size=96)
    with pytest.raises(PruneError, match="below the fastest plan found"):
        _plan(model, budget=0.99, table=Flat(), units=False)
