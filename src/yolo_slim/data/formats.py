"""Darknet/YOLO dataset files: the ``.data`` file, ``.names`` files, image lists.

What a darknet dataset is made of, read into plain values and nothing more:

* a ``.data`` file of ``key = value`` lines (``classes``, ``train``, ``valid``,
  ``names``; ``#`` starts a comment) -> :class:`DataSpec`;
* ``train``/``valid`` entries that are list files (one image path a line), folders
  of images, or single images -> :func:`resolve_image_list`;
* the images -> labels convention for label files -> :func:`label_path_for`.

Other formats have their own readers (:mod:`~yolo_slim.data.datayaml` for
Ultralytics ``data.yaml``, :mod:`~yolo_slim.data.coco` for COCO json) that produce
the same :class:`DataSpec`; :mod:`~yolo_slim.data.sources` picks the reader.

Relative paths are resolved against the folder of the file that names them first,
then against the current directory (where darknet itself looks), so a dataset can
be moved as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from yolo_slim.data.labels import LabelIssue, LabelTable, read_labels
from yolo_slim.errors import DataError

__all__ = [
    "IMAGE_SUFFIXES",
    "DataSpec",
    "label_path_for",
    "read_data_file",
    "read_names",
    "read_text_file",
    "resolve_image_list",
    "resolve_relative",
]

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
)
"""File suffixes (lower case) treated as images when a folder is listed."""

_REQUIRED_KEYS = ("classes", "train", "valid")
_KEY_ALIASES = {"val": "valid", "validation": "valid"}


@dataclass(frozen=True)
class DataSpec:
    """A dataset: its classes and where its training and validation images are.

    Attributes:
        classes: Number of classes, >= 1.
        names: One name per class, ``len(names) == classes``.
        train: Sources of training images: list files, image folders, images, or
            annotation files (COCO json) whose labels are in ``tables``.
        valid: Sources of validation images, same kinds as ``train``; empty when
            the dataset has no validation split (a lone COCO json).
        source: The file (or folder) this spec was read from; None if built in code.
        tables: The labels of the annotation-file sources, read into memory.
    """

    classes: int
    names: tuple[str, ...]
    train: tuple[Path, ...]
    valid: tuple[Path, ...]
    source: Path | None = None
    tables: tuple[LabelTable, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.classes < 1:
            raise DataError(f"{self._where()}classes must be >= 1, got {self.classes}")
        if len(self.names) != self.classes:
            raise DataError(
                f"{self._where()}{len(self.names)} class names for classes={self.classes}; "
                "the names file must have exactly one non-empty line per class"
            )

    def _where(self) -> str:
        return f"{self.source}: " if self.source is not None else ""

    def _table(self, source: Path) -> LabelTable | None:
        return next((t for t in self.tables if t.source == source), None)

    def images(self, split: Literal["train", "valid"]) -> list[Path]:
        """The images of one split, in source order.

        Raises:
            DataError: A source cannot be listed (see :func:`resolve_image_list`),
                or the split has no sources.
        """
        sources = self.train if split == "train" else self.valid
        if not sources:
            raise DataError(f"{self._where()}the dataset has no {split} split")
        images: list[Path] = []
        for source in sources:
            table = self._table(source)
            images.extend(table.images if table is not None else resolve_image_list(source))
        return images

    def read_labels(self, image: str | Path) -> tuple[np.ndarray, list[LabelIssue]]:
        """The labels of one image: from an annotation file's table, else its label file.

        Returns:
            ``(labels, issues)`` as :func:`~yolo_slim.data.labels.read_labels`
            returns them: float32 ``[M, 5]`` ``cls, cx, cy, w, h`` normalised.
        """
        for table in self.tables:
            if image in table:
                return table.lookup(image)
        return read_labels(label_path_for(image), self.classes)

    def image_size(self, image: str | Path) -> tuple[int, int] | None:
        """``(width, height)`` in pixels when an annotation file states it, else None."""
        for table in self.tables:
            if image in table:
                return table.size(image)
        return None


def resolve_relative(value: str | Path, base: Path) -> Path:
    """Resolves a path written in a dataset file.

    Absolute paths are returned as they are. A relative path is tried against
    ``base`` (the folder of the file that names it) and then against the current
    directory; if it exists in neither, the ``base`` candidate is returned so that
    the error message points at the more likely place.

    Args:
        value: The path as written.
        base: Folder of the file that contains ``value``.

    Returns:
        The resolved path (not necessarily existing).
    """
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    beside = base / path
    if beside.exists():
        return beside
    if path.exists():
        return path.absolute()
    return beside


def _strip_comment(line: str) -> str:
    """Removes a ``#`` comment: a whole line, or one preceded by whitespace."""
    stripped = line.strip()
    if stripped.startswith(("#", ";")):
        return ""
    for i, char in enumerate(stripped):
        if char == "#" and i > 0 and stripped[i - 1] in " \t":
            return stripped[:i].rstrip()
    return stripped


def read_text_file(path: Path, what: str) -> str:
    """The UTF-8 text of a dataset file (a leading byte-order mark, as Windows editors write, is dropped).

    Args:
        path: The file.
        what: What it is, for messages (``"names file"``, ``".data file"``, ...).

    Raises:
        DataError: ``<path>: <what> not found`` or ``<path>: cannot read <what>: ...``.
    """
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read {what}: {err}") from None


