"""OpenVINODetector: detection on a hand-set model, batches, and clear errors for bad IRs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import best_iou, centre_inside, square_frame

pytestmark = pytest.mark.openvino


def test_detects_square_in_original_pixels(square_ir):
    from yolo_slim.deploy.detector import OpenVINODetector

    det = OpenVINODetector(square_ir)
    for hw, box in [((120, 160), (40, 30, 80, 70)), ((200, 100), (20, 120, 70, 170))]:
        dets = det.detect(square_frame(hw, box))
        assert dets.shape[1] == 6 and dets.dtype == np.float32
        assert centre_inside(dets, box)
        assert best_iou(dets, box) > 0.5
        assert (dets[:, 5] == 0).all() and (dets[:, 4] > 0.25).all()
    assert len(det.detect(np.zeros((90, 90, 3), np.uint8))) == 0


def test_detect_batch_matches_single(square_ir):
    from yolo_slim.deploy.detector import OpenVINODetector

    boxes = [(10, 10, 50, 50), (60, 40, 100, 80), (100, 70, 140, 110)]
    frames = [square_frame((120, 160), b) for b in boxes]
    single = OpenVINODetector(square_ir)
    batched = OpenVINODetector(square_ir, batch=2, hint="throughput")
    out = batched.detect_batch(frames)
    assert len(out) == 3
    for frame, got, box in zip(frames, out, boxes):
        np.testing.assert_allclose(got, single.detect(frame), atol=1e-3)
        assert centre_inside(got, box)


def _copy_ir(src_xml, dst):
    dst.mkdir()
    for name in ("model.xml", "model.bin", "meta.json"):
        shutil.copy(src_xml.parent / name, dst / name)
    return dst / "model.xml"


def test_missing_meta(square_ir, tmp_path):
    from yolo_slim.deploy.detector import OpenVINODetector
    from yolo_slim.errors import DeployError

    xml = _copy_ir(square_ir, tmp_path / "m")
    (xml.parent / "meta.json").unlink()
    with pytest.raises(DeployError, match="meta.json not found"):
        OpenVINODetector(xml)


def test_mismatched_meta(square_ir, tmp_path):
    from yolo_slim.deploy.detector import OpenVINODetector
    from yolo_slim.errors import DeployError

    xml = _copy_ir(square_ir, tmp_path / "m")
    meta = json.loads((xml.parent / "meta.json").read_text())
    meta["num_classes"], meta["names"] = 3, ["a", "b", "c"]
    (xml.parent / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DeployError, match="does not match its meta.json.*3 classes"):
        OpenVINODetector(xml)
    del meta["strides"]
    (xml.parent / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DeployError, match="key 'strides' missing"):
        OpenVINODetector(xml)
    (xml.parent / "meta.json").write_text("{not json")
    with pytest.raises(DeployError, match="not a readable JSON"):
        OpenVINODetector(xml)


def test_corrupt_ir(square_ir, tmp_path):
    from yolo_slim.deploy.detector import OpenVINODetector
    from yolo_slim.errors import DeployError

    xml = _copy_ir(square_ir, tmp_path / "m")
    xml.write_text("<net><layers><layer id='0'")
    with pytest.raises(DeployError, match="cannot read the OpenVINO IR"):
        OpenVINODetector(xml)
    with pytest.raises(DeployError, match="IR not found"):
        OpenVINODetector(tmp_path / "nowhere" / "model.xml")
    with pytest.raises(DeployError, match="hint must be"):
        OpenVINODetector(square_ir, hint="fast")
