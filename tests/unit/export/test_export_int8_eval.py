"""INT8 export on the built-in dataset (`data=builtin`): calibration from its images, mAP@0.5 of INT8 next to FP32's."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

pytestmark = [pytest.mark.openvino, pytest.mark.slow]

ROOT = Path(__file__).parents[3]


def test_int8_reports_map_next_to_fp32_on_builtin(tmp_path):
    """An untrained yolov4-tiny gives mAP ~0; what matters is the plumbing: both numbers, same images."""
    from yolo_slim.export.task import export

    conf = OmegaConf.load(ROOT / "conf" / "export" / "default.yaml")
    conf.update({"out_dir": str(tmp_path / "out"), "img_size": 64, "exporter": "torchscript", "formats": ["openvino"],
                 "precision": "int8", "calibration_images": 6, "data_root": str(tmp_path / "builtin")})
    conf.builtin = {"n_train": 6, "n_val": 4, "img_size": 64, "seed": 0}
    cfg = OmegaConf.create({"model": {"cfg": "yolov4-tiny", "classes": 2}, "weights": None, "dataset": "builtin", "data": "builtin",
                            "names": None, "seed": 0, "export": conf})
    metrics, artifacts = export(cfg)
    assert metrics["export/calibration_images"] == 6
    for prec in ("int8", "fp32"):
        assert metrics[f"export/{prec}_images"] == 4
        assert 0.0 <= metrics[f"export/{prec}_mAP50"] <= 1.0
    assert metrics["export/int8_mAP50_drop"] == pytest.approx(metrics["export/fp32_mAP50"] - metrics["export/int8_mAP50"])
    assert (tmp_path / "builtin").is_dir() and artifacts["xml_fp32"].is_file()
