"""End-to-end tests of yolo_slim.data.datamodule.YoloDataModule (num_workers=0)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from yolo_slim.data.augment import AugmentConfig
from yolo_slim.data.datamodule import YoloDataModule
from yolo_slim.data.synthetic import SYNTHETIC_NAMES
from yolo_slim.errors import ConfigError, DataError

MakeSplit = Callable[..., list[Path]]
BUILTIN = {"n_train": 6, "n_val": 5, "img_size": 64}


def test_builtin_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    dm = YoloDataModule("builtin", img_size=64, batch_size=4, num_workers=0, builtin=BUILTIN)
    dm.prepare_data()
    assert (tmp_path / "data_cache" / "builtin" / "synthetic.data").is_file()  # default root
    dm.setup("fit")
    assert dm.num_classes == 2 and dm.class_names == SYNTHETIC_NAMES
    assert len(dm.train_set) == 6 and len(dm.val_set) == 5
    assert dm.train_set.augment == AugmentConfig() and dm.val_set.augment is None
    batch = next(iter(dm.train_dataloader()))
    assert batch["images"].shape == (4, 3, 64, 64)
    assert batch["targets"].ndim == 2 and batch["targets"].shape[1] == 6
    val = list(dm.val_dataloader())
    assert [len(b["paths"]) for b in val] == [4, 1]
    assert [p for b in val for p in b["paths"]] == [str(p) for p in dm.val_set.images]  # not shuffled
    again = list(dm.val_dataloader())
    assert all(torch.equal(a["images"], b["images"]) for a, b in zip(val, again))  # not augmented
    calib = dm.calibration_images(3)
    assert len(calib) == 3 and calib[0] == dm.train_set.images[0] and calib[-1] == dm.train_set.images[-1]
    assert dm.hparams["augment"] == AugmentConfig().to_dict()


def test_cache_dir_and_val_subset(tmp_path: Path) -> None:
    dm = YoloDataModule(img_size=64, num_workers=0, builtin=BUILTIN, cache_dir=tmp_path / "c", val_subset=2,
                        cache=True, augment={"mosaic": 0.0})
    dm.setup()
    assert (tmp_path / "c" / "builtin" / "manifest.json").is_file()
    assert [p.name for p in dm.val_set.images] == ["000000.jpg", "000004.jpg"]
    assert dm.train_set.augment == AugmentConfig(mosaic=0.0)
    batch = next(iter(dm.train_dataloader()))
    assert batch["images"].shape[1:] == (3, 64, 64)


def test_folder_source(tmp_path: Path, make_split: MakeSplit) -> None:
    root = tmp_path / "set"
    make_split("train", [["0 0.5 0.5 0.2 0.2"]] * 3, root=root)
    make_split("val", [["1 0.5 0.5 0.2 0.2"]] * 2, root=root)
    (root / "obj.names").write_text("a\nb\n")
    dm = YoloDataModule(str(root), img_size=64, batch_size=2, num_workers=0, augment=None)
    dm.setup()
    assert dm.class_names == ("a", "b")
    assert len(dm.train_set) == 3 and len(dm.val_set) == 2
    batch = next(iter(dm.val_dataloader()))
    assert batch["targets"][:, 1].tolist() == [1, 1]


def test_data_file_with_bad_data_is_summarised_once(
    tmp_path: Path, make_split: MakeSplit, caplog: pytest.LogCaptureFixture
) -> None:
    train = make_split("train", [["0 0.5 0.5 0.2 0.2"], ["7 0.5 0.5 0.2 0.2"], None])
    make_split("val", [["0 0.5 0.5 0.2 0.2", "0 0.5 0.5 0.2 0.2"]])
    (tmp_path / "train.txt").write_text("\n".join(str(p) for p in train) + "\nimages/train/gone.png\n")
    (tmp_path / "val.txt").write_text("images/val/000.png\n")
    (tmp_path / "obj.names").write_text("a\nb\n")
    data = tmp_path / "obj.data"
    data.write_text("classes=2\ntrain=train.txt\nvalid=val.txt\nnames=obj.names\n")
    dm = YoloDataModule(str(data), img_size=64, num_workers=0)
    with caplog.at_level("INFO", logger="yolo_slim.data"):
        dm.setup("fit")
        dm.setup("validate")  # already built: not reported again
    summaries = [r.getMessage() for r in caplog.records if "images used" in r.getMessage()]
    assert len(summaries) == 2  # one for train, one for val
    train_summary, val_summary = summaries
    assert "train: 3/4 images used" in train_summary
    assert "gone.png" in train_summary and "001.txt:1: class id 7" in train_summary
    assert "002.txt: label file not found" in train_summary
    assert "val: 1/1 images used, 1 boxes, 1 issue(s)" in val_summary and "000.txt:2" in val_summary
    assert len(dm.train_set) == 3

    strict = YoloDataModule(str(data), img_size=64, num_workers=0, strict=True)
    with pytest.raises(DataError, match=r"(?s)strict data check failed.*gone\.png"):
        strict.setup("fit")


def test_bad_options_and_sources(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="img_size must be a multiple of 32"):
        YoloDataModule(img_size=100)
    with pytest.raises(ConfigError, match="batch_size must be an integer >= 1"):
        YoloDataModule(batch_size=0)
    with pytest.raises(ConfigError, match=r"unknown builtin option\(s\) \['size'\]"):
        YoloDataModule(builtin={"size": 3})
    with pytest.raises(DataError, match="dataset not found"):
        YoloDataModule(str(tmp_path / "none.data")).setup()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"(?s)no train/.*need exactly one \*\.names"):
        YoloDataModule(str(empty)).setup()
    with pytest.raises(DataError, match="not set up"):
        YoloDataModule(str(empty)).train_dataloader()
