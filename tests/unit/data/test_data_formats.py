"""Tests of yolo_slim.data.formats: .data/.names parsing, image lists, label paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from yolo_slim.data.formats import label_path_for, read_data_file, read_names, resolve_image_list
from yolo_slim.errors import DataError


def _dataset(tmp_path: Path) -> Path:
    (tmp_path / "train.txt").write_text("images/a.jpg\n", encoding="utf-8")
    (tmp_path / "val.txt").write_text("images/b.jpg\n", encoding="utf-8")
    (tmp_path / "obj.names").write_text("person\n\ncar\n", encoding="utf-8")
    return tmp_path


def test_read_data_file_resolves_paths_and_skips_comments(tmp_path: Path) -> None:
    _dataset(tmp_path)
    data = tmp_path / "obj.data"
    data.write_text(
        "# my dataset\nclasses= 2\ntrain  = train.txt   # inline comment\n"
        "valid=val.txt\nnames = obj.names\nbackup = backup/\n\n",
        encoding="utf-8",
    )
    spec = read_data_file(data)
    assert spec.classes == 2
    assert spec.names == ("person", "car")
    assert spec.train == (tmp_path / "train.txt",)
    assert spec.valid == (tmp_path / "val.txt",)
    assert spec.source == data


def test_data_and_names_files_saved_with_a_byte_order_mark_are_read(tmp_path: Path) -> None:
    _dataset(tmp_path)
    (tmp_path / "obj.names").write_text("person\ncar\n", encoding="utf-8-sig")
    data = tmp_path / "obj.data"
    data.write_text("classes=2\ntrain=train.txt\nvalid=val.txt\nnames=obj.names\n", encoding="utf-8-sig")
    assert data.read_bytes().startswith(b"\xef\xbb\xbf")
    spec = read_data_file(data)
    assert spec.classes == 2 and spec.names == ("person", "car")


def test_read_data_file_falls_back_to_current_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _dataset(tmp_path)
    sub = tmp_path / "cfg"
    sub.mkdir()
    data = sub / "obj.data"
    data.write_text("classes=2\ntrain=train.txt\nval=val.txt\nnames=obj.names\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    spec = read_data_file(data)
    assert spec.train[0].resolve() == (tmp_path / "train.txt").resolve()
    assert spec.valid[0].resolve() == (tmp_path / "val.txt").resolve()


def test_read_data_file_without_names_uses_generic_names(tmp_path: Path) -> None:
    _dataset(tmp_path)
    data = tmp_path / "x.data"
    data.write_text("classes=3\ntrain=train.txt\nvalid=val.txt,train.txt\n", encoding="utf-8")
    spec = read_data_file(data)
    assert spec.names == ("class0", "class1", "class2")
    assert len(spec.valid) == 2


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("train=train.txt\nvalid=val.txt\n", r"missing required key 'classes'"),
        ("classes=two\ntrain=train.txt\nvalid=val.txt\n", r"x\.data:1: classes must be an integer, got 'two'"),
        ("classes=0\ntrain=train.txt\nvalid=val.txt\n", r"x\.data:1: classes must be >= 1"),
        ("classes=2\ntrain train.txt\nvalid=val.txt\n", r"x\.data:2: expected 'key = value'"),
        ("classes=2\ntrain=train.txt\nvalid=val.txt\ntrain=val.txt\n", r"x\.data:4: key 'train' repeats line 2"),
        ("classes=2\ntrain=nope.txt\nvalid=val.txt\n", r"x\.data:2: train source 'nope\.txt' not found"),
        ("classes=3\ntrain=train.txt\nvalid=val.txt\nnames=obj.names\n", r"x\.data:4: .*has 2 names but classes=3"),
        ("classes=2\ntrain=train.txt\nvalid=val.txt\nnames=missing.names\n", r"x\.data:4: names: .*not found"),
        ("classes=2\ntrain=\nvalid=val.txt\n", r"x\.data:2: key 'train' has an empty value"),
    ],
)
def test_read_data_file_errors(tmp_path: Path, text: str, match: str) -> None:
    _dataset(tmp_path)
    data = tmp_path / "x.data"
    data.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=match):
        read_data_file(data)


def test_read_data_file_reports_all_problems_at_once(tmp_path: Path) -> None:
    data = tmp_path / "x.data"
    data.write_text("classes=x\ntrain=a.txt\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_data_file(data)
    message = str(info.value)
    assert "missing required key 'valid'" in message
    assert "classes must be an integer" in message
    assert "train source 'a.txt' not found" in message


def test_read_data_file_missing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nothing\.data: \.data file not found"):
        read_data_file(tmp_path / "nothing.data")


def test_read_names_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.names"
    empty.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(DataError, match="no class names"):
        read_names(empty)
    dup = tmp_path / "dup.names"
    dup.write_text("a\nb\na\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"dup\.names:3: class name 'a' repeats line 1"):
        read_names(dup)


def test_resolve_image_list_folder_is_recursive_and_sorted(tmp_path: Path) -> None:
    for name in ("b.jpg", "a.PNG", "sub/c.jpeg", "notes.txt", "d.bmp"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    images = resolve_image_list(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in images] == ["a.PNG", "b.jpg", "d.bmp", "sub/c.jpeg"]


def test_resolve_image_list_list_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "here.jpg").write_bytes(b"x")
    (tmp_path / "cwd.jpg").write_bytes(b"x")
    listing = lists / "train.txt"
    listing.write_text(f"# comment\nhere.jpg\n\ncwd.jpg\n{tmp_path / 'abs.jpg'}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    images = resolve_image_list(listing)
    assert images[0] == lists / "here.jpg"
    assert images[1].resolve() == (tmp_path / "cwd.jpg").resolve()
    assert images[2] == tmp_path / "abs.jpg"


def test_resolve_image_list_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="image list or folder not found"):
        resolve_image_list(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty\.txt: image list is empty"):
        resolve_image_list(empty)
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(DataError, match="folder contains no images"):
        resolve_image_list(folder)


def test_label_path_convention(tmp_path: Path) -> None:
    assert label_path_for("/d/images/train/x.jpg") == Path("/d/labels/train/x.txt")
    # only the last 'images' component is replaced
    assert label_path_for("/images/set/images/x.png") == Path("/images/set/labels/x.txt")
    # no 'images' component: beside the image
    assert label_path_for("/d/pics/x.jpeg") == Path("/d/pics/x.txt")
    # a file called 'images' is not a folder component
    assert label_path_for("/d/images") == Path("/d/images.txt")


def test_label_path_falls_back_to_file_beside_image(tmp_path: Path) -> None:
    image = tmp_path / "images" / "x.jpg"
    image.parent.mkdir()
    image.write_bytes(b"x")
    assert label_path_for(image) == tmp_path / "labels" / "x.txt"  # neither exists
    (tmp_path / "images" / "x.txt").write_text("", encoding="utf-8")
    assert label_path_for(image) == tmp_path / "images" / "x.txt"
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "x.txt").write_text("", encoding="utf-8")
    assert label_path_for(image) == tmp_path / "labels" / "x.txt"
