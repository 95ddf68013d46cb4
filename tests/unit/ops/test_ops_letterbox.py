"""Letterbox geometry and the back-projection of boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from yolo_slim.errors import DataError, YoloSlimError
from yolo_slim.ops.letterbox import LetterboxInfo, boxes_to_original, letterbox


def _image(h: int, w: int) -> np.ndarray:
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[100:200, 300:500] = 255  # a white block at x 300..500, y 100..200
    return img


def test_letterbox_geometry_and_padding() -> None:
    out, info = letterbox(_image(480, 640), 416)
    assert out.shape == (416, 416, 3) and out.dtype == np.uint8
    assert info == LetterboxInfo(scale=0.65, pad_x=0.0, pad_y=52.0, new_shape=(416, 416))
    assert (out[:52] == 114).all() and (out[-52:] == 114).all()
    # The white block lands at scale * x + pad.
    block = out[:, :, 0] > 200
    ys, xs = np.nonzero(block)
    assert abs(xs.min() - 300 * 0.65) <= 1 and abs(xs.max() + 1 - 500 * 0.65) <= 1
    assert abs(ys.min() - (100 * 0.65 + 52)) <= 1 and abs(ys.max() + 1 - (200 * 0.65 + 52)) <= 1


def test_letterbox_rectangular_target_and_no_scaleup() -> None:
    out, info = letterbox(_image(480, 640), (320, 640))
    assert out.shape == (320, 640, 3)
    assert info.scale == pytest.approx(2 / 3) and info.pad_y == 0.0
    assert info.pad_x == float((640 - round(640 * 2 / 3)) // 2)

    small = np.full((100, 200, 3), 7, dtype=np.uint8)
    out, info = letterbox(small, 416, scaleup=False)
    assert info.scale == 1.0 and (info.pad_x, info.pad_y) == (108.0, 158.0)
    assert (out[158:258, 108:308] == 7).all()
    _, info = letterbox(small, 416)
    assert info.scale == pytest.approx(2.08)


def test_round_trip_tensor_and_numpy() -> None:
    orig_hw = (480, 640)
    _, info = letterbox(np.zeros((*orig_hw, 3), dtype=np.uint8), 416)
    boxes = np.array([[10.0, 20.0, 300.0, 400.0], [0.0, 0.0, 640.0, 480.0]])
    forward = boxes * info.scale + np.array([info.pad_x, info.pad_y] * 2)
    back = boxes_to_original(forward, info, orig_hw)
    assert isinstance(back, np.ndarray) and np.allclose(back, boxes, atol=1e-6)

    tensor = torch.tensor(forward, dtype=torch.float32)
    back_t = boxes_to_original(tensor, info, orig_hw)
    assert isinstance(back_t, torch.Tensor) and back_t.dtype == torch.float32
    assert torch.allclose(back_t, torch.tensor(boxes, dtype=torch.float32), atol=1e-3)
    assert torch.equal(tensor, torch.tensor(forward, dtype=torch.float32))  # input untouched


def test_back_projection_clips() -> None:
    _, info = letterbox(np.zeros((480, 640, 3), dtype=np.uint8), 416)
    out = boxes_to_original(torch.tensor([[-10.0, 0.0, 500.0, 416.0]]), info, (480, 640))
    assert out.tolist() == [[0.0, 0.0, 640.0, 480.0]]


def test_bad_inputs() -> None:
    with pytest.raises(DataError, match="HxWx3 uint8"):
        letterbox(np.zeros((10, 10), dtype=np.uint8), 32)
    with pytest.raises(DataError, match="HxWx3 uint8"):
        letterbox(np.zeros((10, 10, 3), dtype=np.float32), 32)
    with pytest.raises(YoloSlimError, match="new_shape"):
        letterbox(np.zeros((10, 10, 3), dtype=np.uint8), 0)
    with pytest.raises(YoloSlimError, match=r"\[N, 4\]"):
        boxes_to_original(np.zeros((2, 6)), LetterboxInfo(1.0, 0.0, 0.0, (32, 32)), (32, 32))


def test_letterbox_into_a_given_buffer_matches_and_reuses_it() -> None:
    from yolo_slim.ops.letterbox import letterbox_geometry

    rng = np.random.default_rng(0)
    buf = np.zeros((64, 64, 3), np.uint8)
    for hw in [(48, 64), (80, 40), (30, 30), (64, 64), (64, 20)]:  # geometry changes between calls: old pixels must not survive
        image = rng.integers(0, 255, (*hw, 3), dtype=np.uint8)
        expected, info = letterbox(image, 64, color=(1, 2, 3))
        out, info_out = letterbox(image, 64, color=(1, 2, 3), out=buf)
        assert out is buf and info_out == info
        np.testing.assert_array_equal(buf, expected)
        assert letterbox_geometry(hw, 64)[0] == info
    with pytest.raises(YoloSlimError, match=r"out must be a uint8 array of shape \(64, 64, 3\)"):
        letterbox(image, 64, out=np.zeros((64, 64, 3), np.float32))
