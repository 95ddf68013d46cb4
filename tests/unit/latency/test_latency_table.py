"""The latency table: what it measures, caches, refuses and bounds (real OpenVINO, tiny shapes)."""

from __future__ import annotations

import json

import pytest

from yolo_slim.errors import LatencyError
from yolo_slim.latency.measure import DeviceSettings, describe
from yolo_slim.latency.specs import AddSpec, ConvSpec, PoolSpec, UpsampleSpec, spec_key
from yolo_slim.latency.table import LatencyTable, detect_quantum

pytestmark = pytest.mark.openvino

SETTINGS = DeviceSettings(threads=1)
SMALL = [
    ConvSpec(8, 16, 3, 1, 1, 1, 8, 8, "leaky"),
    ConvSpec(3, 8, 3, 2, 1, 1, 16, 16, "mish", image_input=True),
    PoolSpec(16, 8, 8, 2, 2, 1),
    UpsampleSpec(16, 4, 4, 2),
    AddSpec(16, 8, 8, 2, "linear"),
]


def test_detect_quantum():
    blocks = {c: 10.0 * -(-c // 16) for c in range(2, 66)}  # a step after every 16
    assert detect_quantum(blocks) == 16
    assert detect_quantum({c: 10.0 * -(-c // 8) for c in range(2, 66)}) == 8
    assert detect_quantum({c: 100.0 + c for c in range(2, 66)}) == 1  # no staircase


def test_measures_only_what_it_lacks_and_caches_across_instances(tmp_path):
    table = LatencyTable(SETTINGS, tmp_path, runs=3)
    assert table.path.parent == tmp_path and table.path.name.startswith("cpu-")
    entries = table.entries(SMALL[:3])
    first = table.measured  # 3, plus any measured again because their samples disagreed
    assert 3 <= first <= 6 and all(e.us >= 0 and e.runs >= 3 for e in entries.values())
    assert table.entries(SMALL[:3]) == entries and table.measured == first  # nothing new
    table.entries(SMALL)
    assert first + 2 <= table.measured <= first + 4
    again = LatencyTable(SETTINGS, tmp_path, runs=3)
    assert again.entries(SMALL) == table.entries(SMALL) and again.measured == 0
    data = json.loads(table.path.read_text())
    assert data["identity"] == describe(SETTINGS) and data["identity"]["threads"] == 1
    assert set(data["entries"]) == {spec_key(s) for s in SMALL}
    fixed = again.fixed()
    assert fixed.inference_us > 0 and again.measured == 0


def test_concurrent_tables_merge_their_entries(tmp_path):
    a = LatencyTable(SETTINGS, tmp_path, runs=2)
    b = LatencyTable(SETTINGS, tmp_path, runs=2)
    a.entries(SMALL[:1])
    b.entries(SMALL[1:2])
    merged = json.loads(a.path.read_text())["entries"]
    assert {spec_key(SMALL[0]), spec_key(SMALL[1])} <= set(merged)


def test_a_table_of_another_device_or_a_damaged_file_is_refused(tmp_path):
    table = LatencyTable(SETTINGS, tmp_path, runs=2)
    table.entries(SMALL[:1])
    data = json.loads(table.path.read_text())
    data["identity"]["openvino"] = "1999.0"
    table.path.write_text(json.dumps(data))
    with pytest.raises(LatencyError, match="not a version-1 latency table of this device; delete it"):
        LatencyTable(SETTINGS, tmp_path)
    table.path.write_text("{not json")
    with pytest.raises(LatencyError, match="unreadable latency table"):
        LatencyTable(SETTINGS, tmp_path)


def test_measuring_is_bounded_in_time(tmp_path):
    table = LatencyTable(SETTINGS, tmp_path, runs=2, chunk=1, max_seconds=1e-6)
    with pytest.raises(LatencyError, match=r"passed its bound of 1e-06 s after [12] layer shapes \(4 still to measure\); they are kept in"):
        table.entries(SMALL)
    kept = json.loads(table.path.read_text())["entries"]
    assert set(kept) == {spec_key(SMALL[0])}
    assert LatencyTable(SETTINGS, tmp_path, runs=2).entries(SMALL[:1])


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(LatencyError, match="threads=0 must be an integer >= 1 or null"):
        DeviceSettings(threads=0)
    with pytest.raises(LatencyError, match="precision='f64'; expected f32, bf16 or f16"):
        DeviceSettings(precision="f64")
    with pytest.raises(LatencyError, match="latency device 'NPU7' is not available here; OpenVINO sees CPU"):
        LatencyTable(DeviceSettings(device="NPU7"), tmp_path)


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    from yolo_slim.latency.table import CACHE_ENV, default_cache_dir

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "tables"))
    assert default_cache_dir() == tmp_path / "tables"
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "yolo_slim" / "latency"


def test_auto_precision_is_what_a_compiled_fp32_model_computes_in(tmp_path):
    """`prune.latency.precision: auto` times layers in the element type the deployment gets:
    OpenVINO's own choice for an FP32 model compiled without a precision hint."""
    import numpy as np
    import openvino as ov
    import openvino.opset13 as ops

    from yolo_slim.latency import deployed_precision, table_from_config

    x = ops.parameter([1, 8, 8, 8], np.float32)
    conv = ops.convolution(x, ops.constant(np.ones((8, 8, 1, 1), np.float32)), [1, 1], [0, 0], [0, 0], [1, 1])
    compiled = ov.Core().compile_model(ov.Model([conv], [x]), "CPU", {"PERFORMANCE_HINT": "LATENCY"})
    assert deployed_precision("CPU") == compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    node = {"device": "cpu", "threads": None, "cache_dir": str(tmp_path), "runs": 3, "max_measure_s": 10}
    assert table_from_config({**node, "precision": "auto"}).settings.precision == deployed_precision("CPU")
    assert table_from_config({**node, "precision": "f32"}).settings.precision == "f32"
    assert deployed_precision("AUTO") == "f32"  # AUTO does not say: the float32 the IR holds
