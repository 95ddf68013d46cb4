"""Ultralytics ``data.yaml`` files -> :class:`~yolo_slim.data.formats.DataSpec`.

The keys and how they resolve, as Ultralytics' own dataset check does:

* ``path``: the dataset root; default the yaml's folder. A relative ``path`` is
  tried against the yaml's folder, then the current directory (Ultralytics looks
  in the current directory, then in its settings' datasets folder, which yolo_slim
  does not have).
* ``train``, ``val`` (also ``valid`` or ``validation``): a folder of images, a list
  file (one image path a line) or an image, or a list of those, relative to the
  root. A value starting with ``../`` that does not exist is tried again without
  it (Roboflow exports write ``../train/images`` beside a yaml in the root).
  Paths are normalised (``a/../b`` -> ``b``), as Ultralytics resolves them.
  A ``.json`` value is a COCO annotation file (a yolo_slim extension).
* ``test``: accepted and not used (yolo_slim validates on ``val``).
* ``names``: a list, or a mapping ``{0: name, 1: name, ...}`` with the keys 0..n-1;
  ``nc``: the class count, which must equal ``len(names)`` when both are given;
  ``nc`` alone names the classes ``class_0``, ``class_1``, ...
* anything else (``download``, ``channels``, ...) is ignored.

Labels are found the Ultralytics way: ``.../images/...`` -> ``.../labels/...`` with
a ``.txt`` suffix (:func:`~yolo_slim.data.formats.label_path_for`, which also
accepts a label file beside the image).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from yolo_slim.data.formats import DataSpec, read_text_file, resolve_relative
from yolo_slim.errors import DataError

__all__ = ["read_data_yaml"]

_VAL_KEYS = ("val", "valid", "validation")


def _load(path: Path) -> dict[Any, Any]:
    text = read_text_file(path, "data.yaml")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise DataError(f"{where}: not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a mapping with train, val and names keys, got {type(data).__name__}")
    return data


def _names(path: Path, data: dict[Any, Any], problems: list[str]) -> tuple[str, ...]:
    names_value, nc = data.get("names"), data.get("nc")
    if nc is not None and (isinstance(nc, bool) or not isinstance(nc, int) or nc < 1):
        problems.append(f"{path}: nc: expected a positive integer, got {nc!r}")
        nc = None
    if names_value is None:
        if nc is None and "nc" not in data:
            problems.append(f"{path}: names: missing; give names (a list or {{0: name, ...}}) or nc")
        return tuple(f"class_{i}" for i in range(nc or 0))
    if isinstance(names_value, dict):
        try:
            keyed = {int(k): v for k, v in names_value.items()}
        except (TypeError, ValueError):
            problems.append(f"{path}: names: mapping keys must be class ids 0..n-1, got {sorted(map(str, names_value))}")
            return ()
        if sorted(keyed) != list(range(len(keyed))):
            problems.append(f"{path}: names: mapping keys must be the class ids 0..{len(keyed) - 1}, got {sorted(keyed)}")
            return ()
        values = [keyed[i] for i in range(len(keyed))]
    elif isinstance(names_value, list):
        values = names_value
    else:
        problems.append(f"{path}: names: expected a list or a mapping {{0: name, ...}}, got {type(names_value).__name__}")
        return ()
    names = []
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not str(value).strip():
            problems.append(f"{path}: names[{i}]: expected a non-empty name, got {value!r}")
        names.append(str(value).strip())
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        problems.append(f"{path}: names: repeated class name(s) {repeated}")
    if nc is not None and nc != len(names):
        problems.append(f"{path}: nc: {nc} but names lists {len(names)} classes")
    if not names:
        problems.append(f"{path}: names: is empty")
    return tuple(names)


def _root(path: Path, data: dict[Any, Any], problems: list[str]) -> Path:
    value = data.get("path")
    if value in (None, ""):
        return path.parent
    if not isinstance(value, str):
        problems.append(f"{path}: path: expected a folder, got {value!r}")
        return path.parent
    root = Path(os.path.normpath(resolve_relative(value, path.parent)))
    if not root.is_dir():
        problems.append(f"{path}: path: dataset root {value!r} not found (looked in {path.parent} and the current directory)")
    return root


def _sources(path: Path, key: str, value: Any, root: Path, problems: list[str]) -> tuple[Path, ...]:
    items = value if isinstance(value, list) else [value]
    out = []
    for i, item in enumerate(items):
        where = f"{key}[{i}]" if isinstance(value, list) else key
        if not isinstance(item, str) or not item.strip():
            problems.append(f"{path}: {where}: expected a folder, list file or image path, got {item!r}")
            continue
        candidate = Path(item).expanduser()
        if not candidate.is_absolute():
            candidate = root / item
            if not candidate.exists() and item.startswith("../"):
                candidate = root / item[3:]
        if not candidate.exists():
            problems.append(f"{path}: {where}: {item!r} not found (relative to the dataset root {root})")
        out.append(Path(os.path.normpath(candidate)))
    if not items:
        problems.append(f"{path}: {key}: is an empty list")
    return tuple(out)


def read_data_yaml(path: str | Path) -> DataSpec:
    """Reads an Ultralytics ``data.yaml`` (see the module docstring for the rules).

    Args:
        path: The yaml file.

    Returns:
        The spec, with the ``train`` and ``val`` sources resolved.

    Raises:
        DataError: Listing every problem found, each naming the file and the key.
    """
    path = Path(path)
    data = _load(path)
    problems: list[str] = []
    names = _names(path, data, problems)
    root = _root(path, data, problems)
    val_keys = [k for k in _VAL_KEYS if data.get(k) is not None]
    if len(val_keys) > 1:
        problems.append(f"{path}: both {val_keys[0]!r} and {val_keys[1]!r} given; keep one validation key")
    sources: dict[str, tuple[Path, ...]] = {"train": (), "val": ()}
    for split, key in (("train", "train"), ("val", val_keys[0] if val_keys else "val")):
        if data.get(key) is None:
            problems.append(f"{path}: {key}: missing; a data.yaml needs train and val")
            continue
        sources[split] = _sources(path, key, data[key], root, problems)
    if problems:
        raise DataError("\n".join(problems))
    return DataSpec(classes=len(names), names=names, train=sources["train"], valid=sources["val"], source=path)
