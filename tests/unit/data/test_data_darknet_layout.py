"""The built-in data as darknet's own `detector map` / `calc_anchors` read it.

Darknet (AlexeyAB's src/utils.c, `replace_image_to_label`) turns an image path into
its label path by plain string edits, with no fallback: the first occurrence of each
of a fixed list of folder patterns is replaced (COCO's `/images/train2014/`,
`/images/val2014/`, `/images/train2017/`, `/images/val2017/` -> `/labels/...`,
PascalVOC's `/JPEGImages/` -> `/labels/`, and the same with backslashes), then
leading and trailing spaces and tabs are trimmed, then a trailing image extension
from a fixed, case-sensitive list is replaced by `.txt`. A plain `/images/` is NOT
rewritten. The list files are read line by line, paths used as written (relative
ones against darknet's working directory), and `.data` values likewise.

The rule is re-implemented here from those facts, and applied to what the generator
writes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from yolo_slim.data.formats import label_path_for
from yolo_slim.data.labels import read_labels
from yolo_slim.data.synthetic import make_synthetic_dataset

_FOLDERS = (  # (pattern, replacement), applied in this order, first occurrence each
    ("/images/train2017/", "/labels/train2017/"),
    ("/images/val2017/", "/labels/val2017/"),
    ("/JPEGImages/", "/labels/"),
    ("\\images\\train2017\\", "\\labels\\train2017\\"),
    ("\\images\\val2017\\", "\\labels\\val2017\\"),
    ("\\images\\train2014\\", "\\labels\\train2014\\"),
    ("\\images\\val2014\\", "\\labels\\val2014\\"),
    ("/images/train2014/", "/labels/train2014/"),
    ("/images/val2014/", "/labels/val2014/"),
    ("\\JPEGImages\\", "\\labels\\"),
)
_EXTENSIONS = (".jpg", ".JPG", ".jpeg", ".JPEG", ".png", ".PNG", ".bmp", ".BMP", ".ppm", ".PPM", ".tiff", ".TIFF")


def darknet_label_path(image_path: str) -> str:
    """Darknet's image path -> label path rule (see the module docstring)."""
    out = image_path
    for pattern, replacement in _FOLDERS:
        out = out.replace(pattern, replacement, 1)
    out = out.strip(" \t")
    for ext in _EXTENSIONS:
        if out.endswith(ext):
            out = out[: -len(ext)] + ".txt"
    return out


def test_the_rule_as_darknet_states_it() -> None:
    assert darknet_label_path("/d/VOC2007/JPEGImages/000005.jpg") == "/d/VOC2007/labels/000005.txt"
    assert darknet_label_path("/coco/images/train2017/1.jpg") == "/coco/labels/train2017/1.txt"
    assert darknet_label_path("/my/images/train/1.jpg") == "/my/images/train/1.txt"  # no plain images/ rule
    assert darknet_label_path("/my/a.jpg.d/b.PNG") == "/my/a.jpg.d/b.txt"  # only the trailing extension
    assert darknet_label_path("/my/b.webp") == "/my/b.webp"  # not an extension darknet knows


def _data_values(data_file: Path) -> dict[str, str]:
    values = {}
    for line in data_file.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


@pytest.mark.parametrize("preset", ["demo", "aerial"])
def test_darknet_finds_every_label_of_the_builtin_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       preset: str) -> None:
    data_file = make_synthetic_dataset(tmp_path / "ds", preset=preset, n_train=4, n_val=3, img_size=96)
    monkeypatch.chdir(tmp_path.parent)  # darknet resolves relative paths against its working directory
    values = _data_values(data_file)
    assert int(values["classes"]) == len(Path(values["names"]).read_text().split())
    checked = 0
    for key, count in (("train", 4), ("valid", 3)):
        list_file = Path(values[key])
        assert list_file.is_absolute() and list_file.is_file()
        lines = list_file.read_text().splitlines()
        assert len(lines) == count
        for line in lines:
            assert Path(line).is_absolute() and Path(line).is_file()
            label = Path(darknet_label_path(line))
            assert label.is_file(), f"darknet would find no labels for {line}"
            assert label == label_path_for(line)  # yolo_slim reads the same file
            labels, issues = read_labels(label, int(values["classes"]))
            assert issues == []
            checked += len(labels)
    assert checked > 0
