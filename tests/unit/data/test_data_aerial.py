"""Tests of the aerial preset of the built-in data: a small set with many small objects."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from yolo_slim.data.aerial import AERIAL_NAMES, render_aerial
from yolo_slim.data.formats import read_data_file
from yolo_slim.data.synthetic import PRESETS, builtin_folder, make_synthetic_dataset
from yolo_slim.errors import ConfigError


@pytest.fixture(scope="module")
def tiles() -> list[tuple[np.ndarray, np.ndarray]]:
    return [render_aerial(np.random.default_rng([0, 0, i]), 416) for i in range(24)]


def test_many_small_objects_per_tile(tiles: list[tuple[np.ndarray, np.ndarray]]) -> None:
    counts = [len(labels) for _, labels in tiles]
    assert min(counts) >= 5 and max(counts) <= 40
    assert 12 <= np.mean(counts) <= 32  # the users' sets: ~18 per training tile, ~38 per validation tile
    boxes = np.concatenate([labels for _, labels in tiles])
    assert set(np.unique(boxes[:, 0])) == {0.0}
    assert np.all(boxes[:, 1:] >= 0) and np.all(boxes[:, 1:] <= 1)
    side_px = boxes[:, 3:].max(axis=1) * 416
    assert np.percentile(side_px, 5) >= 8 and side_px.max() <= 70
    assert 12 <= np.median(side_px) <= 36


def test_objects_vary_in_orientation_and_colour(tiles: list[tuple[np.ndarray, np.ndarray]]) -> None:
    aspect, brightness = [], []
    for image, labels in tiles:
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        for _, cx, cy, w, h in labels:
            aspect.append(w / h)
            brightness.append(float(grey[int(cy * 415), int(cx * 415)]))
    aspect = np.log(np.asarray(aspect))
    # boxes of cars lying along x, along y, and diagonal (box near square)
    assert (aspect > 0.35).mean() > 0.1 and (aspect < -0.35).mean() > 0.1
    assert (np.abs(aspect) < 0.2).mean() > 0.1
    brightness = np.asarray(brightness)
    assert (brightness < 70).mean() > 0.1 and (brightness > 170).mean() > 0.1  # dark and bright bodies


def test_deterministic_per_seed() -> None:
    a = render_aerial(np.random.default_rng([5, 0, 1]), 256)
    b = render_aerial(np.random.default_rng([5, 0, 1]), 256)
    c = render_aerial(np.random.default_rng([5, 0, 2]), 256)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_written_as_its_own_dataset(tmp_path: Path) -> None:
    data = make_synthetic_dataset(tmp_path / "aerial", preset="aerial", n_train=3, n_val=2)
    spec = read_data_file(data)
    assert spec.names == AERIAL_NAMES == ("vehicle",)
    assert len(spec.images("train")) == 3 and len(spec.images("valid")) == 2
    assert cv2.imread(str(spec.images("train")[0])).shape == (416, 416, 3)  # the preset's size
    manifest = json.loads((data.parent / "manifest.json").read_text())
    assert manifest["preset"] == "aerial" and manifest["params"]["max_objects"] == 40
    assert "class_colour" not in manifest["params"]
    assert builtin_folder("aerial") != builtin_folder(None) == "builtin"  # cached beside the demo's, not over it
    assert PRESETS["aerial"].defaults["n_train"] == 100


def test_bad_preset_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"builtin.class_colour does not apply to the 'aerial' preset"):
        make_synthetic_dataset(tmp_path / "x", preset="aerial", class_colour=0.5)
    with pytest.raises(ConfigError, match=r"builtin.preset must be one of \['aerial', 'demo'\], got 'satellite'"):
        make_synthetic_dataset(tmp_path / "x", preset="satellite")
    with pytest.raises(ConfigError, match="min_size <= max_size"):
        make_synthetic_dataset(tmp_path / "x", preset="aerial", min_size=0.2, max_size=0.1)


def test_datamodule_caches_it_beside_the_demo_set(tmp_path: Path) -> None:
    from yolo_slim.data.datamodule import YoloDataModule

    dm = YoloDataModule(data="builtin", img_size=128, batch_size=2, num_workers=0, augment=None, cache_dir=tmp_path,
                        builtin={"preset": "aerial", "n_train": 2, "n_val": 1, "img_size": 128, "class_colour": None})
    dm.prepare_data()
    dm.setup("fit")
    assert dm.class_names == ("vehicle",)
    assert dm.spec.source == tmp_path / "builtin_aerial" / "synthetic.data"
    assert dm.train_set is not None and dm.train_set.report.boxes > 0