def read_names(path: str | Path) -> tuple[str, ...]:
    """Reads a darknet ``.names`` file: one class name a line, blank lines ignored.

    Args:
        path: The names file.

    Returns:
        The class names in file order.

    Raises:
        DataError: The file is missing, unreadable, empty, or repeats a name.
    """
    path = Path(path)
    text = read_text_file(path, "names file")
    names: list[str] = []
    seen: dict[str, int] = {}
    problems: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        name = raw.strip()
        if not name:
            continue
        if name in seen:
            problems.append(f"{path}:{lineno}: class name {name!r} repeats line {seen[name]}")
        seen.setdefault(name, lineno)
        names.append(name)
    if not names:
        problems.append(f"{path}: names file has no class names")
    if problems:
        raise DataError("\n".join(problems))
    return tuple(names)


def read_data_file(path: str | Path) -> DataSpec:
    """Reads a darknet ``.data`` file.

    Recognised keys are ``classes``, ``train``, ``valid`` (also ``val``) and
    ``names``; others (``backup``, ``eval``, ...) are ignored. ``train`` and
    ``valid`` may name several sources separated by commas. Without ``names`` the
    classes are called ``class0``, ``class1``, ...

    Args:
        path: The ``.data`` file.

    Returns:
        The parsed spec with resolved paths.

    Raises:
        DataError: Listing every problem found, each as ``file:line: message``.
    """
    path = Path(path)
    text = read_text_file(path, ".data file")

    base = path.parent
    values: dict[str, tuple[int, str]] = {}
    problems: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = _strip_comment(raw)
        if not line:
            continue
        key, sep, value = line.partition("=")
        key = key.strip().lower()
        key = _KEY_ALIASES.get(key, key)
        value = value.strip()
        if not sep or not key:
            problems.append(f"{path}:{lineno}: expected 'key = value', got {raw.strip()!r}")
            continue
        if not value:
            problems.append(f"{path}:{lineno}: key {key!r} has an empty value")
            continue
        if key in values:
            problems.append(f"{path}:{lineno}: key {key!r} repeats line {values[key][0]}")
            continue
        values[key] = (lineno, value)

    for key in _REQUIRED_KEYS:
        if key not in values:
            problems.append(f"{path}: missing required key {key!r}")

    classes = 0
    if "classes" in values:
        lineno, value = values["classes"]
        try:
            classes = int(value)
        except ValueError:
            problems.append(f"{path}:{lineno}: classes must be an integer, got {value!r}")
        else:
            if classes < 1:
                problems.append(f"{path}:{lineno}: classes must be >= 1, got {classes}")

    sources: dict[str, tuple[Path, ...]] = {}
    for key in ("train", "valid"):
        if key not in values:
            continue
        lineno, value = values[key]
        resolved = []
        for item in (v.strip() for v in value.split(",")):
            if not item:
                continue
            candidate = resolve_relative(item, base)
            if not candidate.exists():
                problems.append(
                    f"{path}:{lineno}: {key} source {item!r} not found "
                    f"(looked in {base} and in the current directory)"
                )
            resolved.append(candidate)
        sources[key] = tuple(resolved)

    names: tuple[str, ...] = ()
    if "names" in values:
        lineno, value = values["names"]
        names_path = resolve_relative(value, base)
        try:
            names = read_names(names_path)
        except DataError as err:
            problems.append(f"{path}:{lineno}: names: {err}")
        else:
            if classes >= 1 and len(names) != classes:
                problems.append(
                    f"{path}:{lineno}: names file {names_path} has {len(names)} names "
                    f"but classes={classes}"
                )
    elif classes >= 1:
        names = tuple(f"class{i}" for i in range(classes))

    if problems:
        raise DataError("\n".join(problems))
    return DataSpec(
        classes=classes,
        names=names,
        train=sources["train"],
        valid=sources["valid"],
        source=path,
    )


def resolve_image_list(path_or_folder: str | Path) -> list[Path]:
    """Lists the images of one dataset source.

    Args:
        path_or_folder: A folder (searched recursively for image suffixes, sorted),
            a single image, or a list file with one image path a line (blank lines
            and ``#`` comments ignored; relative paths resolved against the list
            file's folder, then the current directory).

    Returns:
        Image paths in a deterministic order. Listed images are not checked for
        existence here; the dataset reports missing or unreadable ones.

    Raises:
        DataError: The source does not exist, cannot be read, or lists no images.
    """
    path = Path(path_or_folder)
    if path.is_dir():
        images = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not images:
            raise DataError(f"{path}: folder contains no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return images
    if not path.exists():
        raise DataError(f"{path}: image list or folder not found")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return [path]
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read image list: {err}") from None
    base = path.parent
    images = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        images.append(resolve_relative(line, base))
    if not images:
        raise DataError(f"{path}: image list is empty")
    return images


def label_path_for(image_path: str | Path) -> Path:
    """Finds the label file of an image: under ``labels/``, or beside the image.

    The last path component named ``images`` is replaced by ``labels`` and the
    suffix by ``.txt`` (the Ultralytics convention, which YOLO tools share). If that
    file does not exist but a ``.txt`` beside the image does, the one beside the
    image is used (where darknet itself looks). When neither exists the
    convention's path is returned (the caller reports it as missing).

    Args:
        image_path: Path of an image.

    Returns:
        Path of its label file (may not exist).
    """
    image_path = Path(image_path)
    beside = image_path.with_suffix(".txt")
    parts = list(image_path.parts)
    for i in range(len(parts) - 2, -1, -1):  # never the file name itself
        if parts[i] == "images":
            parts[i] = "labels"
            converted = Path(*parts).with_suffix(".txt")
            if converted.exists() or not beside.exists():
                return converted
            return beside
    return beside
