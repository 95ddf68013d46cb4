"""Which IR detect.py runs: a real export's speed record, the fastest from a folder, a warning for a slower one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import export_square

pytestmark = pytest.mark.openvino


@pytest.fixture(scope="module")
def fp16_export(tmp_path_factory) -> Path:
    """A real FP16 export of the square model: model.xml (FP16) and fp32/model.xml, both timed at export."""
    return export_square(tmp_path_factory.mktemp("fp16"), precision="fp16").parent


def test_export_records_both_precisions(fp16_export):
    from yolo_slim.export.precision import PrecisionReport

    report = PrecisionReport.from_dict(json.loads((fp16_export / "meta.json").read_text())["speed"])
    assert [t.precision for t in report.timings] == ["fp32", "fp16"]
    assert [t.xml for t in report.timings] == ["fp32/model.xml", "model.xml"]  # relative to this meta.json
    assert all(t.latency_ms > 0 and t.throughput_fps > 0 for t in report.timings) and report.overhead_ms > 0
    assert report.device == "CPU" and report.fastest_latency in ("fp32", "fp16")
    ref = json.loads((fp16_export / "fp32" / "meta.json").read_text())
    assert ref["precision"] == "fp32" and [t["xml"] for t in ref["speed"]["timings"]] == ["model.xml", "../model.xml"]


def _with_record(src: Path, dst: Path, fp32_ms: float, fp16_ms: float, device_name: str = "This CPU") -> Path:
    """A copy of the export whose speed record says FP32 took `fp32_ms` and FP16 `fp16_ms` on `device_name`."""
    shutil.copytree(src, dst)
    for meta_path in (dst / "meta.json", dst / "fp32" / "meta.json"):
        meta = json.loads(meta_path.read_text())
        speed = meta["speed"]
        speed["device_name"] = device_name
        for t in speed["timings"]:
            t["latency_ms"] = fp32_ms if t["precision"] == "fp32" else fp16_ms
            t["throughput_fps"] = 1000 / t["latency_ms"]
        fastest = "fp32" if fp32_ms <= fp16_ms * 1.05 else "fp16"
        speed["fastest_latency"] = speed["fastest_throughput"] = fastest
        speed["notes"] = ["FP16 is slower than FP32 on this device (...)"] if fastest == "fp32" else []
        meta_path.write_text(json.dumps(meta))
    return dst


def test_folder_runs_the_fastest_recorded(fp16_export, tmp_path):
    from yolo_slim.deploy.select import select_ir

    slow16 = _with_record(fp16_export, tmp_path / "a", fp32_ms=1.2, fp16_ms=1.9)
    chosen = select_ir(slow16, "CPU", "throughput", current_device_name="This CPU")
    assert chosen.xml == (slow16 / "fp32" / "model.xml").resolve() and chosen.precision == "fp32" and not chosen.warnings
    assert "running the FP32 IR" in chosen.info[0]
    fast16 = _with_record(fp16_export, tmp_path / "b", fp32_ms=2.0, fp16_ms=1.0)
    assert select_ir(fast16, "CPU", "latency", current_device_name="This CPU").precision == "fp16"


def test_a_slower_precision_asked_for_is_run_with_a_warning(fp16_export, tmp_path):
    from yolo_slim.deploy.select import select_ir

    slow16 = _with_record(fp16_export, tmp_path / "a", fp32_ms=1.2, fp16_ms=1.9)
    chosen = select_ir(slow16 / "model.xml", "CPU", "latency", current_device_name="This CPU")
    assert chosen.xml == slow16 / "model.xml" and chosen.precision == "fp16"
    assert "is the FP16 IR, but on this device the FP32 IR" in chosen.warnings[0] and "1.90 ms batch-1" in chosen.warnings[0]
    assert chosen.warnings[1].startswith("FP16 is slower than FP32")
    assert not select_ir(slow16 / "fp32" / "model.xml", "CPU", "latency", current_device_name="This CPU").warnings


def test_a_record_from_another_device_is_not_trusted(fp16_export, tmp_path):
    from yolo_slim.deploy.select import select_ir

    other = _with_record(fp16_export, tmp_path / "a", fp32_ms=1.2, fp16_ms=1.9, device_name="Other CPU")
    chosen = select_ir(other, "CPU", "latency", current_device_name="This CPU")
    assert chosen.xml == other / "model.xml" and "the speed record is from Other CPU" in chosen.warnings[0]
    assert not select_ir(other / "model.xml", "CPU", "latency", current_device_name="This CPU").warnings


def test_select_errors(fp16_export, tmp_path):
    from yolo_slim.deploy.select import select_ir
    from yolo_slim.errors import DeployError

    (tmp_path / "empty").mkdir()
    with pytest.raises(DeployError, match="export folder without model.xml"):
        select_ir(tmp_path / "empty", "CPU", "latency")
    broken = _with_record(fp16_export, tmp_path / "b", fp32_ms=1.2, fp16_ms=1.9)
    shutil.rmtree(broken / "fp32")
    with pytest.raises(DeployError, match="the speed record names .*fp32/model.xml, which is missing"):
        select_ir(broken, "CPU", "latency", current_device_name="This CPU")
    meta = json.loads((broken / "meta.json").read_text())
    del meta["speed"]["timings"]
    (broken / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DeployError, match="meta.json: speed record: missing or invalid"):
        select_ir(broken, "CPU", "latency")


def test_detect_runs_the_fastest_ir_of_a_folder(fp16_export, tmp_path, caplog):
    import cv2
    from app_configs import compose_config

    from conftest import square_frame
    from yolo_slim.deploy.select import device_name
    from yolo_slim.deploy.task import detect

    slow16 = _with_record(fp16_export, tmp_path / "a", fp32_ms=1.2, fp16_ms=1.9, device_name=device_name("CPU"))
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "0.png"), square_frame((120, 160), (40, 30, 80, 70)))
    cfg = compose_config("detect", values={"weights": str(slow16 / "model.xml"), "source": [str(frames)], "progress": False,
                                           "paths": {"output_dir": str(tmp_path / "o")}})
    with caplog.at_level("WARNING"):
        detect(cfg)
    assert "is the FP16 IR, but on this device the FP32 IR" in caplog.text
    cfg.weights = str(slow16)
    caplog.clear()
    with caplog.at_level("INFO"):
        metrics, _ = detect(cfg)
    assert "running the FP32 IR" in caplog.text and metrics["detect/frames"] == 1
