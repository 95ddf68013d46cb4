"""In-graph image slots, letterbox and NMS against the host path (OpenCV letterbox, NumPy + OpenCV NMS)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import best_iou, square_frame

from yolo_slim.openvino_core import compile_model

pytestmark = pytest.mark.openvino

TILE = (64, 64)
SIZES = [(48, 64), (80, 40), (30, 30), (64, 64)]  # landscape, portrait, upscaled, exact


def _identity(shape):
    """A u8 model returning its input: what attach_slots puts in front of the network, made visible."""
    import openvino as ov
    import openvino.opset13 as ops

    p = ops.parameter(shape, ov.Type.u8)
    return ov.Model([ops.result(ops.convert(p, "u8"))], [p])


def _images():
    import cv2

    rng = np.random.default_rng(0)
    return [cv2.GaussianBlur(rng.integers(0, 255, (*hw, 3), dtype=np.uint8), (5, 5), 1.5) for hw in SIZES]


@pytest.mark.parametrize("layout", ["batch", "grid"])
def test_graph_letterbox_matches_opencv_to_one_grey_level(layout):
    import openvino as ov

    from yolo_slim.deploy.graph import attach_slots, letterbox_input
    from yolo_slim.ops.letterbox import letterbox

    n = 3 if layout == "grid" else 4
    shape = [n, *TILE, 3] if layout == "batch" else [1, 2 * TILE[0], 2 * TILE[1], 3]
    model = attach_slots(_identity(shape), n, TILE, (114, 114, 114), layout, (2, 2) if layout == "grid" else None, letterbox=True)
    compiled = compile_model(model, "CPU")
    images = _images()[:n]
    feed = {}
    for i, img in enumerate(images):
        feed[f"frame{i}"], (feed[f"letterbox{i}"], _) = img[None], letterbox_input(img.shape[:2], TILE)
    out = compiled(feed)[0]
    for i, img in enumerate(images):
        got = out[i] if layout == "batch" else out[0, (i // 2) * TILE[0] : (i // 2 + 1) * TILE[0], (i % 2) * TILE[1] : (i % 2 + 1) * TILE[1]]
        diff = np.abs(got.astype(int) - letterbox(img, TILE)[0].astype(int))
        assert diff.max() <= 1 and diff.mean() < 0.3, (i, img.shape, diff.max(), diff.mean())
    if layout == "grid":
        assert (out[0, TILE[0] :, TILE[1] :] == 114).all()  # the fourth cell is blank


def test_tile_slots_are_stacked_and_tiled_exactly():
    import openvino as ov

    from yolo_slim.deploy.graph import attach_slots

    tiles = [np.full((1, *TILE, 3), v, np.uint8) for v in (10, 20, 30)]
    batch = compile_model(attach_slots(_identity([3, *TILE, 3]), 3, TILE, (1, 2, 3)), "CPU")
    out = batch({f"tile{i}": t for i, t in enumerate(tiles)})[0]
    assert [int(out[i].mean()) for i in range(3)] == [10, 20, 30]
    grid = compile_model(attach_slots(_identity([1, 2 * TILE[0], 2 * TILE[1], 3]), 3, TILE, (1, 2, 3), "grid", (2, 2)), "CPU")
    out = grid({f"tile{i}": t for i, t in enumerate(tiles)})[0][0]
    th, tw = TILE
    assert (out[:th, :tw] == 10).all() and (out[:th, tw:] == 20).all() and (out[th:, :tw] == 30).all()
    assert (out[th:, tw:] == np.array([1, 2, 3], np.uint8)).all()  # blank cell: the colour, per channel


def test_attach_slots_rejects_what_does_not_fit():
    from yolo_slim.deploy.graph import attach_slots
    from yolo_slim.errors import DeployError

    with pytest.raises(DeployError, match=r"network input is .*expected u8 \[4, 64, 64, 3\]"):
        attach_slots(_identity([2, *TILE, 3]), 4, TILE, (114,) * 3)
    with pytest.raises(DeployError, match="a 1x2 grid cannot hold 3 images"):
        attach_slots(_identity([1, 64, 128, 3]), 3, TILE, (114,) * 3, "grid", (1, 2))
    with pytest.raises(DeployError, match="layout must be"):
        attach_slots(_identity([1, *TILE, 3]), 1, TILE, (114,) * 3, "rows")


def _matched(a: np.ndarray, b: np.ndarray, iou: float) -> bool:
    """Same number of detections and each of `a` has one of `b` of its class with IoU >= `iou`."""
    if len(a) != len(b):
        return False
    return all(best_iou(b[b[:, 5] == d[5]], d[:4]) >= iou for d in a)


@pytest.mark.parametrize("kw", [{}, {"batch": 3}, {"mosaic": 3}])
def test_graph_preprocessing_gives_the_host_detections(square_ir, kw):
    from yolo_slim.deploy.detector import OpenVINODetector

    cases = [((120, 160), (40, 30, 80, 70)), ((200, 100), (20, 120, 70, 170)), ((256, 256), (64, 64, 128, 128))]
    frames = [square_frame(hw, box) for hw, box in cases]
    host = OpenVINODetector(square_ir, **kw).detect_batch(frames)
    graph = OpenVINODetector(square_ir, preprocess="graph", **kw).detect_batch(frames)
    for (hw, box), h, g in zip(cases, host, graph):
        assert len(h) > 0 and best_iou(h, box) > 0.5
        assert _matched(g, h, 0.95), (kw, hw, g, h)


def test_graph_nms_matches_host_nms_on_random_rows():
    """OpenVINO's MulticlassNms with the host semantics vs `nms_numpy` (OpenCV NMS) on many overlapping candidates."""
    import openvino as ov
    import openvino.opset13 as ops

    from yolo_slim.export.openvino import add_nms
    from yolo_slim.ops.nms import nms_numpy

    rng = np.random.default_rng(0)
    b, n, c = 2, 400, 3
    rows = np.concatenate([rng.random((b, n, 2)) * 300, rng.random((b, n, 2)) * 60 + 5, rng.random((b, n, 1 + c))], 2).astype(np.float32)
    p = ops.parameter([b, n, 5 + c], ov.Type.f32)
    compiled = compile_model(add_nms(ov.Model([ops.result(ops.convert(p, "f32"))], [p]), 0.2, 0.45, 300), "CPU")
    out = compiled({0: rows})
    dets, counts = out[0], out[1]
    assert counts.tolist() == [int((dets[:, 0] == i).sum()) for i in range(b)]
    for i in range(b):
        got = dets[dets[:, 0] == i, 1:7]
        want = nms_numpy(rows[i], 0.2, 0.45, max_det=300)
        assert len(want) > 20 and len(got) == len(want)
        order = lambda d: d[np.lexsort((d[:, 0], d[:, 5], -np.round(d[:, 4], 5)))]
        np.testing.assert_allclose(order(got), order(want), atol=1e-3)


