"""Mosaic tiling and back-mapping (pure functions)."""

from __future__ import annotations

import numpy as np
import pytest

from yolo_slim.deploy.mosaic import (
    compose_mosaic,
    mosaic_grid,
    split_detections,
    tile_origins,
)


def test_grid_for_counts():
    assert mosaic_grid(1) == (1, 1)
    assert mosaic_grid(2) == (1, 2)
    assert mosaic_grid(4) == (2, 2)
    assert mosaic_grid(5) == (2, 3)
    with pytest.raises(ValueError, match="at least one tile"):
        mosaic_grid(0)


def test_compose_places_tiles_row_major():
    tiles = [np.full((4, 6, 3), v, np.uint8) for v in (10, 20, 30)] + [None]
    m = compose_mosaic(tiles, (2, 2), (4, 6), fill=7)
    assert m.shape == (8, 12, 3)
    assert tile_origins((2, 2), (4, 6)) == [(0, 0), (6, 0), (0, 4), (6, 4)]
    assert (m[:4, :6] == 10).all() and (m[:4, 6:] == 20).all() and (m[4:, :6] == 30).all() and (m[4:, 6:] == 7).all()
    with pytest.raises(ValueError, match="tile of shape"):
        compose_mosaic([np.zeros((3, 3, 3), np.uint8)], (1, 1), (4, 6))
    with pytest.raises(ValueError, match="5 tiles"):
        compose_mosaic([None] * 5, (2, 2), (4, 6))


def test_split_assigns_by_centre_and_clips():
    tile = (100, 100)
    dets = np.array(
        [
            [10, 10, 30, 30, 0.9, 0],  # tile 0
            [150, 20, 170, 40, 0.8, 1],  # tile 1 -> (50, 20, 70, 40)
            [90, 120, 130, 160, 0.7, 0],  # centre (110, 140): tile 3, crosses the border -> clipped x1 to 0
            [30, 180, 60, 230, 0.6, 2],  # centre (45, 205) below the mosaic: dropped
        ],
        np.float32,
    )
    parts = split_detections(dets, (2, 2), tile)
    assert [len(p) for p in parts] == [1, 1, 0, 1]
    np.testing.assert_allclose(parts[1][0, :4], [50, 20, 70, 40])
    np.testing.assert_allclose(parts[3][0, :4], [0, 20, 30, 60])
    assert parts[3][0, 4] == pytest.approx(0.7)
    assert all(p.shape[1] == 6 for p in split_detections(np.zeros((0, 6)), (2, 2), tile))
    with pytest.raises(ValueError, match="expected detections"):
        split_detections(np.zeros((3, 4)), (2, 2), tile)


def test_round_trip_random_boxes():
    rng = np.random.default_rng(0)
    tile = (64, 80)
    for _ in range(20):
        k = rng.integers(0, 4)
        r, c = divmod(int(k), 2)
        x1, y1 = rng.uniform(0, 60), rng.uniform(0, 44)
        w, h = rng.uniform(2, 20), rng.uniform(2, 20)
        box = np.array([[x1, y1, x1 + w, y1 + h, 0.5, 0]], np.float32)
        shifted = box.copy()
        shifted[:, [0, 2]] += c * tile[1]
        shifted[:, [1, 3]] += r * tile[0]
        parts = split_detections(shifted, (2, 2), tile)
        assert len(parts[int(k)]) == 1
        np.testing.assert_allclose(parts[int(k)][0, :4], box[0, :4], atol=1e-4)
