"""INT8 export on the built-in dataset (`data=builtin`): calibration from its images, mAP@0.5 of INT8 next to FP32's, one size."""

from __future__ import annotations

import json

import pytest

from app_configs import compose_config

pytestmark = [pytest.mark.openvino, pytest.mark.slow]


def test_int8_reports_map_next_to_fp32_on_builtin(tmp_path):
    """An untrained yolov4-tiny gives mAP ~0; what matters is the plumbing: both numbers, same images, the IR's size."""
    from yolo_slim.export.task import export

    cfg = compose_config("export", "model.cfg=yolov4-tiny", "model.classes=2", "data=builtin", "img_size=64", "export.exporter=torchscript",
                         "export.formats=[openvino]", "export.precision=int8", "export.calibration_images=6", "builtin.n_train=6",
                         "builtin.n_val=4", f"paths.data_dir={tmp_path / 'data'}", f"paths.output_dir={tmp_path / 'out'}")
    metrics, artifacts = export(cfg)
    assert metrics["export/calibration_images"] == 6
    for prec in ("int8", "fp32"):
        assert metrics[f"export/{prec}_images"] == 4
        assert 0.0 <= metrics[f"export/{prec}_mAP50"] <= 1.0
    assert metrics["export/int8_mAP50_drop"] == pytest.approx(metrics["export/fp32_mAP50"] - metrics["export/int8_mAP50"])
    assert (tmp_path / "data" / "builtin").is_dir() and artifacts["xml_fp32"].is_file()
    assert json.loads(artifacts["meta"].read_text())["input_size"] == [64, 64]
