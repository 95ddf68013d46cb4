"""Which precision to deploy: the choice on fake timings, the explanations, the record, and a real export that writes it."""

from __future__ import annotations

import json

import pytest

from yolo_slim.errors import ExportError
from yolo_slim.export.precision import GraphFacts, PrecisionReport, PrecisionTiming, choose_fastest, explain_slower


def test_choose_fastest_latency_and_throughput():
    # the demo's figures from the issue: INT8 slower than FP32 at batch 1
    assert choose_fastest({"fp32": 1.21, "int8": 1.93}, "latency") == "fp32"
    assert choose_fastest({"fp32": 263.9, "fp16": 250.0, "int8": 80.5}, "latency") == "int8"
    assert choose_fastest({"fp32": 46.0, "fp16": 47.0, "int8": 90.0}, "throughput") == "int8"
    assert choose_fastest({"fp16": 10.0, "int8": 12.0}, "throughput") == "int8"


def test_choose_fastest_prefers_the_more_accurate_within_the_tolerance():
    # 3 % faster is timing noise, not worth INT8's accuracy
    assert choose_fastest({"fp32": 1.00, "int8": 0.97}, "latency") == "fp32"
    assert choose_fastest({"fp32": 1.00, "fp16": 0.96, "int8": 0.90}, "latency") == "int8"
    assert choose_fastest({"fp32": 1.00, "fp16": 0.96, "int8": 0.99}, "latency", tolerance=0.05) == "fp32"
    assert choose_fastest({"fp32": 100.0, "fp16": 104.0}, "throughput") == "fp32"
    assert choose_fastest({"fp32": 100.0, "fp16": 104.0}, "throughput", tolerance=0.01) == "fp16"


def test_choose_fastest_bad_input():
    with pytest.raises(ExportError, match="no timings"):
        choose_fastest({}, "latency")
    with pytest.raises(ExportError, match=r"unknown precisions \['int4'\]"):
        choose_fastest({"int4": 1.0}, "latency")
    with pytest.raises(ExportError, match="must be positive"):
        choose_fastest({"fp32": 0.0}, "latency")
    with pytest.raises(ExportError, match="metric must be"):
        choose_fastest({"fp32": 1.0}, "speed")


def test_explain_slower_int8_names_the_measured_reasons():
    fp32 = PrecisionTiming("fp32", "fp32/model.xml", 1.21, 820.0, "f32")
    int8 = PrecisionTiming("int8", "model.xml", 1.93, 510.0, "f32")
    note = explain_slower("int8", int8, fp32, GraphFacts(convolutions=20, narrow=14, median_channels=16, quantized=17, fake_quantize=19), 0.45)
    assert "INT8 is slower than FP32" in note and "1.93 vs 1.21 ms" in note and "1.60x" in note
    assert "0.45 ms per inference" in note and "37% of FP32's latency" in note
    assert "19 quantize/dequantize (FakeQuantize) layers for 17 INT8 convolutions, 3 left in float" in note
    assert "14 of 20 convolutions have fewer than 32 output channels (median 16)" in note


def test_explain_slower_says_which_measure_is_slower():
    # measured on an AMD Zen 4 (the demo's slim model): INT8 a hair faster at batch 1, 10% slower in throughput
    fp32 = PrecisionTiming("fp32", "a", 0.39, 3207.9, "bf16")
    int8 = PrecisionTiming("int8", "b", 0.38, 2928.8, "bf16")
    note = explain_slower("int8", int8, fp32, GraphFacts(43, 33, 20, 41, 50), 0.02)
    assert note.startswith("INT8 is slower than FP32 on this device in throughput, not in batch-1 latency (0.38 vs 0.39 ms")
    slow = PrecisionTiming("int8", "b", 0.60, 3200.0, "bf16")
    assert "in batch-1 latency, not in throughput" in explain_slower("int8", slow, fp32, GraphFacts(43, 33, 20, 41, 50), 0.02)


def test_explain_slower_fp16_that_computes_like_fp32():
    fp32 = PrecisionTiming("fp32", "a", 2.0, 500.0, "f32")
    fp16 = PrecisionTiming("fp16", "b", 2.3, 430.0, "f32")
    note = explain_slower("fp16", fp16, fp32, GraphFacts(10, 0, 64, 0, 0), 0.1)
    assert "computes in f32 like FP32, so it only saves disk space" in note
    assert "per inference" not in note  # 0.1 ms of 2 ms is no reason


def test_report_round_trip_and_bad_record():
    report = PrecisionReport("CPU", "Some CPU", "2026.4", (PrecisionTiming("fp32", "/x/fp32/model.xml", 1.2, 800.0, "f32"),
                                                           PrecisionTiming("int8", "/x/model.xml", 1.9, 500.0, "f32")),
                             "fp32", "fp32", 0.4, ("INT8 is slower ...",))
    data = json.loads(json.dumps(report.as_dict(relative_to="/x")))
    assert [t["xml"] for t in data["timings"]] == ["fp32/model.xml", "model.xml"]
    back = PrecisionReport.from_dict(data)
    assert back.timing("int8").latency_ms == 1.9 and back.fastest("latency") == "fp32" and back.notes == report.notes
    del data["fastest_latency"]
    with pytest.raises(ExportError, match="speed record: missing or invalid"):
        PrecisionReport.from_dict(data)


@pytest.mark.openvino
def test_measure_precisions_errors(tmp_path):
    from yolo_slim.export.precision import measure_precisions

    with pytest.raises(ExportError, match="precisions must be some of"):
        measure_precisions({"int4": tmp_path / "model.xml"})
    with pytest.raises(ExportError, match="cannot time it on CPU"):
        measure_precisions({"fp32": tmp_path / "missing.xml"})
