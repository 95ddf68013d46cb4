"""Tests of yolo_slim.data.coco: COCO detection json -> labels, checked against pycocotools."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from yolo_slim.data.coco import coco_partner, read_coco
from yolo_slim.errors import DataError

from datafiles import write_coco, write_image

MakeCoco = Callable[..., Path]


def test_reads_categories_images_and_boxes(tmp_path: Path, coco_split: MakeCoco) -> None:
    path = coco_split(tmp_path / "train" / "_annotations.coco.json", tmp_path / "train")
    split = read_coco(path)
    assert split.names == ("car", "truck") and split.category_ids == (3, 7)  # ascending COCO id
    assert split.image_root == tmp_path / "train"
    assert split.crowd_skipped == 1
    table = split.table
    assert [p.name for p in table.images] == ["000.png", "001.png", "002.png"]
    assert all(p.is_absolute() and p.is_file() for p in table.images)
    labels, issues = table.lookup(tmp_path / "train" / "000.png")
    assert issues == []
    # car [8, 4, 16, 12] and truck [30, 20, 20, 24] in a 64 x 48 image, by hand
    np.testing.assert_allclose(labels, [[0, 16 / 64, 10 / 48, 16 / 64, 12 / 48],
                                        [1, 40 / 64, 32 / 48, 20 / 64, 24 / 48]], rtol=1e-6)
    negative, issues = table.lookup(tmp_path / "train" / "002.png")
    assert negative.shape == (0, 5) and issues == []  # kept as a background image
    assert table.size(tmp_path / "train" / "001.png") == (64, 48)


def test_agrees_with_pycocotools(tmp_path: Path) -> None:
    coco_api = pytest.importorskip("pycocotools.coco")
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i in range(6):
        w, h = int(rng.integers(40, 90)), int(rng.integers(40, 90))
        write_image(tmp_path / "imgs" / f"{i}.jpg", height=h, width=w, seed=i)
        images.append({"id": 10 * i + 1, "file_name": f"{i}.jpg", "width": w, "height": h})
        for _ in range(int(rng.integers(0, 5))):
            bw, bh = rng.uniform(2, w / 2), rng.uniform(2, h / 2)
            x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            annotations.append({"id": len(annotations) + 1, "image_id": 10 * i + 1,
                                "category_id": int(rng.choice([2, 5, 11])), "bbox": [x, y, bw, bh],
                                "area": bw * bh, "iscrowd": int(rng.random() < 0.15)})
    categories = [{"id": c, "name": n} for c, n in ((11, "c"), (2, "a"), (5, "b"))]
    path = write_coco(tmp_path / "imgs" / "ann.json", images, annotations, categories)
    split = read_coco(path)

    oracle = coco_api.COCO(str(path))
    cat_ids = sorted(oracle.getCatIds())
    assert split.category_ids == tuple(cat_ids)
    assert split.names == tuple(oracle.loadCats(c)[0]["name"] for c in cat_ids)
    for image_id in sorted(oracle.getImgIds()):
        info = oracle.loadImgs(image_id)[0]
        anns = oracle.loadAnns(oracle.getAnnIds(imgIds=[image_id], iscrowd=False))
        expected = np.array([[cat_ids.index(a["category_id"]),
                              (a["bbox"][0] + a["bbox"][2] / 2) / info["width"],
                              (a["bbox"][1] + a["bbox"][3] / 2) / info["height"],
                              a["bbox"][2] / info["width"], a["bbox"][3] / info["height"]] for a in anns]).reshape(-1, 5)
        labels, issues = split.table.lookup(tmp_path / "imgs" / info["file_name"])
        assert issues == []
        np.testing.assert_allclose(labels, expected, rtol=1e-5, atol=1e-7)


def test_boxes_outside_the_image_are_repaired_or_dropped(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png", height=50, width=100)
    annotations = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [90, 10, 10.5, 10]},  # 0.5 px over the edge: clipped
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [95, 10, 20, 10]},   # far outside: dropped
        {"id": 3, "image_id": 1, "category_id": 1, "bbox": [10, 10, 0, 10]},    # empty: dropped
        {"id": 4, "image_id": 1, "category_id": 1, "bbox": [10, 10, 5, 5]},
        {"id": 5, "image_id": 1, "category_id": 1, "bbox": [10, 10, 5, 5]},     # repeated: dropped
    ]
    path = write_coco(tmp_path / "a.json", [{"id": 1, "file_name": "a.png", "width": 100, "height": 50}],
                      annotations, [{"id": 1, "name": "thing"}])
    labels, issues = read_coco(path).table.lookup(tmp_path / "a.png")
    assert len(labels) == 2
    assert [i.kind for i in issues] == ["coords_clipped", "coords_outside", "coords_outside", "duplicate_box"]
    assert str(issues[1]).startswith(f"{path}: annotations[1] (id 2): image a.png: box edge")


def test_finds_images_in_the_coco_layout(tmp_path: Path, coco_split: MakeCoco) -> None:
    coco_split(tmp_path / "annotations" / "instances_train2017.json", tmp_path / "train2017")
    coco_split(tmp_path / "annotations" / "instances_val2017.json", tmp_path / "val2017", n_images=2)
    split = read_coco(tmp_path / "annotations" / "instances_train2017.json")
    assert split.image_root == tmp_path / "train2017"
    assert coco_partner(tmp_path / "annotations" / "instances_train2017.json") == \
        tmp_path / "annotations" / "instances_val2017.json"
    assert read_coco(coco_partner(split.source)).image_root == tmp_path / "val2017"
    assert coco_partner(tmp_path / "annotations" / "instances_val2017.json") is None


def _bad(tmp_path: Path, **override: object) -> Path:
    data: dict[str, object] = {
        "images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}],
        "annotations": [{"id": 9, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}],
        "categories": [{"id": 1, "name": "thing"}],
    }
    data.update(override)
    write_image(tmp_path / "a.png")
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"annotations": None}, r"bad.json: not a COCO detection file: key\(s\) 'annotations' missing or not a list"),
        ({"images": [{"id": 1, "file_name": "a.png", "height": 48}]}, r"bad.json: images\[0\]: width: expected a positive integer"),
        ({"images": [{"id": "x", "file_name": "a.png", "width": 64, "height": 48}]}, r"images\[0\]: id: expected an integer, got 'x'"),
        ({"annotations": [{"id": 9, "image_id": 2, "category_id": 1, "bbox": [1, 2, 3, 4]}]},
         r"bad.json: annotations\[0\] \(id 9\): image_id 2 is not the id of an entry in images"),
        ({"annotations": [{"id": 9, "image_id": 1, "category_id": 5, "bbox": [1, 2, 3, 4]}]},
         r"annotations\[0\] \(id 9\): category_id 5 is not the id of an entry in categories"),
        ({"annotations": [{"id": 9, "image_id": 1, "category_id": 1, "bbox": [1, 2]}]},
         r"annotations\[0\] \(id 9\): bbox: expected \[x, y, width, height\] numbers \(pixels\), got \[1, 2\]"),
        ({"annotations": [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "iscrowd": 2}]},
         r"annotations\[0\]: iscrowd: expected 0 or 1, got 2"),
        ({"categories": [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]}, r"categories\[1\]: id 1 repeats an earlier category"),
        ({"categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "a"}]}, r"categories\[1\]: name 'a' repeats category id 1"),
        ({"categories": []}, r"bad.json: categories: is empty"),
        ({"images": [{"id": 1, "file_name": "missing.png", "width": 64, "height": 48}]},
         r"bad.json: images: cannot find 'missing.png' .*looked in"),
    ],
)
def test_structural_problems_name_the_file_and_entry(tmp_path: Path, override: dict, match: str) -> None:
    with pytest.raises(DataError, match=match):
        read_coco(_bad(tmp_path, **override))


def test_not_json_or_not_coco(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"images": [\n  {"id": 1,}\n]}')
    with pytest.raises(DataError, match=r"x.json:2: not valid JSON: "):
        read_coco(path)
    path.write_text("[1, 2]")
    with pytest.raises(DataError, match=r"x.json: expected a JSON object with 'images', 'annotations' and 'categories', got list"):
        read_coco(path)
    with pytest.raises(DataError, match=r"none.json: COCO json not found"):
        read_coco(tmp_path / "none.json")


def test_many_problems_are_listed_at_once_and_capped(tmp_path: Path) -> None:
    annotations = [{"id": i, "image_id": 99, "category_id": 1, "bbox": [1, 2, 3, 4]} for i in range(15)]
    with pytest.raises(DataError, match=r"annotations\[9\].*\n\.\.\. and 5 more problem\(s\) in ") as err:
        read_coco(_bad(tmp_path, annotations=annotations))
    assert len(str(err.value).splitlines()) == 11
