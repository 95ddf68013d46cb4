"""Fixtures for deploy tests: a hand-set detector that fires on bright squares, exported once.

The network (128 px input) has no training: layer 0 averages 8x8 patches (stride 8),
layer 1 averages 3x3 cells (a 24 px window), and the 1x1 head turns a window mean
above ~0.75 into objectness, with box offsets 0 and the 32 px anchor as the size. A
white square of ~32 px on a black frame is therefore found at its own place, and
nothing else is.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

SQUARE_CFG = """
[net]
width=128
height=128
channels=3

[convolutional]
filters=1
size=8
stride=8
pad=0
activation=linear

[convolutional]
filters=1
size=3
stride=1
pad=1
activation=linear

[convolutional]
filters=6
size=1
stride=1
pad=1
activation=linear

[yolo]
mask=0
anchors=32,32
classes=1
num=1
"""


def build_square_model(tmp: Path):
    """The hand-set Darknet model and its cfg/weights files in `tmp`."""
    from yolo_slim.model import Darknet

    cfg_path = tmp / "square.cfg"
    cfg_path.write_text(SQUARE_CFG)
    model = Darknet.from_cfg(cfg_path).eval()
    with torch.no_grad():
        c0, c1, c2 = (model.layers[i].conv for i in range(3))
        c0.weight.fill_(1.0 / (8 * 8 * 3))
        c0.bias.zero_()
        c1.weight.fill_(1.0 / 9)
        c1.bias.zero_()
        c2.weight.zero_()
        c2.bias.zero_()
        c2.weight[4, 0] = 40.0  # objectness logit = 40 * mean - 30
        c2.bias[4] = -30.0
        c2.bias[5] = 10.0  # class probability ~1
    weights = tmp / "square.weights"
    model.save_darknet_weights(weights)
    return model, cfg_path, weights


def export_square(tmp: Path, **export_overrides) -> Path:
    """Export the square detector (torchscript exporter, dynamic batch and spatial) into `tmp/ir`."""
    from yolo_slim.export.task import export

    from app_configs import compose_config

    _, cfg_path, weights = build_square_model(tmp)
    export_keys = {"exporter": "torchscript", "dynamic": ["batch", "spatial"], **export_overrides}
    cfg = compose_config("export", values={"model": {"cfg": str(cfg_path)}, "weights": str(weights), "names": ["square"], "img_size": 128,
                                           "paths": {"output_dir": str(tmp / "ir")}, "export": export_keys})
    _, artifacts = export(cfg)
    return artifacts["xml"]


@pytest.fixture(scope="session")
def square_ir(tmp_path_factory) -> Path:
    pytest.importorskip("openvino")
    return export_square(tmp_path_factory.mktemp("square"))


def square_frame(hw: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    """A black BGR frame with a white filled square `box` (x1, y1, x2, y2)."""
    frame = np.zeros((*hw, 3), np.uint8)
    cv2.rectangle(frame, box[:2], (box[2] - 1, box[3] - 1), (255, 255, 255), -1)
    return frame


def centre_inside(dets: np.ndarray, box: tuple[int, int, int, int], margin: float = 0.0) -> bool:
    """True if every detection's centre lies inside `box` (grown by `margin` px) and there is one."""
    if len(dets) == 0:
        return False
    cx, cy = (dets[:, 0] + dets[:, 2]) / 2, (dets[:, 1] + dets[:, 3]) / 2
    return bool(np.all((cx >= box[0] - margin) & (cx <= box[2] + margin) & (cy >= box[1] - margin) & (cy <= box[3] + margin)))


def best_iou(dets: np.ndarray, box) -> float:
    if len(dets) == 0:
        return 0.0
    x1 = np.maximum(dets[:, 0], box[0]); y1 = np.maximum(dets[:, 1], box[1])
    x2 = np.minimum(dets[:, 2], box[2]); y2 = np.minimum(dets[:, 3], box[3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    a = (dets[:, 2] - dets[:, 0]) * (dets[:, 3] - dets[:, 1])
    b = (box[2] - box[0]) * (box[3] - box[1])
    return float(np.max(inter / (a + b - inter)))
