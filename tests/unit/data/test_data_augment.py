"""Tests of yolo_slim.data.augment: boxes follow the pixels and stay inside the image."""

from __future__ import annotations

import numpy as np
import pytest

from yolo_slim.data.augment import AugmentConfig, clip_boxes, flip_lr, hsv_jitter, mosaic4, random_affine
from yolo_slim.errors import ConfigError


def _scene(h: int, w: int, rects: list[tuple[int, int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Black image with white rectangles; boxes ``cls, x1, y1, x2, y2`` (pixel edges)."""
    image = np.zeros((h, w, 3), np.uint8)
    boxes = []
    for i, (x1, y1, x2, y2) in enumerate(rects):
        image[y1:y2, x1:x2] = 255
        boxes.append((i, x1, y1, x2, y2))
    return image, np.asarray(boxes, np.float32).reshape(-1, 5)


def _white_bbox(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Bounding box (pixel edges) of bright pixels inside ``box`` grown by 3 px."""
    h, w = image.shape[:2]
    x1, y1 = max(int(box[1]) - 3, 0), max(int(box[2]) - 3, 0)
    x2, y2 = min(int(np.ceil(box[3])) + 3, w), min(int(np.ceil(box[4])) + 3, h)
    ys, xs = np.nonzero(image[y1:y2, x1:x2, 0] > 127)
    return np.array([xs.min() + x1, ys.min() + y1, xs.max() + x1 + 1, ys.max() + y1 + 1], np.float32)


def test_flip_twice_is_identity() -> None:
    image, boxes = _scene(40, 60, [(5, 5, 20, 30), (30, 10, 59, 12)])
    once_img, once_boxes = flip_lr(image, boxes)
    np.testing.assert_array_equal(once_boxes[:, [1, 3]], [[40, 55], [1, 30]])
    np.testing.assert_array_equal(_white_bbox(once_img, once_boxes[0]), once_boxes[0, 1:])
    twice_img, twice_boxes = flip_lr(once_img, once_boxes)
    np.testing.assert_array_equal(twice_img, image)
    np.testing.assert_array_equal(twice_boxes, boxes)


def test_hsv_jitter_keeps_shape_and_zero_gain_is_identity() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    np.testing.assert_array_equal(hsv_jitter(image, rng, 0, 0, 0), image)
    out = hsv_jitter(image, rng, 0.015, 0.7, 0.4)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert not np.array_equal(out, image)


@pytest.mark.parametrize("seed", range(6))
def test_random_affine_boxes_follow_pixels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    image, boxes = _scene(64, 96, [(10, 8, 40, 30), (50, 30, 90, 60), (2, 40, 20, 62)])
    out, out_boxes = random_affine(image, boxes, rng, scale=0.5, translate=0.2, out_size=(80, 80))
    assert out.shape == (80, 80, 3)
    assert np.all(out_boxes[:, 1:] >= 0) and np.all(out_boxes[:, [1, 3]] <= 80) and np.all(out_boxes[:, [2, 4]] <= 80)
    assert np.all(out_boxes[:, 3] - out_boxes[:, 1] >= 2) and np.all(out_boxes[:, 4] - out_boxes[:, 2] >= 2)
    for box in out_boxes:
        np.testing.assert_allclose(_white_bbox(out, box), box[1:], atol=1.5)


def test_random_affine_without_change_is_identity() -> None:
    image, boxes = _scene(32, 32, [(4, 4, 20, 12)])
    out, out_boxes = random_affine(image, boxes, np.random.default_rng(0), scale=0, translate=0)
    np.testing.assert_array_equal(out, image)
    np.testing.assert_array_equal(out_boxes, boxes)


def test_random_affine_centre_crop() -> None:
    image, boxes = _scene(64, 64, [(0, 0, 10, 10), (20, 20, 40, 40)])
    out, out_boxes = random_affine(image, boxes, np.random.default_rng(0), scale=0, translate=0, out_size=(32, 32))
    np.testing.assert_array_equal(out, image[16:48, 16:48])
    np.testing.assert_array_equal(out_boxes, [[1, 4, 4, 24, 24]])  # the corner box is cut away


def test_clip_boxes_drops_small_and_mostly_outside() -> None:
    boxes = np.array(
        [
            [0, 10, 10, 20, 20],  # inside
            [1, -30, 10, 5, 20],  # 5 of 35 px wide visible: mostly cut off
            [2, -5, 10, 15, 20],  # 15 of 20 visible: kept, clipped
            [3, 10, 10, 11.5, 30],  # 1.5 px wide: too small
        ],
        np.float32,
    )
    out = clip_boxes(boxes, 32, 32)
    np.testing.assert_array_equal(out[:, 0], [0, 2])
    np.testing.assert_array_equal(out[1], [2, 0, 10, 15, 20])


def test_mosaic_places_boxes_on_their_pixels() -> None:
    rng = np.random.default_rng(3)
    scenes = [_scene(32, 24, [(2, 3, 20, 25)]), _scene(20, 32, [(5, 5, 25, 15)]),
              _scene(32, 32, [(8, 8, 24, 24)]), _scene(16, 32, [(0, 0, 12, 10)])]
    canvas, boxes = mosaic4([s[0] for s in scenes], [s[1] for s in scenes], rng, 32)
    assert canvas.shape == (64, 64, 3)
    assert len(boxes) >= 1
    assert np.all(boxes[:, 1:] >= 0) and np.all(boxes[:, 1:] <= 64)
    for box in boxes:
        np.testing.assert_allclose(_white_bbox(canvas, box), box[1:], atol=1.0)
    with pytest.raises(ValueError, match="4 images"):
        mosaic4([scenes[0][0]], [scenes[0][1]], rng, 32)


def test_augment_config_validation() -> None:
    assert AugmentConfig().mosaic == 1.0
    assert AugmentConfig.from_any(None) is None
    assert AugmentConfig.from_any({"mosaic": 0, "flip_lr": 0.0}) == AugmentConfig(mosaic=0.0, flip_lr=0.0)
    with pytest.raises(ConfigError, match="augment.flip_lr must be >= 0"):
        AugmentConfig(flip_lr=-0.1)
    with pytest.raises(ConfigError, match="augment.mosaic must be <= 1"):
        AugmentConfig(mosaic=2)
    with pytest.raises(ConfigError, match="augment.scale must be < 1"):
        AugmentConfig(scale=1.0)
    with pytest.raises(ConfigError, match=r"unknown augment option\(s\) \['rotate'\]"):
        AugmentConfig.from_any({"rotate": 10})
    with pytest.raises(ConfigError, match="finite number"):
        AugmentConfig(hsv_h="a")  # type: ignore[arg-type]
