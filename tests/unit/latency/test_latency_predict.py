"""The whole-network prediction against the measured latency of the exported network.

The prediction (fixed cost + the sum of the table's layer costs) and the exported
network are timed in one interleaved session (`network_latency(refresh=True)`), so a
loaded machine slows both alike; medians of many runs; up to three attempts, as a
shared 2-core machine can be swamped for seconds at a time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from latency_fixtures import FormulaTable, sparse_model
from yolo_slim.graph import build_graph
from yolo_slim.latency.measure import DeviceSettings
from yolo_slim.latency.network import export_openvino, measure_networks
from yolo_slim.latency.predict import predict_latency
from yolo_slim.latency.specs import layer_specs
from yolo_slim.latency.table import LatencyTable
from yolo_slim.prune import apply_plan, plan_layer_channel_pruning

pytestmark = pytest.mark.openvino

DEMO = Path(__file__).parents[3] / "conf" / "model" / "cfg" / "yolov3-demo.cfg"
TOLERANCE = 0.20
ATTEMPTS = 3


def _pruned(model):
    graph = build_graph(model.cfg)
    plan = plan_layer_channel_pruning(model, 4, graph, global_percent=0.5)
    return apply_plan(model, plan, graph=graph)


def _check(models: dict, tmp: Path, runs: int = 20) -> dict:
    exported = {name: (m.cfg, export_openvino(m, tmp / name, m.cfg.input_hw), m.cfg.input_hw) for name, m in models.items()}
    errors: dict = {}
    for attempt in range(ATTEMPTS):
        table = LatencyTable(DeviceSettings(), tmp / f"table{attempt}", runs=runs)
        results = measure_networks(exported, table, runs=runs, refresh=True)
        errors = {name: r.error for name, r in results.items()}
        if all(abs(e) <= TOLERANCE for e in errors.values()):
            return results
    pytest.fail(f"prediction off by more than {TOLERANCE:.0%} in {ATTEMPTS} attempts; last errors: " + ", ".join(f"{k} {v:+.1%}" for k, v in errors.items()))


@pytest.mark.slow  # a timed check: on the AMX Xeon, about 2 processes in 5 measure the network 32-37 % above the prediction
def test_prediction_holds_for_a_pruned_demo_model(tmp_path):
    model = sparse_model(str(DEMO), img_size=96)
    pruned = _pruned(model)
    assert any(s.filters % 8 for s in pruned.cfg.layers if hasattr(s, "filters"))  # odd widths, off the SIMD blocks
    results = _check({"pruned": pruned}, tmp_path)
    by_kind = results["pruned"].prediction.by_kind()
    assert by_kind["conv"] > by_kind["shortcut"] > 0 and by_kind["fixed"] > 0


def test_prediction_is_the_fixed_cost_plus_the_layer_entries():
    table = FormulaTable()
    model = sparse_model(str(DEMO), img_size=64)
    prediction = predict_latency(model.cfg, table)
    assert prediction.total_us == pytest.approx(table.fixed().inference_us + sum(op.us for op in prediction.ops))
    assert [op.layer for op in prediction.ops] == [layer for layer, _ in layer_specs(model.cfg)]
    assert {op.kind for op in prediction.ops} >= {"conv", "shortcut", "decode", "upsample", "concat", "heads"}


@pytest.mark.slow
@pytest.mark.parametrize("name, size", [(str(DEMO), 160), ("yolov4-tiny", 256), ("yolov4", 320)])
def test_prediction_holds_for_zoo_models_and_pruned_ones(name, size, tmp_path):
    model = sparse_model(name, img_size=size)
    results = _check({"original": model, "pruned": _pruned(model)}, tmp_path, runs=10)
    assert results["pruned"].predicted_ms < results["original"].predicted_ms
