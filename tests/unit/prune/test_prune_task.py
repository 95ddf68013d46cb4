"""prune(cfg): files written, checkpoint loadable, bad requests refused (cost-only, no data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from yolo_slim.darknet.cfg import parse_cfg
from yolo_slim.errors import ConfigError, PruneError
from yolo_slim.io.checkpoint import ema_state_dict, load_matching_state, read_checkpoint
from yolo_slim.model import Darknet
from yolo_slim.prune.plan import load_plan
from yolo_slim.prune.task import prune

CONF = Path(__file__).parents[3] / "conf"


def _cfg(out: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(
            config_name="prune",
            overrides=["data=none", "latency_runs=1", "prune.latency.report=false", "model.cfg=yolov4-tiny", "model.classes=2", "img_size=64", f"paths.output_dir={out}", *overrides],
        )


def test_channel_run_writes_everything(tmp_path):
    metrics, artifacts = prune(_cfg(tmp_path, "prune=channel", "prune.global_percent=0.5", "prune.channel_multiple=8"))
    assert set(artifacts) == {"plan", "cfg", "weights", "ckpt", "report_json", "report_md"}
    assert 0 < metrics["prune/params_ratio"] < 1 and 0 < metrics["prune/bflops_ratio"] < 1
    plan = load_plan(artifacts["plan"])
    assert plan.global_percent == 0.5 and plan.channel_multiple == 8
    model = Darknet(parse_cfg(artifacts["cfg"]))
    model.load_darknet_weights(artifacts["weights"])
    ckpt = Darknet(parse_cfg(artifacts["cfg"]))
    load_matching_state(ckpt, ema_state_dict(read_checkpoint(artifacts["ckpt"])["state_dict"]), "pruned.ckpt")
    for a, b in zip(model.state_dict().values(), ckpt.state_dict().values()):
        assert torch.equal(a, b)
    report = json.loads(artifacts["report_json"].read_text())
    assert set(report["rows"]) == {"original", "pruned"}
    assert "| pruned |" in artifacts["report_md"].read_text()


def test_plan_file_is_reapplied(tmp_path):
    _, first = prune(_cfg(tmp_path / "a", "prune.global_percent=0.3"))
    _, second = prune(_cfg(tmp_path / "b", f"prune.plan={first['plan']}", "prune.global_percent=0.9"))
    assert first["cfg"].read_text() == second["cfg"].read_text()


def test_bad_requests_are_refused(tmp_path):
    with pytest.raises(PruneError, match=r"global_percent=1.0 is outside \[0.0, 1.0\)"):
        prune(_cfg(tmp_path, "prune.global_percent=1.0"))
    with pytest.raises(PruneError, match="has only 0 removable residual units"):
        prune(_cfg(tmp_path, "prune=layer", "prune.shortcuts=2"))
    cfg_path = tmp_path / "pruned.cfg"
    Darknet.from_cfg("yolov4-tiny", classes=2).to_cfg(cfg_path)
    with pytest.raises(PruneError, match="is an input of this run"):
        prune(_cfg(tmp_path, f"model.cfg={cfg_path}"))


def test_reports_state_the_threshold_and_the_requested_and_achieved_percent(tmp_path):
    metrics, artifacts = prune(_cfg(tmp_path / "t", "prune.global_percent=0.3"))
    plan = load_plan(artifacts["plan"])
    assert plan.cut_by == "threshold" and plan.threshold == 1.0  # untrained: every gamma is 1, all tie at the threshold
    assert metrics["prune/achieved_percent"] == plan.achieved_percent > 0.9
    md = artifacts["report_md"].read_text()
    assert f"cut by threshold: |gamma| threshold 1 (the 0.3 quantile of the prunable channels), achieved {plan.achieved_percent:.3f}" in md
    report = json.loads(artifacts["report_json"].read_text())
    assert report["plan"]["achieved_percent"] == plan.achieved_percent and report["acceptance"]["keep_recall"] == 0.8
    _, quota = prune(_cfg(tmp_path / "q", "prune.global_percent=0.3", "prune.cut_by=quota"))
    achieved = load_plan(quota["plan"]).achieved_percent
    assert 0.25 < achieved <= 0.3  # the quota, less what the split balance added back
    assert f"cut by quota: requested 0.3 of the prunable channels, achieved {achieved:.3f}" in quota["report_md"].read_text()


def test_bad_acceptance_or_cut_by_is_refused_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match=r"prune.keep_map=2 must be a number in \[0, 1\]"):
        prune(_cfg(tmp_path, "prune.keep_map=2"))
    assert not any(tmp_path.iterdir())
    with pytest.raises(ConfigError, match=r"^prune.cut_by='share': expected threshold or quota \(what global_percent means"):
        prune(_cfg(tmp_path, "prune.cut_by=share"))
    assert not any(tmp_path.iterdir())


def test_channel_multiple_auto_rounds_to_the_measured_quantum(tmp_path, monkeypatch):
    import yolo_slim.prune.task as task

    asked = []

    class Quantum:
        def quantum(self) -> int:
            return 16

    monkeypatch.setattr(task, "table_from_config", lambda node: asked.append(node.device) or Quantum())
    _, artifacts = prune(_cfg(tmp_path, "prune=channel", "prune.global_percent=0.5", "prune.channel_multiple=auto"))
    plan = load_plan(artifacts["plan"])
    assert plan.channel_multiple == 16 and asked == ["cpu"]
    full = {i: layer.filters for i, layer in enumerate(Darknet.from_cfg("yolov4-tiny", classes=2).cfg.layers) if hasattr(layer, "filters")}
    assert plan.kept and any(len(ids) < full[i] for i, ids in plan.kept.items())
    assert all(len(ids) % 16 == 0 or len(ids) == full[i] for i, ids in plan.kept.items())
    with pytest.raises(ConfigError, match=r"^prune.channel_multiple='eight': expected an integer >= 1 or auto"):
        prune(_cfg(tmp_path / "bad", "prune.channel_multiple=eight"))
    with pytest.raises(ConfigError, match=r"^prune.channel_multiple=0: expected an integer >= 1 or auto"):
        prune(_cfg(tmp_path / "zero", "prune.channel_multiple=0"))


def test_latency_mode_plans_to_the_budget(tmp_path, monkeypatch):
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "latency"))
    from latency_fixtures import FormulaTable

    import yolo_slim.prune.task as task

    table = FormulaTable()
    monkeypatch.setattr(task, "table_from_config", lambda node: table)
    table_only = "prune.latency_measured_rounds=0"
    metrics, artifacts = prune(_cfg(tmp_path, "prune=latency", "prune.latency_budget=0.6", table_only))
    plan = load_plan(artifacts["plan"])
    assert plan.latency_budget == 0.6 and plan.latency_ms <= plan.latency_budget_ms
    report = json.loads(artifacts["report_json"].read_text())
    assert report["mode"] == "latency" and report["setting"] == "latency latency_budget=0.6"
    assert 0 < metrics["prune/bflops_ratio"] < 1
    _, by_ms = prune(_cfg(tmp_path / "ms", "prune=latency", f"prune.latency_budget_ms={plan.latency_budget_ms}", table_only))
    assert load_plan(by_ms["plan"]).latency_budget is None

    # by default the plan is held to measured latency: a "device" 20 % slower than the table on any pruned network
    import yolo_slim.prune.latency_measured as measured
    from yolo_slim.latency.predict import predict_latency
    from yolo_slim.prune.surgery import compact_cfg

    def device(model, table, hw, graph=None, runs=30):
        base = predict_latency(model.cfg, table, hw).total_ms
        return lambda p: (min(1.2 * predict_latency(compact_cfg(graph, p), table, hw).total_ms, base), base)

    monkeypatch.setattr(measured, "openvino_measure", device)
    _, held = prune(_cfg(tmp_path / "held", "prune=latency", "prune.latency_budget=0.6", "prune.latency_measured_rounds=3"))
    held_plan = load_plan(held["plan"])
    assert held_plan.latency_budget == 0.6 and held_plan.latency_ms < plan.latency_ms  # planned below the table's 0.6
    with pytest.raises(PruneError, match="latency_budget=2.0 is outside"):
        prune(_cfg(tmp_path / "bad", "prune=latency", "prune.latency_budget=2.0"))
    with pytest.raises(ConfigError, match=r"^prune.search=true searches global_percent or shortcuts; prune=latency plans to prune.latency_budget"):
        prune(_cfg(tmp_path / "search", "prune=latency", "prune.search=true"))


@pytest.mark.openvino
@pytest.mark.slow
def test_report_holds_the_measured_and_predicted_openvino_latency(tmp_path):
    metrics, artifacts = prune(_cfg(tmp_path, "prune.global_percent=0.5", "prune.latency.report=true", "prune.latency.threads=1",
                                    f"prune.latency.cache_dir={tmp_path / 'table'}", "prune.latency.runs=3", "prune.latency.report_runs=5"))
    report = json.loads(artifacts["report_json"].read_text())
    for row in report["rows"].values():
        assert row["ov_latency_ms"] > 0 and row["ov_latency_pred_ms"] > 0
    assert report["openvino"]["threads"] == 1 and Path(report["openvino"]["table"]).is_file()
    assert metrics["prune/ov_latency_ms"] == report["rows"]["pruned"]["ov_latency_ms"]
    assert metrics["prune/ov_latency_ratio"] > 0
    assert "ms measured" in artifacts["report_md"].read_text()
