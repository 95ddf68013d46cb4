"""Mosaic tiling: several letterboxed frames in one network input, and back.

The original tutorial's trick for four cameras: tile four model-size frames 2x2
into one input of twice the size, run one inference, and give each detection to
the tile holding its box centre (clipped to that tile). Pure NumPy functions.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def mosaic_grid(n: int) -> tuple[int, int]:
    """(rows, cols) of the smallest near-square grid holding `n` tiles (4 -> 2x2)."""
    if n < 1:
        raise ValueError(f"mosaic_grid: need at least one tile, got {n}")
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def tile_origins(grid: tuple[int, int], tile_hw: tuple[int, int]) -> list[tuple[int, int]]:
    """Top-left (x, y) pixel of each tile, row-major."""
    rows, cols = grid
    th, tw = tile_hw
    return [(c * tw, r * th) for r in range(rows) for c in range(cols)]


def compose_mosaic(
    tiles: Sequence[np.ndarray | None], grid: tuple[int, int], tile_hw: tuple[int, int], fill: int | Sequence[int] = 114
) -> np.ndarray:
    """Place tiles `[th, tw, 3]` uint8 (None: an empty tile, `fill`: one value or one per channel) into `[rows*th, cols*tw, 3]`, row-major."""
    rows, cols = grid
    th, tw = tile_hw
    if len(tiles) > rows * cols:
        raise ValueError(f"compose_mosaic: {len(tiles)} tiles for a {rows}x{cols} grid")
    out = np.empty((rows * th, cols * tw, 3), dtype=np.uint8)
    out[:] = np.asarray(fill, dtype=np.uint8)
    for tile, (x, y) in zip(tiles, tile_origins(grid, tile_hw)):
        if tile is None:
            continue
        if tile.shape[:2] != (th, tw):
            raise ValueError(f"compose_mosaic: tile of shape {tile.shape[:2]}, expected {tile_hw}")
        out[y : y + th, x : x + tw] = tile
    return out


def split_detections(dets: np.ndarray, grid: tuple[int, int], tile_hw: tuple[int, int]) -> list[np.ndarray]:
    """Give each mosaic detection to the tile of its box centre, in that tile's pixels.

    Args:
        dets: np.ndarray[K, 6+] of x1, y1, x2, y2 (mosaic pixels), score, class, ...
        grid: (rows, cols) of the mosaic.
        tile_hw: (height, width) of one tile in pixels.

    Returns:
        rows*cols arrays [K_t, 6+], boxes shifted to tile coordinates and clipped
        to [0, tw] x [0, th]; detections whose centre lies outside the mosaic are
        dropped.
    """
    rows, cols = grid
    th, tw = tile_hw
    dets = np.asarray(dets, dtype=np.float32)
    if dets.size == 0:
        dets = dets.reshape(0, 6)
    if dets.ndim != 2 or dets.shape[1] < 6:
        raise ValueError(f"split_detections: expected detections [K, 6], got shape {dets.shape}")
    cx = (dets[:, 0] + dets[:, 2]) / 2
    cy = (dets[:, 1] + dets[:, 3]) / 2
    col = np.floor(cx / tw).astype(np.int64)
    row = np.floor(cy / th).astype(np.int64)
    inside = (col >= 0) & (col < cols) & (row >= 0) & (row < rows)
    out = []
    for r in range(rows):
        for c in range(cols):
            sel = dets[inside & (row == r) & (col == c)].copy()
            sel[:, [0, 2]] = np.clip(sel[:, [0, 2]] - c * tw, 0, tw)
            sel[:, [1, 3]] = np.clip(sel[:, [1, 3]] - r * th, 0, th)
            out.append(sel)
    return out
