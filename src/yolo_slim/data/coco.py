"""COCO detection json: ``images``, ``annotations`` and ``categories`` -> labels in memory.

What is read, and how (the COCO "object detection" format):

* ``categories``: ``{"id", "name"}`` entries with arbitrary, unique integer ids.
  They become the contiguous class ids 0..K-1 in ascending order of their COCO id
  (the order a ``.names`` file would list them); :attr:`CocoSplit.category_ids`
  keeps the mapping.
* ``images``: ``{"id", "file_name", "width", "height"}``; every image is kept, and
  one without annotations is a negative (background) image.
* ``annotations``: ``{"image_id", "category_id", "bbox": [x, y, width, height]}``
  in pixels from the image's top-left corner. ``iscrowd: 1`` entries are skipped
  (they mark regions, not objects, and COCO's own evaluation ignores them).
  Boxes go through the same checks as YOLO label lines
  (:class:`~yolo_slim.data.labels.LabelCollector`): slightly outside the image is
  clipped, far outside or empty is dropped, each reported as an issue.

A structural problem (not json, a missing key, a reference to an unknown image or
category, a bbox that is not four numbers) is a :class:`~yolo_slim.errors.DataError`
naming the file and the entry, e.g. ``train.json: annotations[4] (id 12): bbox:
expected [x, y, width, height] numbers, got [1, 2]``.

Image files are found relative to the first folder, among the json's folder, its
parent, ``<parent>/<split>`` and ``<parent>/images/<split>`` (``<split>`` is the
json's stem without ``instances_``, e.g. ``train2017``), that holds the listed
images: the layouts of COCO itself (``annotations/instances_train2017.json`` beside
``train2017/``) and of Roboflow exports (``train/_annotations.coco.json`` among the
images).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from yolo_slim.data.formats import read_text_file
from yolo_slim.data.labels import LabelCollector, LabelIssue, LabelTable
from yolo_slim.errors import DataError

__all__ = ["CocoSplit", "coco_partner", "read_coco"]

_MAX_PROBLEMS = 10
_PROBE_IMAGES = 20


@dataclass(frozen=True)
class CocoSplit:
    """One COCO json read into yolo_slim's terms.

    Attributes:
        source: The json file.
        names: Class names by contiguous class id.
        category_ids: The COCO category id of each class id.
        table: Images (absolute paths), labels and issues, in the json's image order.
        image_root: The folder the images' ``file_name`` values are relative to.
        crowd_skipped: Number of ``iscrowd: 1`` annotations left out.
    """

    source: Path
    names: tuple[str, ...]
    category_ids: tuple[int, ...]
    table: LabelTable
    image_root: Path
    crowd_skipped: int


class _Problems:
    """Collects structural problems and raises them as one DataError."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{self.path}: {where}: {message}")

    def raise_any(self) -> None:
        if not self.items:
            return
        shown = self.items[:_MAX_PROBLEMS]
        more = len(self.items) - len(shown)
        tail = [f"... and {more} more problem(s) in {self.path}"] if more else []
        raise DataError("\n".join(shown + tail))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _load(path: Path) -> dict[str, Any]:
    text = read_text_file(path, "COCO json")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}: not valid JSON: {err.msg} (column {err.colno})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object with 'images', 'annotations' and 'categories', got {type(data).__name__}")
    missing = [k for k in ("images", "annotations", "categories") if not isinstance(data.get(k), list)]
    if missing:
        raise DataError(
            f"{path}: not a COCO detection file: key(s) {', '.join(repr(k) for k in missing)} missing or not a list"
        )
    return data


def _categories(entries: list[Any], problems: _Problems) -> tuple[dict[int, int], tuple[str, ...], tuple[int, ...]]:
    """COCO category id -> class id, names and COCO ids by class id."""
    by_id: dict[int, str] = {}
    names_seen: dict[str, int] = {}
    for i, cat in enumerate(entries):
        where = f"categories[{i}]"
        if not isinstance(cat, dict):
            problems.add(where, f"expected an object with 'id' and 'name', got {cat!r}")
            continue
        cat_id, name = cat.get("id"), cat.get("name")
        if not _is_int(cat_id):
            problems.add(where, f"id: expected an integer, got {cat_id!r}")
            continue
        if not isinstance(name, str) or not name.strip():
            problems.add(where, f"name: expected a non-empty string, got {name!r}")
            continue
        if cat_id in by_id:
            problems.add(where, f"id {cat_id} repeats an earlier category")
            continue
        if name.strip() in names_seen:
            problems.add(where, f"name {name.strip()!r} repeats category id {names_seen[name.strip()]}")
            continue
        by_id[cat_id] = name.strip()
        names_seen[name.strip()] = cat_id
    if not entries:
        problems.add("categories", "is empty; a detection file needs at least one category")
    ids = tuple(sorted(by_id))
    return {c: k for k, c in enumerate(ids)}, tuple(by_id[c] for c in ids), ids


