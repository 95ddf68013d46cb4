"""Helpers that build small datasets on disk for the data tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest


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


@pytest.fixture
def make_split(tmp_path: Path) -> Callable[..., list[Path]]:
    """Returns ``make(split, labels_per_image, size=(h, w))`` writing images/<split>/ + labels/<split>/.

    ``labels_per_image`` is a list with one entry per image: a list of label lines,
    or None for "no label file".
    """

    def make(split: str, labels_per_image: Sequence[Sequence[str] | None], size: tuple[int, int] = (48, 64),
             root: Path | None = None) -> list[Path]:
        base = root or tmp_path
        images = []
        for i, lines in enumerate(labels_per_image):
            image = write_image(base / "images" / split / f"{i:03d}.png", *size, seed=i)
            if lines is not None:
                write_label(base / "labels" / split / f"{i:03d}.txt", lines)
            images.append(image)
        return images

    return make
