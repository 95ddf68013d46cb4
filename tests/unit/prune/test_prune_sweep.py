"""Sweep table, optimal-point choice, plot, sweep dir collection and the bisection search."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import yolo_slim.prune.task as task
from yolo_slim.errors import ConfigError, PruneError
from yolo_slim.graph import build_graph
from yolo_slim.model import Darknet
from yolo_slim.prune.accept import Acceptance, learned_nothing
from yolo_slim.prune.plan import plan_channel_pruning
from yolo_slim.prune.search import max_evaluations, search_strongest
from yolo_slim.prune.sweep import (
    COLUMNS,
    choose_optimal,
    collect_rows,
    format_csv,
    format_markdown,
    plot_sweep,
    sweep_table,
    write_sweep,
)

from prune_fixtures import randomize, zoo_model


def row(setting: str, bflops: float, map50: float | None = None, params: int = 1000) -> dict:
    r = {"setting": setting, "bflops": bflops, "params": params, "weights_mib": params * 4 / 2**20, "latency_ms": 1.0}
    if map50 is not None:
        r.update(precision=map50 + 0.1, recall=map50 - 0.1, mAP50=map50)
    return r


CONF = Path(__file__).parents[3] / "conf"
DEMO_CFG = CONF / "model" / "cfg" / "yolov3-demo.cfg"
REFERENCE = row("unpruned", 10.0, 0.80, 5000)
ROWS = [row("gp=0.7", 6.0, 0.805), row("gp=0.8", 4.0, 0.795), row("gp=0.88", 3.0, 0.79), row("gp=0.9", 2.0, 0.70)]


# ---------------------------------------------------------------------- choice
def test_optimal_is_the_lowest_bflops_accepted():
    choice = choose_optimal(ROWS, REFERENCE, Acceptance(tolerance=0.01))
    assert choice.row["setting"] == "gp=0.88"  # 0.79 = 0.80 - 0.01 is inside (inclusive bound)
    assert "gp=0.88" in choice.reason and "3 of 4" in choice.reason
    assert choose_optimal(ROWS, REFERENCE, Acceptance(tolerance=0.005)).row["setting"] == "gp=0.8"
    assert choose_optimal(ROWS, REFERENCE, Acceptance(tolerance=0.2, keep_map=0.0)).row["setting"] == "gp=0.9"


def test_optimal_at_the_strongest_setting_tried_says_to_sweep_past_it():
    # the cliff lies inside the sweep: no hint
    assert "sweep past it" not in choose_optimal(ROWS, REFERENCE, Acceptance(tolerance=0.01)).reason
    # every setting kept the mAP (the aerial tiles on the widened demo model, Dec 4: 0.5-0.85 all accepted)
    choice = choose_optimal(ROWS[:3], REFERENCE, Acceptance(tolerance=0.01))
    assert choice.row["setting"] == "gp=0.88"
    assert "strongest setting the sweep tried" in choice.reason and "sweep past it" in choice.reason


def test_absolute_and_relative_tolerance_must_both_hold():
    # 0.70 is within 0.2 of 0.80, but below 0.95 x 0.80 = 0.76
    choice = choose_optimal(ROWS, REFERENCE, Acceptance(tolerance=0.2, keep_map=0.95))
    assert choice.row["setting"] == "gp=0.88"
    # relative alone: 0.99 x 0.80 = 0.792 keeps 0.795 and rejects 0.79
    assert choose_optimal(ROWS, REFERENCE, Acceptance(tolerance=1.0, keep_map=0.99)).row["setting"] == "gp=0.8"
    assert choose_optimal(ROWS, REFERENCE, Acceptance(tolerance=1.0, keep_map=0.875)).row["setting"] == "gp=0.9"
    rule = Acceptance(tolerance=0.2, keep_map=0.95)
    assert rule.verdict(ROWS[3], REFERENCE) == "mAP 0.700 < 0.95 x 0.800"
    assert Acceptance(tolerance=0.001).verdict(ROWS[1], REFERENCE) == "mAP 0.795 < 0.800 - 0.001"
    assert rule.verdict(ROWS[2], REFERENCE) == "ok" and rule.map_floor(0.8) == pytest.approx(0.76)


def collapsed(setting: str, bflops: float, map50: float, precision: float, recall: float) -> dict:
    return {**row(setting, bflops, map50), "precision": precision, "recall": recall}


def test_a_point_whose_recall_collapsed_is_never_optimal():
    # the tutorial's cliff: P jumps while R falls; mAP@0.5 alone would accept the strongest point
    rows = [row("gp=0.7", 6.0, 0.80), collapsed("gp=0.9", 2.0, 0.795, 1.0, 0.20), collapsed("gp=0.8", 4.0, 0.80, 0.95, 0.60)]
    for rule in (Acceptance(), Acceptance(tolerance=0.5, keep_map=0.0)):
        choice = choose_optimal(rows, REFERENCE, rule)
        assert choice.row["setting"] == "gp=0.8"  # recall 0.60 >= 0.8 x 0.70
        table = sweep_table(rows, REFERENCE, choice)
        assert {t["setting"]: t["verdict"] for t in table}["gp=0.9"] == "recall collapsed 0.200 < 0.8 x 0.700"
    assert choose_optimal(rows, REFERENCE, Acceptance(keep_recall=0.9)).row["setting"] == "gp=0.7"
    assert choose_optimal(rows, REFERENCE, Acceptance(keep_recall=0.0)).row["setting"] == "gp=0.9"
    # without P and R (a row from an older report) the recall rule cannot pass
    assert Acceptance().verdict({"mAP50": 0.8}, REFERENCE) == "no recall"


def test_a_model_that_learned_nothing_gets_no_optimal_point():
    # the case: unpruned mAP@0.5 0.053, tolerance 3 points, the strongest point at P = R = 0
    reference = {**row("unpruned", 10.0, 0.053), "precision": 0.088, "recall": 0.109}
    rows = [collapsed("gp=0.5", 6.0, 0.052, 0.08, 0.10), collapsed("gp=0.8", 2.0, 0.03, 0.0, 0.0)]
    choice = choose_optimal(rows, reference, Acceptance(tolerance=0.03))
    assert choice.row is None and choice.to_dict()["setting"] is None
    assert "unpruned mAP 0.053 < min_map 0.1" in choice.reason and "prune.min_map" in choice.reason
    verdicts = [t["verdict"] for t in sweep_table(rows, reference, choice)]
    assert verdicts[0] == "reference" and all(v.startswith("unpruned mAP 0.053 < min_map 0.1") for v in verdicts[1:])
    # pruning it anyway (min_map=0): the P = R = 0 point is still refused, its recall collapsed
    anyway = choose_optimal(rows, reference, Acceptance(tolerance=0.03, min_map=0.0))
    assert anyway.row["setting"] == "gp=0.5"


def test_one_floor_for_a_model_that_learned_nothing_in_the_sweep_and_the_gate():
    from yolo_slim.pipeline.gate import check_baseline

    cases = [(None, True), (float("nan"), True), (float("inf"), True), ("0.3", True), (0.0999, True), (0.1, False), (0.3, False),
             (np.float32(0.3), False)]
    assert [learned_nothing(value, 0.1) for value, _ in cases] == [expected for _, expected in cases]
    for value, expected in cases[1:]:  # the gate's baseline check and the sweep's reference check agree
        if isinstance(value, str):
            continue
        convergence = {"status": "converged", "best_map50": value, "verdict": "converged"}
        assert check_baseline({"training": {"convergence": convergence}}, min_map=0.1).passed is not expected
        assert (Acceptance().reference_problem({"mAP50": value}) is not None) is expected


def test_no_point_accepted_says_so():
    choice = choose_optimal(ROWS, {**REFERENCE, "mAP50": 0.95}, Acceptance(tolerance=0.01))
    assert choice.row is None
    assert "no setting is accepted" in choice.reason and "mAP@0.5 >= max(unpruned - 0.01, 0.95 x unpruned)" in choice.reason
    assert "gp=0.7" in choice.reason and "mAP 0.805 < 0.950 - 0.01" in choice.reason  # the best one, named
    assert choice.to_dict()["setting"] is None and choice.to_dict()["cfg"] is None


def test_cost_only_sweep_has_no_optimal_point():
    rows = [row("gp=0.5", 3.0), row("gp=0.6", 2.0)]
    assert "no mAP@0.5" in choose_optimal(rows, None).reason
    assert choose_optimal(rows, row("unpruned", 4.0)).row is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"tolerance": -0.1}, r"prune.tolerance=-0.1 must be a number >= 0"),
        ({"keep_map": 1.5}, r"prune.keep_map=1.5 must be a number in \[0, 1\] \(kept fraction of the unpruned mAP@0.5\)"),
        ({"keep_recall": "a lot"}, r"prune.keep_recall='a lot' must be a number in \[0, 1\]"),
        ({"min_map": True}, r"prune.min_map=True must be a number"),
        ({"keep_map": 2, "prefix": "channel_sweep"}, r"channel_sweep.keep_map=2 must be"),
    ],
)
def test_bad_acceptance_values_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Acceptance(**kwargs)


def test_acceptance_reads_a_config_section():
    rule = Acceptance.from_config(OmegaConf.create({"tolerance": 0.03, "keep_map": 0.9, "percents": [0.5]}), "channel_sweep")
    assert rule == Acceptance(tolerance=0.03, keep_map=0.9) and rule.prefix == "channel_sweep"
    assert rule.to_dict() == {"tolerance": 0.03, "keep_map": 0.9, "keep_recall": 0.8, "min_map": 0.1}
    assert Acceptance.from_config(prune_options()) == Acceptance()  # the shipped defaults are the class's
    with pytest.raises(ConfigError, match=r"channel_sweep.min_map=-1"):
        Acceptance.from_config({"min_map": -1}, "channel_sweep")
    with pytest.raises(ConfigError, match=r"prune.keep_recall=None must be a number"):
        Acceptance.from_config(OmegaConf.create({"keep_recall": None}))


# ---------------------------------------------------------------------- table
def test_table_order_marks_verdicts_and_formats():
    choice = choose_optimal(ROWS, REFERENCE)
    plan = {"global_percent": 0.88, "threshold": 0.0123456, "achieved_percent": 0.4321}
    rows = [{**r, **plan} if r["setting"] == "gp=0.88" else r for r in ROWS[::-1]]
    table = sweep_table(rows, REFERENCE, choice)
    assert [t["setting"] for t in table] == ["unpruned", "gp=0.7", "gp=0.8", "gp=0.88", "gp=0.9"]
    assert [t["optimal"] for t in table] == ["", "", "", "yes", ""]
    assert [t["verdict"] for t in table] == ["reference", "ok", "ok", "ok", "mAP 0.700 < 0.800 - 0.01"]
    assert math.isclose(table[4]["delta_mAP50"], -0.10) and table[0]["delta_mAP50"] == 0
    md = format_markdown(table)
    assert "| **gp=0.88** | 0.8900 | 0.6900 | 0.7900 | -0.0100 | 0.880 | 0.0123 | 0.432 | 1,000 |" in md
    assert "| unpruned | 0.9000 | 0.7000 | 0.8000 | +0.0000 | - | - | - | 5,000 |" in md and md.rstrip().endswith("| mAP 0.700 < 0.800 - 0.01 |")
    parsed = list(csv.reader(io.StringIO(format_csv(table))))
    assert parsed[0] == [title for _, title in COLUMNS]
    assert parsed[0][:4] == ["setting", "P", "R", "mAP@0.5"] and "BFLOPS" in parsed[0] and ".weights (MiB)" in parsed[0]
    assert parsed[0][5:8] == ["global_percent", "threshold", "cut (achieved)"] and parsed[4][5:8] == ["0.88", "0.0123456", "0.4321"]
    assert float(parsed[2][parsed[0].index("BFLOPS")]) == 6.0 and parsed[4][-2:] == ["yes", "ok"]


def test_plot_is_a_png(tmp_path):
    choice = choose_optimal(ROWS, REFERENCE)
    path = plot_sweep(ROWS, tmp_path / "sweep.png", REFERENCE, choice)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cost_only = plot_sweep([row("x", 1.0)], tmp_path / "cost.png", row("unpruned", 2.0))
    assert cost_only.stat().st_size > 1000 and not list(tmp_path.glob(".*tmp*"))


# ---------------------------------------------------------------------- sweep dir
def _job(dir_, setting: str, pruned: dict, reference: dict = REFERENCE, overrides=(), plan=None):
    dir_.mkdir(parents=True)
    report = {"setting": setting, "overrides": list(overrides), "rows": {"original": reference, "pruned": pruned}, "plan": plan or {}}
    (dir_ / "report.json").write_text(json.dumps(report))


def test_write_sweep_collects_jobs_and_names_the_optimal_files(tmp_path):
    for i, r in enumerate(ROWS):
        gp = float(r["setting"][3:])
        plan = {"global_percent": gp, "threshold": gp / 100, "achieved_percent": gp / 2, "kept": {}}
        _job(tmp_path / str(i), r["setting"], r, overrides=[f"prune.global_percent={gp}", "img_size=64"], plan=plan)
    (tmp_path / "4").mkdir()
    (tmp_path / "4" / "error.json").write_text(json.dumps({"setting": "", "overrides": ["prune.global_percent=1.0", "img_size=64"], "error": "boom"}))
    written = write_sweep(tmp_path, Acceptance(tolerance=0.01))
    assert {p.name for p in tmp_path.iterdir() if p.is_file()} == {"sweep.md", "sweep.csv", "sweep.png", "optimal.json"}
    optimal = json.loads((tmp_path / "optimal.json").read_text())
    assert optimal["setting"] == "gp=0.88" and optimal["cfg"] == str(tmp_path / "2" / "pruned.cfg")
    assert optimal["weights"] == str(tmp_path / "2" / "pruned.weights") and optimal["row"]["mAP50"] == 0.79
    md = (tmp_path / "sweep.md").read_text()
    assert "failed: prune.global_percent=1.0: boom" in md and md.count("\n| ") == 6
    assert "| **gp=0.88** |" in md and "| 0.880 | 0.0088 | 0.440 |" in md and optimal["row"]["achieved_percent"] == 0.44
    assert optimal["acceptance"] == {"tolerance": 0.01, "keep_map": 0.95, "keep_recall": 0.8, "min_map": 0.1}
    assert len(written["failures"]) == 1


def test_collect_refuses_mixed_models_and_empty_sweeps(tmp_path):
    _job(tmp_path / "0", "a", ROWS[0])
    _job(tmp_path / "1", "b", ROWS[1], reference={**REFERENCE, "params": 7})
    with pytest.raises(PruneError, match="its unpruned model differs from the other jobs'"):
        collect_rows(tmp_path)
    with pytest.raises(PruneError, match="no prune job wrote report.json"):
        write_sweep(tmp_path / "empty")


# ---------------------------------------------------------------------- search
@pytest.mark.parametrize("boundary", [0.0, 0.005, 0.13, 0.5, 0.777, 0.889, 0.95, 0.97])
def test_search_finds_a_monotone_boundary_within_resolution(boundary):
    calls = []

    def evaluate(value):
        calls.append(value)
        return 0.8 - (0.3 if value > boundary else 0.0) - 0.001 * value  # monotone, a cliff after the boundary

    result = search_strongest(evaluate, 0.8, acceptance=Acceptance(tolerance=0.01), low=0.0, high=0.95, coarse=5, resolution=0.01)
    assert len(calls) == len(result.points) <= result.bound == max_evaluations(0.0, 0.95, 5, 0.01) == 10
    if boundary < 0.01:
        assert result.best is None
    else:
        assert min(boundary, 0.95) - 0.01 - 1e-9 <= result.best <= boundary
    assert all(p.ok == (p.value <= boundary) for p in result.points)


def test_integer_search_and_planner_errors():
    def evaluate(value):
        if value > 15:
            raise PruneError(f"shortcuts={value} but only 15 units")
        return {"mAP50": 0.5 - 0.02 * value, "bflops": 10.0 - value}

    rule = Acceptance(tolerance=0.1, keep_map=0.0)
    result = search_strongest(evaluate, 0.5, acceptance=rule, low=0, high=20, coarse=4, resolution=1, integer=True, axis="shortcuts")
    assert result.best == 5 and len(result.points) <= result.bound
    assert all(isinstance(p.value, int) for p in result.points)
    result = search_strongest(lambda v: evaluate(v) if v > 15 else 0.5, 0.5, low=0, high=20, coarse=4, resolution=1, integer=True)
    assert result.best == 15 and any(p.note.startswith("shortcuts=20") for p in result.points)
    assert result.to_dict()["evaluations"] == len(result.points)


def test_search_uses_the_sweeps_rule_recall_and_relative_tolerance():
    # mAP@0.5 barely moves, but the recall collapses past 0.6: the search stops before it
    def evaluate(value):
        return {"mAP50": 0.6 - 0.01 * value, "recall": 0.7 if value <= 0.6 else 0.1, "precision": 0.5 if value <= 0.6 else 1.0}

    reference = {"mAP50": 0.6, "recall": 0.7}
    result = search_strongest(evaluate, reference, acceptance=Acceptance(tolerance=0.05), high=0.95, resolution=0.01)
    assert 0.59 <= result.best <= 0.6
    rejected = [p for p in result.points if not p.ok]
    assert rejected and all(p.note.startswith("recall collapsed") for p in rejected)
    # relative: 0.99 x 0.6 = 0.594 rejects strengths above 0.6 even with a large absolute tolerance
    result = search_strongest(evaluate, reference, acceptance=Acceptance(tolerance=0.5, keep_map=0.99, keep_recall=0), resolution=0.01)
    assert 0.59 <= result.best <= 0.6 and result.to_dict()["acceptance"]["keep_map"] == 0.99


def test_search_refuses_a_model_that_learned_nothing():
    calls = []
    result = search_strongest(lambda v: calls.append(v) or 0.05, {"mAP50": 0.05, "recall": 0.1}, acceptance=Acceptance(tolerance=0.03))
    assert result.best is None and result.points == () and calls == []
    assert result.reason == "unpruned mAP 0.050 < min_map 0.1"


def test_search_options_are_checked():
    with pytest.raises(ConfigError, match=r"search range low=0.9 .. high=0.5 is empty"):
        search_strongest(lambda v: 1.0, 1.0, low=0.9, high=0.5)
    with pytest.raises(ConfigError, match="coarse=0 must be an integer >= 1"):
        search_strongest(lambda v: 1.0, 1.0, coarse=0)
    with pytest.raises(ConfigError, match=r"resolution=0.5 must be > 0 and an integer"):
        search_strongest(lambda v: 1.0, 1.0, high=10, resolution=0.5, integer=True)


def prune_options(**delta):
    """conf/prune/channel.yaml (the shipped defaults) with `delta`."""
    return OmegaConf.merge(OmegaConf.load(CONF / "prune" / "channel.yaml"), delta)


def _kept_gamma_score(model, batches, num_classes, e, progress=None):
    """Synthetic quality: the fraction of BN channels whose gamma is not zero."""
    gammas = torch.cat([b.bn.weight.detach().flatten() for b in model.conv_blocks().values() if b.bn is not None])
    return {"mAP50": float((gammas != 0).float().mean()), "precision": 1.0, "recall": 1.0}


UNIT = {"mAP50": 1.0, "recall": 1.0}


def test_run_search_on_a_small_model_channel_axis(monkeypatch):
    monkeypatch.setattr(task, "evaluate", _kept_gamma_score)
    model = zoo_model("yolov4-tiny", 64)
    graph = build_graph(model.cfg)
    p = prune_options(tolerance=0.2, keep_map=0.0)
    result = task.run_search(model, graph, p, [], UNIT, {})
    total = sum(b.bn.weight.numel() for b in model.conv_blocks().values() if b.bn is not None)

    def masked_fraction(gp):  # oracle: the planner's cut count, no masking involved
        plan = plan_channel_pruning(model, graph, global_percent=gp)
        return sum(model.cfg.layers[i].filters - len(k) for i, k in plan.kept.items()) / total

    grid = np.round(np.arange(0.01, 0.96, 0.01), 2)
    boundary = max(g for g in grid if masked_fraction(g) <= 0.2 + 1e-12)
    assert boundary - 0.01 - 1e-9 <= result.best <= boundary
    assert len(result.points) <= result.bound == 10
    assert all(p.metrics["bflops"] > 0 for p in result.points)


def test_run_search_on_a_small_model_layer_axis(monkeypatch):
    def dead_layers(model, batches, num_classes, e, progress=None):  # quality drops 0.05 per fully-masked BN layer
        dead = sum(int((b.bn.weight == 0).all()) for b in model.conv_blocks().values() if b.bn is not None)
        return {"mAP50": 1.0 - 0.05 * dead}

    monkeypatch.setattr(task, "evaluate", dead_layers)
    torch.manual_seed(0)
    model = randomize(Darknet.from_cfg(str(DEMO_CFG), classes=2, img_size=64), kernels=False)
    graph = build_graph(model.cfg)
    assert len(graph.units) == 13
    p = prune_options(mode="layer", tolerance=0.22, keep_map=0.0, search_options={"coarse": 3})
    result = task.run_search(model, graph, p, [], {"mAP50": 1.0}, {})
    assert result.axis == "shortcuts" and result.best == 4  # 4 removed units: 0.80 >= 0.78, 5: 0.75 < 0.78
    assert len(result.points) <= result.bound
