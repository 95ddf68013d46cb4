"""One entry point from a ``data`` argument to a :class:`~yolo_slim.data.formats.DataSpec`.

``data`` may be, wherever a dataset is accepted (training, prune and export
evaluation, ``python -m yolo_slim anchors``):

* ``"builtin"``: the generated dataset (:mod:`yolo_slim.data.synthetic`);
* a darknet ``.data`` file;
* an Ultralytics ``data.yaml`` (``.yaml`` / ``.yml``, :mod:`~yolo_slim.data.datayaml`);
* a COCO detection json (``.json``, :mod:`~yolo_slim.data.coco`): the training
  annotations; the validation file is found beside it
  (``instances_train*.json`` -> ``instances_val*.json``, ``train/`` -> ``valid/``);
* a folder holding one of those: one ``.data`` file, else one ``*.yaml``, else
  ``annotations/instances_train*.json`` (COCO) or ``train/_annotations.coco.json``
  (Roboflow), else ``train/`` and ``valid/`` (or ``val/``, or the same under
  ``images/``) image folders and one ``*.names`` (or ``classes.txt``) file.

A ``train`` or ``valid`` source that is a ``.json`` file, in a ``.data`` file or a
``data.yaml`` too, is read as COCO and its labels are kept in memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from yolo_slim.data.coco import CocoSplit, coco_partner, read_coco
from yolo_slim.data.datayaml import read_data_yaml
from yolo_slim.data.formats import DataSpec, read_data_file, read_names
from yolo_slim.data.labels import LabelTable
from yolo_slim.errors import DataError

__all__ = ["is_dataset_folder", "read_coco_dataset", "resolve_dataset", "spec_from_folder"]

_YAML_SUFFIXES = (".yaml", ".yml")
_FORMS = "'builtin', a .data file, a data.yaml, a COCO .json or a dataset folder"


def _check_categories(first: CocoSplit, other: CocoSplit) -> None:
    if (first.category_ids, first.names) != (other.category_ids, other.names):
        raise DataError(
            f"{other.source}: categories {list(zip(other.category_ids, other.names))} differ from those of "
            f"{first.source} {list(zip(first.category_ids, first.names))}; both splits need the same categories"
        )


def _check_names(spec: DataSpec, split: CocoSplit) -> None:
    if tuple(split.names) != tuple(spec.names):
        raise DataError(
            f"{spec.source}: class names {list(spec.names)} differ from the categories of {split.source} "
            f"{list(split.names)} (class ids follow the COCO category ids in ascending order)"
        )


def read_coco_dataset(train: str | Path, valid: str | Path | None = None, *, need_valid: bool = True) -> DataSpec:
    """A dataset made of COCO json files.

    Args:
        train: The training annotations.
        valid: The validation annotations; default the partner file beside
            ``train`` (:func:`~yolo_slim.data.coco.coco_partner`).
        need_valid: Raise when no validation file is given or found.

    Raises:
        DataError: A file is bad, the two files' categories differ, or no
            validation file exists and ``need_valid``.
    """
    train = Path(train)
    valid = Path(valid) if valid is not None else coco_partner(train)
    if valid is None and need_valid:
        raise DataError(
            f"{train}: no validation annotations found beside it (looked for the name with 'train' -> 'val', and "
            "train/ -> valid/ or val/); name both in a data.yaml (train: a.json, val: b.json)"
        )
    splits = [read_coco(train)] + ([read_coco(valid)] if valid is not None else [])
    if len(splits) == 2:
        _check_categories(splits[0], splits[1])
    first = splits[0]
    return DataSpec(
        classes=len(first.names), names=first.names, train=(train,), valid=(valid,) if valid is not None else (),
        source=train, tables=tuple(s.table for s in splits),
    )


def _with_tables(spec: DataSpec) -> DataSpec:
    """Reads the COCO json sources of a ``.data`` file or ``data.yaml`` into tables."""
    if spec.tables:
        return spec
    tables: list[LabelTable] = []
    for source in dict.fromkeys(spec.train + spec.valid):
        if source.suffix.lower() == ".json":
            split = read_coco(source)
            _check_names(spec, split)
            tables.append(split.table)
    return replace(spec, tables=tuple(tables)) if tables else spec


def _one(found: list[Path], folder: Path, what: str) -> Path | None:
    if len(found) > 1:
        raise DataError(f"{folder}: several {what} ({', '.join(p.name for p in found)}); name one of them as data")
    return found[0] if found else None


def is_dataset_folder(folder: str | Path) -> bool:
    """Whether a folder describes a dataset (a form :func:`spec_from_folder` reads), not just holds images."""
    folder = Path(folder)
    return (
        any(folder.glob("*.data"))
        or any(p.suffix.lower() in _YAML_SUFFIXES for p in folder.iterdir() if p.is_file())
        or any((folder / "annotations").glob("instances_train*.json"))
        or (folder / "train" / "_annotations.coco.json").is_file()
        or (any((folder / n).is_dir() for n in ("train", "images/train"))
            and bool(list(folder.glob("*.names")) or list(folder.glob("classes.txt"))))
    )


def spec_from_folder(folder: str | Path, *, need_valid: bool = True) -> DataSpec:
    """Describes a dataset folder as a :class:`DataSpec` (the forms in the module docstring).

    Raises:
        DataError: Naming what is missing or ambiguous.
    """
    folder = Path(folder)
    data_file = _one(sorted(folder.glob("*.data")), folder, ".data files")
    if data_file is not None:
        return _with_tables(read_data_file(data_file))
    yamls = sorted(p for p in folder.iterdir() if p.suffix.lower() in _YAML_SUFFIXES and p.is_file())
    if len(yamls) > 1 and any(p.name == "data.yaml" for p in yamls):
        yamls = [folder / "data.yaml"]
    data_yaml = _one(yamls, folder, "yaml files")
    if data_yaml is not None:
        return _with_tables(read_data_yaml(data_yaml))
    coco = _one(sorted((folder / "annotations").glob("instances_train*.json")), folder / "annotations",
                "instances_train*.json files")
    if coco is None and (folder / "train" / "_annotations.coco.json").is_file():
        coco = folder / "train" / "_annotations.coco.json"
    if coco is not None:
        return read_coco_dataset(coco, need_valid=need_valid)

    def first(*names: str) -> Path | None:
        return next((folder / n for n in names if (folder / n).is_dir()), None)

    train = first("train", "images/train")
    valid = first("valid", "val", "images/valid", "images/val")
    names_files = sorted(folder.glob("*.names")) or sorted(folder.glob("classes.txt"))
    problems = []
    if train is None:
        problems.append(f"{folder}: no .data, *.yaml or COCO annotations, and no train/ (or images/train/) folder")
    if valid is None and need_valid:
        problems.append(f"{folder}: no valid/ or val/ (or images/valid/, images/val/) folder")
    if len(names_files) != 1:
        found = ", ".join(p.name for p in names_files) or "none"
        problems.append(f"{folder}: need exactly one *.names (or classes.txt) file, found {found}")
    if problems or train is None:
        raise DataError("\n".join(problems))
    names = read_names(names_files[0])
    return DataSpec(classes=len(names), names=names, train=(train,), valid=(valid,) if valid else (), source=folder)


def resolve_dataset(
    data: str | Path,
    *,
    builtin: Mapping[str, Any] | None = None,
    builtin_root: str | Path | None = None,
    need_valid: bool = True,
) -> DataSpec:
    """The dataset a ``data`` argument names (the forms in the module docstring).

    Args:
        data: ``"builtin"``, a file or a folder.
        builtin: Keyword arguments of
            :func:`~yolo_slim.data.synthetic.make_synthetic_dataset` for ``"builtin"``.
        builtin_root: Where the built-in dataset is written; default
            ``./data_cache/<folder of its preset>``.
        need_valid: Raise when the dataset has no validation split (false for
            uses that only read the training labels, such as fitting anchors).

    Raises:
        DataError: Not found, not a recognised form, or a bad file.
        ConfigError: A bad built-in option.
    """
    if str(data) == "builtin":
        from yolo_slim.data.synthetic import builtin_folder, make_synthetic_dataset

        kwargs = dict(builtin or {})
        root = Path(builtin_root) if builtin_root is not None else Path.cwd() / "data_cache" / builtin_folder(kwargs.get("preset"))
        return read_data_file(make_synthetic_dataset(root, **kwargs))
    path = Path(data).expanduser()
    if path.is_dir():
        spec = spec_from_folder(path, need_valid=need_valid)
    elif not path.is_file():
        raise DataError(f"{path}: dataset not found (give {_FORMS})")
    elif path.suffix.lower() == ".json":
        spec = read_coco_dataset(path, need_valid=need_valid)
    elif path.suffix.lower() in _YAML_SUFFIXES:
        spec = _with_tables(read_data_yaml(path))
    else:
        spec = _with_tables(read_data_file(path))
    if need_valid and not spec.valid:
        raise DataError(f"{spec.source}: the dataset has no validation split")
    return spec
