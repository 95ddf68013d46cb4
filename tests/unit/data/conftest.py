"""Helpers that build small datasets on disk for the data tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from datafiles import write_coco, write_image, write_label


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


@pytest.fixture
def coco_split(tmp_path: Path) -> Callable[..., Path]:
    """Returns ``make(json_path, image_folder, n_images=3)``: images on disk plus a COCO json naming them.

    Categories have the ids 7 ("truck") and 3 ("car"), deliberately out of order;
    image 0 has a car and a truck (and a crowd region), image 1 a car, the last
    image nothing (a negative). Images are 64 x 48 (w x h) PNGs.
    """

    def make(json_path: Path, image_folder: Path, n_images: int = 3, prefix: str = "") -> Path:
        images, annotations = [], []
        for i in range(n_images):
            name = f"{prefix}{i:03d}.png"
            write_image(image_folder / name, height=48, width=64, seed=i)
            images.append({"id": 100 + i, "file_name": name, "width": 64, "height": 48})
        annotations = [
            {"id": 1, "image_id": 100, "category_id": 3, "bbox": [8.0, 4.0, 16.0, 12.0], "iscrowd": 0},
            {"id": 2, "image_id": 100, "category_id": 7, "bbox": [30, 20, 20, 24], "iscrowd": 0},
            {"id": 3, "image_id": 100, "category_id": 3, "bbox": [0, 0, 64, 48], "iscrowd": 1},
            {"id": 4, "image_id": 101, "category_id": 3, "bbox": [40, 10, 10, 10]},
        ]
        categories = [{"id": 7, "name": "truck", "supercategory": "vehicle"},
                      {"id": 3, "name": "car", "supercategory": "vehicle"}]
        annotations = [a for a in annotations if a["image_id"] < 100 + n_images]
        return write_coco(json_path, images, annotations, categories)

    return make
