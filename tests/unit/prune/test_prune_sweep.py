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
def test_optimal_is_the_lowest_bflops_within_tolerance():
    choice = choose_optimal(ROWS, 0.80, 0.01)
    assert choice.row["setting"] == "gp=0.88"  # 0.79 = 0.80 - 0.01 is inside (inclusive bound)
    assert "gp=0.88" in choice.reason and "3 of 4" in choice.reason
    assert choose_optimal(ROWS, 0.80, 0.005).row["setting"] == "gp=0.8"
    assert choose_optimal(ROWS, 0.80, 0.2).row["setting"] == "gp=0.9"


def test_ties_prefer_higher_map_then_fewer_params_then_name():
    rows = [row("b", 3.0, 0.79, 900), row("a", 3.0, 0.795, 1000), row("c", 5.0, 0.80)]
    assert choose_optimal(rows, 0.80).row["setting"] == "a"
    rows = [row("b", 3.0, 0.79, 900), row("a", 3.0, 0.79, 1000)]
    assert choose_optimal(rows, 0.80).row["setting"] == "b"
    rows = [row("b", 3.0, 0.79), row("a", 3.0, 0.79)]
    assert choose_optimal(rows, 0.80).row["setting"] == choose_optimal(rows[::-1], 0.80).row["setting"] == "a"


def test_no_point_within_tolerance_says_so():
    choice = choose_optimal(ROWS, 0.95, 0.01)
    assert choice.row is None
    assert "no setting keeps mAP@0.5 within 0.01 of the unpruned 0.9500" in choice.reason
    assert "gp=0.7" in choice.reason and "0.8050" in choice.reason  # the best one, named
    assert choice.to_dict()["setting"] is None and choice.to_dict()["cfg"] is None


def test_cost_only_sweep_has_no_optimal_point():
    rows = [row("gp=0.5", 3.0), row("gp=0.6", 2.0)]
    assert "no mAP@0.5" in choose_optimal(rows, None).reason
    assert choose_optimal(rows, 0.5).row is None


def test_negative_tolerance_is_refused():
    with pytest.raises(ConfigError, match=r"prune.tolerance=-0.1 must be a number >= 0"):
        choose_optimal(ROWS, 0.8, -0.1)


# ---------------------------------------------------------------------- table
def test_table_order_marks_and_formats():
    choice = choose_optimal(ROWS, 0.80)
    table = sweep_table(ROWS[::-1], REFERENCE, choice)
    assert [t["setting"] for t in table] == ["unpruned", "gp=0.7", "gp=0.8", "gp=0.88", "gp=0.9"]
    assert [t["optimal"] for t in table] == ["", "", "", "yes", ""]
    assert math.isclose(table[4]["delta_mAP50"], -0.10) and table[0]["delta_mAP50"] == 0
    md = format_markdown(table)
    assert "| **gp=0.88** |" in md and "| unpruned | 0.9000 | 0.7000 | 0.8000 | +0.0000 | 5,000 |" in md
    parsed = list(csv.reader(io.StringIO(format_csv(table))))
    assert parsed[0] == [title for _, title in COLUMNS]
    assert parsed[0][:4] == ["setting", "P", "R", "mAP@0.5"] and "BFLOPS" in parsed[0] and ".weights (MiB)" in parsed[0]
    assert float(parsed[2][parsed[0].index("BFLOPS")]) == 6.0 and parsed[4][-1] == "yes"


def test_plot_is_a_png(tmp_path):
    choice = choose_optimal(ROWS, 0.80)
    path = plot_sweep(ROWS, tmp_path / "sweep.png", REFERENCE, choice)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cost_only = plot_sweep([row("x", 1.0)], tmp_path / "cost.png", row("unpruned", 2.0))
    assert cost_only.stat().st_size > 1000 and not list(tmp_path.glob(".*tmp*"))


# ---------------------------------------------------------------------- sweep dir
def _job(dir_, setting: str, pruned: dict, reference: dict = REFERENCE, overrides=()):
    dir_.mkdir(parents=True)
    report = {"setting": setting, "overrides": list(overrides), "rows": {"original": reference, "pruned": pruned}}
    (dir_ / "report.json").write_text(json.dumps(report))


def test_write_sweep_collects_jobs_and_names_the_optimal_files(tmp_path):
    for i, r in enumerate(ROWS):
        _job(tmp_path / str(i), r["setting"], r, overrides=[f"prune.global_percent={r['setting'][3:]}", "img_size=64"])
    (tmp_path / "4").mkdir()
    (tmp_path / "4" / "error.json").write_text(json.dumps({"setting": "", "overrides": ["prune.global_percent=1.0", "img_size=64"], "error": "boom"}))
    written = write_sweep(tmp_path, tolerance=0.01)
    assert {p.name for p in tmp_path.iterdir() if p.is_file()} == {"sweep.md", "sweep.csv", "sweep.png", "optimal.json"}
    optimal = json.loads((tmp_path / "optimal.json").read_text())
    assert optimal["setting"] == "gp=0.88" and optimal["cfg"] == str(tmp_path / "2" / "pruned.cfg")
    assert optimal["weights"] == str(tmp_path / "2" / "pruned.weights") and optimal["row"]["mAP50"] == 0.79
    md = (tmp_path / "sweep.md").read_text()
    assert "failed: prune.global_percent=1.0: boom" in md and md.count("\n| ") == 6
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

    result = search_strongest(evaluate, 0.8, tolerance=0.01, low=0.0, high=0.95, coarse=5, resolution=0.01)
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

    result = search_strongest(evaluate, 0.5, tolerance=0.1, low=0, high=20, coarse=4, resolution=1, integer=True, axis="shortcuts")
    assert result.best == 5 and len(result.points) <= result.bound
    assert all(isinstance(p.value, int) for p in result.points)
    result = search_strongest(lambda v: evaluate(v) if v > 15 else 0.5, 0.5, low=0, high=20, coarse=4, resolution=1, integer=True)
    assert result.best == 15 and any(p.note.startswith("shortcuts=20") for p in result.points)
    assert result.to_dict()["evaluations"] == len(result.points)


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


def test_run_search_on_a_small_model_channel_axis(monkeypatch):
    monkeypatch.setattr(task, "evaluate", _kept_gamma_score)
    model = zoo_model("yolov4-tiny", 64)
    graph = build_graph(model.cfg)
    p = prune_options(tolerance=0.2)
    result = task.run_search(model, graph, p, [], 1.0, {})
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
    p = prune_options(mode="layer", tolerance=0.22, search_options={"coarse": 3})
    result = task.run_search(model, graph, p, [], 1.0, {})
    assert result.axis == "shortcuts" and result.best == 4  # 4 removed units: 0.80 >= 0.78, 5: 0.75 < 0.78
    assert len(result.points) <= result.bound
