"""REPORT.md's speed-up tables: the FP32 IR in f32, and in the device's lower default where it has one."""

from __future__ import annotations

from types import SimpleNamespace

from yolo_slim.pipeline.report import _deploy_section, _final_section

ROW = {"precision": 0.3, "recall": 0.6, "mAP50": 0.5, "params": 7e5, "weights_mib": 2.7, "latency_ms": 5.0, "bflops": 0.116}


def _ctx(deployed: dict, default_compute: str = "f32") -> SimpleNamespace:
    slim = {**ROW, "mAP50": 0.45, "params": 1.5e5, "latency_ms": 4.0, "bflops": 0.058}
    bench = {"rows": {"baseline": ROW, "slim": slim}, "deployed": deployed, "default_compute": default_compute}
    return SimpleNamespace(results={"benchmark": bench}, run_dir=".")


def _entry(ms: float, compute: str) -> dict:
    return {"precision": 0.3, "recall": 0.6, "mAP50": 0.5, "latency_ms": ms, "compute": compute}


def test_a_device_computing_fp32_irs_in_f32_gets_one_openvino_speed_up():
    deployed = {"baseline/openvino_fp32": _entry(1.2, "f32"), "slim/openvino_fp32": _entry(0.6, "f32")}
    final = "\n".join(_final_section(_ctx(deployed)))
    assert "| OpenVINO FP32 speed-up (f32 compute) | mAP@0.5 kept |" in final
    assert "| 1.25x | 2.00x | 90.0% |" in final  # PyTorch 5.0 / 4.0, OpenVINO 1.2 / 0.6
    deploy = "\n".join(_deploy_section(_ctx(deployed)))
    assert "| slim | openvino_fp32 | f32 | 0.300 | 0.600 | 0.500 | 0.60 | 1666.7 | 2.00x |" in deploy
    assert "unless asked" not in deploy


def test_a_lower_default_precision_gets_its_own_rows_and_speed_up():
    deployed = {
        "baseline/openvino_fp32": _entry(1.2, "f32"), "slim/openvino_fp32": _entry(0.8, "f32"),
        "baseline/openvino_fp32_bf16": _entry(0.9, "bf16"), "slim/openvino_fp32_bf16": _entry(0.75, "bf16"),
        "slim/openvino_int8": _entry(1.5, "int8, else bf16"),
    }
    final = "\n".join(_final_section(_ctx(deployed, "bf16")))
    assert "| OpenVINO FP32 speed-up (f32 compute) | OpenVINO FP32 IR speed-up (bf16, this device's default) | mAP@0.5 kept |" in final
    assert "| 1.50x | 1.20x | 90.0% |" in final
    deploy = _deploy_section(_ctx(deployed, "bf16"))
    engines = [line.split(" | ")[1] for line in deploy if line.startswith("| slim |")]
    assert engines == ["openvino_fp32", "openvino_fp32_bf16", "openvino_int8"]  # f32, the default, then the other IRs
    text = "\n".join(deploy)
    assert "| slim | openvino_fp32_bf16 | bf16 |" in text and "| slim | openvino_int8 | int8, else bf16 |" in text
    assert "computes an FP32 IR in bf16 unless asked" in text


def test_the_report_says_which_precision_is_fastest_and_why_a_slower_one_is(tmp_path):
    import json

    from yolo_slim.pipeline.report import _precision_lines

    note = "INT8 is slower than FP32 on this device (1.53 vs 0.96 ms batch-1, 1.59x): 33 of 43 convolutions have fewer than 32 output channels."
    artifacts = {}
    for precision, record in (("int8", {"fastest_latency": "fp32", "notes": [note]}), ("fp16", {"fastest_latency": "fp32", "notes": []})):
        folder = tmp_path / "slim" / precision
        folder.mkdir(parents=True)
        (folder / "meta.json").write_text(json.dumps({"speed": record}))
        artifacts[f"slim_{precision}_xml"] = str(folder / "model.xml")
    lines = _precision_lines(SimpleNamespace(results={"export": {"artifacts": artifacts}}))
    assert "- slim: fastest IR for batch-1 latency as export timed it: FP32" in lines
    assert f"  - {note}" in lines
    assert not any(line.startswith("- baseline") for line in lines)  # no record, no line
    assert _precision_lines(SimpleNamespace(results={})) == []
