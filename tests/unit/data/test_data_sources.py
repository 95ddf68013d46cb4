"""Tests of yolo_slim.data.sources: every form of `data` -> one DataSpec, and the datamodule on each."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from yolo_slim.data.datamodule import YoloDataModule
from yolo_slim.data.sources import read_coco_dataset, resolve_dataset
from yolo_slim.errors import DataError

MakeSplit = Callable[..., list[Path]]
MakeCoco = Callable[..., Path]


def _yolo_folder(root: Path, make_split: MakeSplit) -> None:
    make_split("train", [["0 0.5 0.5 0.2 0.2"], ["1 0.2 0.2 0.1 0.1"]], root=root)
    make_split("val", [["1 0.5 0.5 0.3 0.3"]], root=root)


def test_every_form_of_data(tmp_path: Path, make_split: MakeSplit, coco_split: MakeCoco) -> None:
    yolo = tmp_path / "yolo"
    _yolo_folder(yolo, make_split)
    (yolo / "data.yaml").write_text("train: images/train\nval: images/val\nnames: [a, b]\n")
    assert resolve_dataset(yolo).source == yolo / "data.yaml"  # a folder with one yaml
    assert resolve_dataset(yolo / "data.yaml").names == ("a", "b")
    (yolo / "my.data").write_text(f"classes = 2\ntrain = {yolo / 'images/train'}\nvalid = {yolo / 'images/val'}\n")
    assert resolve_dataset(yolo).source == yolo / "my.data"  # a .data file comes first

    coco = tmp_path / "coco"
    coco_split(coco / "annotations" / "instances_train.json", coco / "train")
    coco_split(coco / "annotations" / "instances_val.json", coco / "val", n_images=2)
    spec = resolve_dataset(coco)
    assert spec.names == ("car", "truck")
    assert len(spec.images("train")) == 3 and len(spec.images("valid")) == 2
    assert resolve_dataset(coco / "annotations" / "instances_train.json").valid == spec.valid

    roboflow = tmp_path / "roboflow"
    coco_split(roboflow / "train" / "_annotations.coco.json", roboflow / "train")
    coco_split(roboflow / "valid" / "_annotations.coco.json", roboflow / "valid", n_images=1)
    spec = resolve_dataset(roboflow)
    assert [p.parent.name for p in spec.images("valid")] == ["valid"]


def test_coco_sources_in_a_data_yaml(tmp_path: Path, coco_split: MakeCoco) -> None:
    coco_split(tmp_path / "a" / "ann.json", tmp_path / "a")
    coco_split(tmp_path / "b" / "ann.json", tmp_path / "b", n_images=2)
    (tmp_path / "data.yaml").write_text("train: a/ann.json\nval: b/ann.json\nnames: [car, truck]\n")
    spec = resolve_dataset(tmp_path / "data.yaml")
    labels, issues = spec.read_labels(spec.images("train")[0])
    assert issues == [] and labels[:, 0].tolist() == [0.0, 1.0]
    assert spec.image_size(spec.images("valid")[1]) == (64, 48)
    (tmp_path / "wrong.yaml").write_text("train: a/ann.json\nval: b/ann.json\nnames: [truck, car]\n")
    with pytest.raises(DataError, match=r"wrong.yaml: class names \['truck', 'car'\] differ from the categories of "):
        resolve_dataset(tmp_path / "wrong.yaml")


def test_coco_without_a_validation_file(tmp_path: Path, coco_split: MakeCoco) -> None:
    path = coco_split(tmp_path / "mine.json", tmp_path)
    with pytest.raises(DataError, match=r"mine.json: no validation annotations found beside it .*data.yaml"):
        resolve_dataset(path)
    spec = resolve_dataset(path, need_valid=False)  # enough to fit anchors to the training boxes
    assert spec.valid == () and len(spec.images("train")) == 3
    with pytest.raises(DataError, match=r"mine.json: the dataset has no valid split"):
        spec.images("valid")


def test_coco_splits_must_share_categories(tmp_path: Path, coco_split: MakeCoco) -> None:
    train = coco_split(tmp_path / "train.json", tmp_path)
    other = tmp_path / "val.json"
    other.write_text(train.read_text().replace('"truck"', '"lorry"'))
    with pytest.raises(DataError, match=r"val.json: categories .*lorry.* differ from those of .*train.json"):
        read_coco_dataset(train)


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        (lambda d: None, r"no .data, \*.yaml or COCO annotations, and no train/"),
        (lambda d: [(d / n).write_text("") for n in ("a.yaml", "b.yml")], r"several yaml files \(a.yaml, b.yml\)"),
        (lambda d: [(d / n).write_text("") for n in ("a.data", "b.data")], r"several .data files \(a.data, b.data\)"),
    ],
)
def test_folder_errors(tmp_path: Path, setup: Callable[[Path], object], match: str) -> None:
    setup(tmp_path)
    with pytest.raises(DataError, match=match):
        resolve_dataset(tmp_path)


def test_not_found(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nothing.yaml: dataset not found \(give 'builtin', a .data file, a data.yaml"):
        resolve_dataset(tmp_path / "nothing.yaml")


def test_datamodule_trains_from_coco_and_data_yaml(tmp_path: Path, make_split: MakeSplit, coco_split: MakeCoco) -> None:
    coco_split(tmp_path / "coco" / "train" / "_annotations.coco.json", tmp_path / "coco" / "train")
    coco_split(tmp_path / "coco" / "valid" / "_annotations.coco.json", tmp_path / "coco" / "valid")
    _yolo_folder(tmp_path / "yolo", make_split)
    (tmp_path / "yolo" / "data.yaml").write_text("train: images/train\nval: images/val\nnames: [a, b]\n")
    for data in (tmp_path / "coco", tmp_path / "yolo" / "data.yaml"):
        dm = YoloDataModule(data=str(data), img_size=64, batch_size=4, num_workers=0, augment=None)
        dm.setup("fit")
        assert dm.num_classes == 2
        batch = next(iter(dm.val_dataloader()))
        assert batch["images"].shape[1:] == (3, 64, 64)
        assert dm.train_set is not None and dm.train_set.report.total_issues == 0
    # COCO image 000: car [8, 4, 16, 12] in 64 x 48, letterboxed to 64 x 64 (8 px of padding on top)
    dm = YoloDataModule(data=str(tmp_path / "coco"), img_size=64, batch_size=4, num_workers=0, augment=None)
    dm.setup("validate")
    first = next(iter(dm.val_dataloader()))["targets"]
    car = first[(first[:, 0] == 0) & (first[:, 1] == 0)][0, 2:].numpy()
    np.testing.assert_allclose(car, [16 / 64, (10 + 8) / 64, 16 / 64, 12 / 64], atol=1e-5)
