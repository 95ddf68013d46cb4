"""YOLO label files, labels held in memory, and the bad-data report.

A label file has one ``class cx cy w h`` line per object, coordinates normalised
to [0, 1] of the image. :func:`read_labels` parses one file and returns the boxes it
could use plus one :class:`LabelIssue` per problem; it never raises for bad content.
:class:`LabelCollector` holds the rules every box goes through, so labels read from
other formats (COCO json, into a :class:`LabelTable`) are checked the same way.
:class:`DataReport` collects issues over a dataset, counts them per case, keeps the
first few file names of each case and renders one summary; in strict mode it turns
the issues into one :class:`~yolo_slim.errors.DataError` naming files and lines.

What non-strict reading does with each case:

========================  =====================================================
``image_unreadable``      image missing, unreadable or corrupt: image dropped
``no_label_file``         image used as background (no objects)
``label_unreadable``      label file cannot be read: image used as background
``bad_field_count``       line dropped (needs exactly 5 fields)
``not_a_number``          line dropped
``bad_class``             class id not an integer in [0, classes): line dropped
``coords_clipped``        box up to 0.01 outside [0, 1]: clipped, kept
``coords_outside``        box more than 0.01 outside [0, 1] or w/h <= 0: dropped
``duplicate_box``         repeated (class, box) line: repeat dropped
========================  =====================================================

Edges at most 1e-5 outside [0, 1] come from rounding the decimal text and are
clipped without an issue.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np

from yolo_slim.errors import DataError

__all__ = [
    "CLIP_TOLERANCE",
    "ISSUE_KINDS",
    "DataReport",
    "IssueKind",
    "LabelCollector",
    "LabelIssue",
    "LabelTable",
    "read_labels",
    "table_key",
]

IssueKind = Literal[
    "image_unreadable",
    "no_label_file",
    "label_unreadable",
    "bad_field_count",
    "not_a_number",
    "bad_class",
    "coords_clipped",
    "coords_outside",
    "duplicate_box",
]

ISSUE_KINDS: dict[str, str] = {
    "image_unreadable": "unreadable or corrupt image (image dropped)",
    "no_label_file": "no label file (image used as background)",
    "label_unreadable": "unreadable label file (image used as background)",
    "bad_field_count": "label line without exactly 5 fields (line dropped)",
    "not_a_number": "label value that is not a number (line dropped)",
    "bad_class": "class id outside [0, classes) (line dropped)",
    "coords_clipped": "box slightly outside [0, 1] (clipped)",
    "coords_outside": "box outside [0, 1] or empty (line dropped)",
    "duplicate_box": "duplicate box (repeat dropped)",
}
"""Every issue kind with the one-line description used in summaries."""

CLIP_TOLERANCE = 0.01
"""How far (normalised units) a box edge may lie outside [0, 1] and still be clipped."""

ROUNDING_SLACK = 1e-5
"""Box edges this close outside [0, 1] are clipped silently (decimal rounding in files)."""

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelIssue:
    """One problem found in a dataset.

    Attributes:
        kind: Which case (a key of :data:`ISSUE_KINDS`).
        path: The image or label file concerned.
        line: 1-based line number in a label file; None for whole-file issues.
        message: What was found, for humans.
    """

    kind: IssueKind
    path: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else f"{self.path}"
        return f"{where}: {self.message}"


class LabelCollector:
    """Checks boxes one at a time and keeps the usable ones (the rules of :func:`read_labels`).

    Every reader of labels (YOLO ``.txt`` files, COCO json) turns its entries into
    ``class cx cy w h`` values normalised to the image and hands them over here, so
    the same box is repaired, dropped or reported the same way whatever file it
    came from.

    Args:
        path: The file being read, named in the issues.
        num_classes: Class ids must be integers in [0, num_classes).
    """

    def __init__(self, path: Path, num_classes: int) -> None:
        self.path = path
        self.num_classes = num_classes
        self.issues: list[LabelIssue] = []
        self._rows: list[tuple[float, float, float, float, float]] = []
        self._seen: dict[tuple[int, int, int, int, int], str] = {}

    def _issue(self, kind: IssueKind, line: int | None, where: str, message: str) -> None:
        self.issues.append(LabelIssue(kind, self.path, line, f"{where}{message}"))

    def add(self, values: tuple[float, float, float, float, float], text: str, *,
            line: int | None = None, where: str = "") -> bool:
        """Checks one box and keeps it (possibly clipped) when usable.

        Args:
            values: ``(cls, cx, cy, w, h)``, coordinates normalised to [0, 1].
            text: The entry as written, quoted in messages.
            line: 1-based line number for line-oriented files, else None.
            where: Prefix naming the entry for files without lines (e.g.
                ``"annotations[3] (id 7): "``).

        Returns:
            Whether the box was kept.
        """
        cls, cx, cy, w, h = values
        if not all(math.isfinite(v) for v in values):
            self._issue("not_a_number", line, where, f"non-finite value in {text!r}")
            return False
        if cls != int(cls) or not 0 <= cls < self.num_classes:
            self._issue("bad_class", line, where, f"class id {text.split()[0] if text else cls} not an integer in [0, {self.num_classes})")
            return False
        if w <= 0 or h <= 0:
            self._issue("coords_outside", line, where, f"box has width {w:g} and height {h:g}")
            return False
        x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        overshoot = max(-x1, -y1, x2 - 1.0, y2 - 1.0, 0.0)
        if 0 < overshoot <= ROUNDING_SLACK:  # rounding of the decimal text, not an error
            x1, y1, x2, y2 = max(x1, 0.0), max(y1, 0.0), min(x2, 1.0), min(y2, 1.0)
            cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
        elif overshoot > 0:
            if overshoot > CLIP_TOLERANCE:
                self._issue("coords_outside", line, where,
                            f"box edge {overshoot:.4g} outside [0, 1] (tolerance {CLIP_TOLERANCE})")
                return False
            x1, y1 = max(x1, 0.0), max(y1, 0.0)
            x2, y2 = min(x2, 1.0), min(y2, 1.0)
            if x2 <= x1 or y2 <= y1:
                self._issue("coords_outside", line, where, "box is empty after clipping")
                return False
            cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
            self._issue("coords_clipped", line, where, f"box edge {overshoot:.4g} outside [0, 1], clipped")
        key = (int(cls), *(round(v * 1e6) for v in (cx, cy, w, h)))
        here = f"line {line}" if line is not None else where.rstrip(": ")
        if key in self._seen:
            self._issue("duplicate_box", line, where, f"same box as {self._seen[key]}")
            return False
        self._seen[key] = here
        self._rows.append((cls, cx, cy, w, h))
        return True

    def labels(self) -> np.ndarray:
        """The kept boxes as float32 ``[M, 5]``: ``cls, cx, cy, w, h`` normalised."""
        return np.asarray(self._rows, dtype=np.float32).reshape(-1, 5)


def read_labels(path: str | Path, num_classes: int) -> tuple[np.ndarray, list[LabelIssue]]:
    """Reads one YOLO label file, dropping or repairing bad lines.

    Args:
        path: The label file. A missing file is an issue (``no_label_file``) and
            yields no boxes; an existing empty file is a legal background image.
        num_classes: Number of classes; class ids must lie in [0, num_classes).

    Returns:
        ``(labels, issues)``: ``labels`` is float32 ``[M, 5]`` with columns
        ``(cls, cx, cy, w, h)``, coordinates normalised to [0, 1]; ``issues`` lists
        every problem found, in line order.
    """
    path = Path(path)
    empty = np.zeros((0, 5), dtype=np.float32)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return empty, [LabelIssue("no_label_file", path, None, "label file not found")]
    except (OSError, UnicodeDecodeError) as err:
        return empty, [LabelIssue("label_unreadable", path, None, f"cannot read label file: {err}")]

    rows = LabelCollector(path, num_classes)
    for lineno, raw in enumerate(text.splitlines(), start=1):
        fields = raw.split()
        if not fields:
            continue
        if len(fields) != 5:
            rows.issues.append(
                LabelIssue("bad_field_count", path, lineno, f"expected 5 fields 'class cx cy w h', got {len(fields)}")
            )
            continue
        try:
            values = tuple(float(f) for f in fields)
        except ValueError:
            rows.issues.append(LabelIssue("not_a_number", path, lineno, f"not a number in {raw.strip()!r}"))
            continue
        rows.add(values, raw.strip(), line=lineno)  # type: ignore[arg-type]
    return rows.labels(), rows.issues


@dataclass(frozen=True)
class LabelTable:
    """Labels held in memory, read from one annotation file (e.g. a COCO json).

    Datasets whose labels are not one ``.txt`` per image keep them here; the
    dataset looks an image up instead of opening its label file.

    Attributes:
        source: The annotation file.
        images: Image paths in file order.
        labels: One float32 ``[M, 5]`` array per image: ``cls, cx, cy, w, h``
            normalised to that image.
        issues: The problems found per image while reading (same order).
        sizes: ``(width, height)`` in pixels per image, as the file states them.
    """

    source: Path
    images: tuple[Path, ...]
    labels: tuple[np.ndarray, ...]
    issues: tuple[tuple[LabelIssue, ...], ...]
    sizes: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        n = len(self.images)
        if not len(self.labels) == len(self.issues) == len(self.sizes) == n:
            raise ValueError("LabelTable: images, labels, issues and sizes must have the same length")

    @cached_property
    def _index(self) -> dict[str, int]:
        return {table_key(p): i for i, p in enumerate(self.images)}

    def __contains__(self, image: object) -> bool:
        return isinstance(image, (str, Path)) and table_key(image) in self._index

    def lookup(self, image: str | Path) -> tuple[np.ndarray, list[LabelIssue]]:
        """The labels and reading issues of ``image``.

        Raises:
            KeyError: ``image`` is not in this table.
        """
        i = self._index[table_key(image)]
        return self.labels[i], list(self.issues[i])

    def size(self, image: str | Path) -> tuple[int, int]:
        """``(width, height)`` of ``image`` in pixels, as the annotation file states."""
        return self.sizes[self._index[table_key(image)]]


def table_key(image: str | Path) -> str:
    """The key an image path is looked up by: absolute and normalised, links not followed."""
    return os.path.normpath(os.path.abspath(image))


@dataclass
class DataReport:
    """Counts of dataset issues per case, with the first few examples of each.

    Attributes:
        name: What was checked (e.g. ``"train"``), used in the summary.
        max_examples: How many example issues each case keeps.
        images: Number of images checked.
        images_kept: Number of images kept after dropping bad ones.
        boxes: Number of boxes kept.
        counts: Issues per kind.
        examples: First ``max_examples`` issues per kind.
    """

    name: str = "dataset"
    max_examples: int = 5
    images: int = 0
    images_kept: int = 0
    boxes: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[LabelIssue]] = field(default_factory=dict)

    def add(self, issue: LabelIssue) -> None:
        """Counts one issue."""
        self.counts[issue.kind] = self.counts.get(issue.kind, 0) + 1
        kept = self.examples.setdefault(issue.kind, [])
        if len(kept) < self.max_examples:
            kept.append(issue)

    def extend(self, issues: Iterable[LabelIssue]) -> None:
        """Counts several issues."""
        for issue in issues:
            self.add(issue)

    def merge(self, other: DataReport) -> None:
        """Adds another report's counts and examples to this one."""
        self.images += other.images
        self.images_kept += other.images_kept
        self.boxes += other.boxes
        for kind, count in other.counts.items():
            self.counts[kind] = self.counts.get(kind, 0) + count
            kept = self.examples.setdefault(kind, [])
            kept.extend(other.examples.get(kind, [])[: self.max_examples - len(kept)])

    @property
    def total_issues(self) -> int:
        """Number of issues of all kinds."""
        return sum(self.counts.values())

    def summary(self) -> str:
        """Renders the report as a multi-line text, one block per issue kind."""
        head = (
            f"{self.name}: {self.images_kept}/{self.images} images used, {self.boxes} boxes, "
            f"{self.total_issues} issue(s)"
        )
        lines = [head]
        for kind in ISSUE_KINDS:
            count = self.counts.get(kind, 0)
            if not count:
                continue
            lines.append(f"  {count:6d} x {ISSUE_KINDS[kind]}")
            for issue in self.examples.get(kind, []):
                lines.append(f"           {issue}")
            if count > len(self.examples.get(kind, [])):
                lines.append(f"           ... and {count - len(self.examples.get(kind, []))} more")
        return "\n".join(lines)

    def log(self, logger: logging.Logger | None = None) -> None:
        """Logs the summary: INFO when clean, WARNING when there are issues."""
        logger = logger or _log
        level = logging.WARNING if self.total_issues else logging.INFO
        logger.log(level, "%s", self.summary())

    def raise_if_strict(self, strict: bool) -> None:
        """Raises one DataError listing the examples when ``strict`` and issues exist.

        Raises:
            DataError: ``strict`` is true and at least one issue was counted; the
                message names file and line of the first issues of every case.
        """
        if strict and self.total_issues:
            raise DataError(
                f"strict data check failed with {self.total_issues} issue(s) "
                "(set strict=false to drop or repair them):\n" + self.summary()
            )
