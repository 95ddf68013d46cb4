"""Small dataset files written by the data tests (imported by conftest.py and the tests)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np


def write_image(path: Path, height: int = 48, width: int = 64, seed: int = 0) -> Path:
    """Writes a random-colour image (PNG or JPEG by suffix) and returns its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    if not cv2.imwrite(str(path), image):
        raise RuntimeError(f"cannot write {path}")
    return path


def write_label(path: Path, lines: Sequence[str]) -> Path:
    """Writes a label file with the given lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def write_coco(path: Path, images: Sequence[dict], annotations: Sequence[dict], categories: Sequence[dict]) -> Path:
    """Writes a COCO detection json with the given entries and returns its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": list(images), "annotations": list(annotations),
                                "categories": list(categories)}), encoding="utf-8")
    return path