def test_graph_nms_in_the_detector_matches_host(square_ir):
    from yolo_slim.deploy.detector import OpenVINODetector

    frames = [square_frame((120, 160), b) for b in [(10, 10, 50, 50), (60, 40, 100, 80), (100, 70, 140, 110)]]
    for kw in ({"batch": 3}, {"mosaic": 3}):
        host = OpenVINODetector(square_ir, **kw).detect_batch(frames)
        graph = OpenVINODetector(square_ir, nms="graph", **kw).detect_batch(frames)
        for h, g in zip(host, graph):
            assert len(h) > 0 and _matched(g, h, 0.99)


def test_detector_option_errors(square_ir):
    from yolo_slim.deploy.detector import OpenVINODetector
    from yolo_slim.errors import DeployError

    with pytest.raises(DeployError, match="preprocess must be one of"):
        OpenVINODetector(square_ir, preprocess="gpu")
    with pytest.raises(DeployError, match="nms must be one of"):
        OpenVINODetector(square_ir, nms="none")
    with pytest.raises(DeployError, match="batch or mosaic, not both"):
        OpenVINODetector(square_ir, batch=2, mosaic=4)
    det = OpenVINODetector(square_ir)
    with pytest.raises(DeployError, match="expected a BGR uint8 image"):
        det.prepare(np.zeros((10, 10), np.uint8))
    with pytest.raises(DeployError, match="2 images for a request of 1"):
        det.inputs([det.prepare(np.zeros((10, 10, 3), np.uint8))] * 2)
