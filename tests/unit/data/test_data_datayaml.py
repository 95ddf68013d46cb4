"""Tests of yolo_slim.data.datayaml: Ultralytics data.yaml files, resolved as Ultralytics does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from yolo_slim.data.datayaml import read_data_yaml
from yolo_slim.errors import DataError

MakeSplit = Callable[..., list[Path]]


def _yaml(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_ultralytics_layout(tmp_path: Path, make_split: MakeSplit) -> None:
    train = make_split("train", [["0 0.5 0.5 0.2 0.2"], ["1 0.3 0.3 0.1 0.1"]], root=tmp_path / "ds")
    make_split("val", [["1 0.5 0.5 0.4 0.4"]], root=tmp_path / "ds")
    path = _yaml(tmp_path / "ds" / "data.yaml", "path: .\ntrain: images/train\nval: images/val\nnames:\n  0: cat\n  1: dog\n")
    spec = read_data_yaml(path)
    assert spec.names == ("cat", "dog") and spec.classes == 2 and spec.source == path
    assert spec.images("train") == train
    labels, issues = spec.read_labels(train[1])  # from the parallel labels/ folder
    assert issues == [] and labels.tolist() == [[1.0, pytest.approx(0.3), pytest.approx(0.3), pytest.approx(0.1),
                                                 pytest.approx(0.1)]]


def test_root_lists_and_names_forms(tmp_path: Path, make_split: MakeSplit, monkeypatch: pytest.MonkeyPatch) -> None:
    a = make_split("a", [[]], root=tmp_path / "root")
    b = make_split("b", [[], []], root=tmp_path / "root")
    listed = tmp_path / "root" / "val.txt"
    listed.write_text(f"{b[0]}\nimages/b/001.png\n")
    _yaml(tmp_path / "cfg" / "d.yaml", "path: ../root\ntrain: [images/a, images/b]\nvalid: val.txt\nnames: [x]\nnc: 1\n")
    spec = read_data_yaml(tmp_path / "cfg" / "d.yaml")  # path relative to the yaml's folder
    assert spec.images("train") == a + b and spec.images("valid") == b
    monkeypatch.chdir(tmp_path)
    _yaml(tmp_path / "cfg" / "e.yaml", f"path: root\ntrain: {a[0]}\nvalidation: {a[0]}\nnc: 3\n")
    spec = read_data_yaml(tmp_path / "cfg" / "e.yaml")  # path relative to the current directory; absolute sources
    assert spec.names == ("class_0", "class_1", "class_2") and spec.images("valid") == a


def test_roboflow_parent_paths(tmp_path: Path, make_split: MakeSplit) -> None:
    # Roboflow: data.yaml in the root, `train: ../train/images` (from a folder one level down)
    make_split("x", [["0 0.5 0.5 0.2 0.2"]], root=tmp_path / "train")
    make_split("x", [[]], root=tmp_path / "valid")
    (tmp_path / "train" / "images" / "x").rename(tmp_path / "train" / "images" / "y")
    path = _yaml(tmp_path / "data.yaml", "train: ../train/images\nval: ../valid/images\nnc: 1\nnames: ['car']\n")
    spec = read_data_yaml(path)
    assert spec.train == (tmp_path / "train" / "images",) and spec.valid == (tmp_path / "valid" / "images",)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("train: [a\n", r"d.yaml:\d+: not valid YAML: "),
        ("- a\n- b\n", r"d.yaml: expected a mapping with train, val and names keys, got list"),
        ("val: imgs\nnames: [a]\n", r"d.yaml: train: missing; a data.yaml needs train and val"),
        ("train: imgs\nnames: [a]\n", r"d.yaml: val: missing"),
        ("train: imgs\nval: imgs\n", r"d.yaml: names: missing; give names \(a list or \{0: name, \.\.\.\}\) or nc"),
        ("train: imgs\nval: imgs\nnames: [a, b]\nnc: 3\n", r"d.yaml: nc: 3 but names lists 2 classes"),
        ("train: imgs\nval: imgs\nnames: {0: a, 2: b}\n", r"d.yaml: names: mapping keys must be the class ids 0..1, got \[0, 2\]"),
        ("train: imgs\nval: imgs\nnames: [a, a]\n", r"d.yaml: names: repeated class name\(s\) \['a'\]"),
        ("train: imgs\nval: imgs\nnames: a\n", r"d.yaml: names: expected a list or a mapping"),
        ("train: imgs\nval: imgs\nnc: 0\n", r"d.yaml: nc: expected a positive integer, got 0"),
        ("train: nope\nval: imgs\nnames: [a]\n", r"d.yaml: train: 'nope' not found \(relative to the dataset root "),
        ("train: [imgs, 3]\nval: imgs\nnames: [a]\n", r"d.yaml: train\[1\]: expected a folder, list file or image path, got 3"),
        ("path: nowhere\ntrain: imgs\nval: imgs\nnames: [a]\n", r"d.yaml: path: dataset root 'nowhere' not found"),
        ("train: imgs\nval: imgs\nvalid: imgs\nnames: [a]\n", r"d.yaml: both 'val' and 'valid' given; keep one validation key"),
    ],
)
def test_bad_files_name_the_file_and_key(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "imgs").mkdir()
    with pytest.raises(DataError, match=match):
        read_data_yaml(_yaml(tmp_path / "d.yaml", text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"none.yaml: data.yaml not found"):
        read_data_yaml(tmp_path / "none.yaml")