def _images(entries: list[Any], problems: _Problems) -> tuple[dict[int, int], list[tuple[str, int, int]]]:
    """COCO image id -> position, and (file_name, width, height) per position."""
    index: dict[int, int] = {}
    files: dict[str, int] = {}
    rows: list[tuple[str, int, int]] = []
    for i, image in enumerate(entries):
        where = f"images[{i}]"
        if not isinstance(image, dict):
            problems.add(where, f"expected an object with 'id', 'file_name', 'width', 'height', got {image!r}")
            continue
        bad = False
        image_id, name = image.get("id"), image.get("file_name")
        if not _is_int(image_id):
            problems.add(where, f"id: expected an integer, got {image_id!r}")
            bad = True
        elif image_id in index:
            problems.add(where, f"id {image_id} repeats an earlier image")
            bad = True
        if not isinstance(name, str) or not name.strip():
            problems.add(where, f"file_name: expected a non-empty string, got {name!r}")
            bad = True
        elif name in files:
            problems.add(where, f"file_name {name!r} repeats images[{files[name]}]")
            bad = True
        for key in ("width", "height"):
            value = image.get(key)
            if not _is_int(value) or value < 1:
                problems.add(where, f"{key}: expected a positive integer (pixels), got {value!r}")
                bad = True
        if bad:
            continue
        index[image_id] = len(rows)
        files[name] = i
        rows.append((name, image["width"], image["height"]))
    if not entries:
        problems.add("images", "is empty")
    return index, rows


def _image_root(path: Path, names: list[str]) -> Path:
    """The folder that holds the listed images (see the module docstring)."""
    split = path.stem.removeprefix("instances_")
    parent = path.parent.parent
    candidates = [path.parent, parent, parent / split, parent / "images" / split]
    relative = [n for n in names if not Path(n).is_absolute()][:_PROBE_IMAGES]
    if not relative:
        return path.parent
    hits = [sum((folder / n).is_file() for n in relative) for folder in candidates]
    best = max(range(len(candidates)), key=lambda i: (hits[i], -i))
    if hits[best] == 0:
        looked = ", ".join(str(c) for c in dict.fromkeys(candidates))
        raise DataError(
            f"{path}: images: cannot find {relative[0]!r} (nor any of the first {len(relative)} file_name values); "
            f"looked in {looked}"
        )
    return candidates[best]


def read_coco(path: str | Path) -> CocoSplit:
    """Reads a COCO detection json.

    Args:
        path: The json file.

    Returns:
        The split: class names, the category mapping and a label table with one
        entry per image (normalised ``cls, cx, cy, w, h``), see the module docstring.

    Raises:
        DataError: The file is unreadable, not COCO detection json, or has
            structural problems (up to ten listed, each naming its entry).
    """
    path = Path(path)
    data = _load(path)
    problems = _Problems(path)
    class_of, names, category_ids = _categories(data["categories"], problems)
    index, rows = _images(data["images"], problems)

    per_image: list[list[tuple[int, tuple[float, float, float, float, float], str]]] = [[] for _ in rows]
    crowd = 0
    for i, ann in enumerate(data["annotations"]):
        where = f"annotations[{i}]"
        if not isinstance(ann, dict):
            problems.add(where, f"expected an object with 'image_id', 'category_id', 'bbox', got {ann!r}")
            continue
        if "id" in ann:
            where += f" (id {ann['id']})"
        if ann.get("iscrowd", 0) not in (0, 1, False, True):
            problems.add(where, f"iscrowd: expected 0 or 1, got {ann['iscrowd']!r}")
            continue
        image_id, cat_id, bbox = ann.get("image_id"), ann.get("category_id"), ann.get("bbox")
        if not _is_int(image_id) or image_id not in index:
            problems.add(where, f"image_id {image_id!r} is not the id of an entry in images")
            continue
        if not _is_int(cat_id) or cat_id not in class_of:
            problems.add(where, f"category_id {cat_id!r} is not the id of an entry in categories")
            continue
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
            problems.add(where, f"bbox: expected [x, y, width, height] numbers (pixels), got {bbox!r}")
            continue
        if ann.get("iscrowd", 0):
            crowd += 1
            continue
        position = index[image_id]
        _, width, height = rows[position]
        x, y, w, h = (float(v) for v in bbox)
        values = (float(class_of[cat_id]), (x + w / 2) / width, (y + h / 2) / height, w / width, h / height)
        per_image[position].append((i, values, f"{where}: "))
    problems.raise_any()

    root = _image_root(path, [name for name, _, _ in rows])
    labels: list[np.ndarray] = []
    issues: list[tuple[LabelIssue, ...]] = []
    for (name, _, _), anns in zip(rows, per_image):
        collector = LabelCollector(path, len(names))
        for _, values, where in anns:
            collector.add(values, "", where=f"{where}image {name}: ")
        labels.append(collector.labels())
        issues.append(tuple(collector.issues))
    table = LabelTable(
        source=path,
        images=tuple((root / name).absolute() for name, _, _ in rows),
        labels=tuple(labels),
        issues=tuple(issues),
        sizes=tuple((w, h) for _, w, h in rows),
    )
    return CocoSplit(path, names, category_ids, table, root, crowd)


def coco_partner(path: str | Path) -> Path | None:
    """The validation json that belongs to a training json, if there is one.

    ``instances_train2017.json`` -> ``instances_val2017.json`` beside it (the last
    ``train`` in the name replaced by ``val``); ``train/_annotations.coco.json`` ->
    ``valid/`` or ``val/_annotations.coco.json`` (a Roboflow export).

    Returns:
        The partner file, or None when neither exists.
    """
    path = Path(path)
    candidates = []
    if "train" in path.name:
        head, _, tail = path.name.rpartition("train")
        candidates.append(path.with_name(f"{head}val{tail}"))
    if path.parent.name == "train":
        candidates += [path.parent.parent / folder / path.name for folder in ("valid", "val")]
    return next((c for c in candidates if c.is_file()), None)
