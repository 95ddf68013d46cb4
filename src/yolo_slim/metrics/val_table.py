"""The table `val` prints: P, R, mAP@0.5 and mAP@0.5:0.95 for every class and for all.

`ValTable.build` takes a filled `DetectionMetrics` (its ``compute()`` gives the ``all``
row, the very numbers training logs as ``val/*``; ``per_class()`` the class rows) and the
image and label counts; `text` is the console table, `markdown` and `to_dict` what `val`
writes as ``val.md`` and ``val.json``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from torch import Tensor

from yolo_slim.metrics.detection import DetectionMetrics

QUALITY = ("precision", "recall", "mAP50", "mAP50_95")
HEADERS = ("class", "images", "labels", "P", "R", "mAP@0.5", "mAP@0.5:0.95")


class ImageCounter:
    """Images (with at least one label of each class) and labels seen, batch by batch.

    Args:
        num_classes: C.
    """

    def __init__(self, num_classes: int) -> None:
        self.images = 0
        self.class_images = np.zeros(num_classes, dtype=np.int64)

    def update(self, targets: Sequence[Tensor]) -> None:
        """Count one batch: per image Tensor[M, 5] of (class, x1, y1, x2, y2)."""
        for target in targets:
            self.images += 1
            present = np.unique(target[:, 0].cpu().numpy().astype(np.int64)) if target.numel() else []
            self.class_images[present] += 1


@dataclass(frozen=True)
class ClassRow:
    """One row: a class, or ``all``.

    Attributes:
        name: the class name, or ``all``.
        images: images with at least one label of the class (``all``: every image).
        labels: ground-truth boxes.
        precision, recall: at the score threshold (nan: the class has no labels).
        mAP50, mAP50_95: COCO-style AP at IoU 0.5 and over 0.5:0.95 (nan likewise).
    """

    name: str
    images: int
    labels: int
    precision: float
    recall: float
    mAP50: float
    mAP50_95: float


@dataclass(frozen=True)
class ValTable:
    """What `val` measured.

    Attributes:
        rows: ``all`` first, then one row per class in class-id order.
        model: the model file(s), for the title.
        data: where the data set came from (``data=...`` or the checkpoint's).
        img_size: the evaluation size in pixels.
        score_threshold, conf_thres, iou_thres, max_det: the `eval` settings used.
        params, bflops: the model's cost (PyTorch models; None for an IR).
    """

    rows: tuple[ClassRow, ...]
    model: str
    data: str
    img_size: int
    score_threshold: float
    conf_thres: float
    iou_thres: float
    max_det: int
    params: int | None = None
    bflops: float | None = None

    @classmethod
    def build(cls, metric: DetectionMetrics, counts: ImageCounter, names: Sequence[str], **info: Any) -> ValTable:
        """The table of `metric` (filled), `counts` and the class `names`; `info`: the other attributes."""
        overall = {k: float(v) for k, v in metric.compute().items() if k in QUALITY}
        per = metric.per_class()
        rows = [ClassRow("all", counts.images, int(per["n_gt"].sum()), *(overall[k] for k in QUALITY))]
        for c, name in enumerate(names):
            rows.append(ClassRow(str(name), int(counts.class_images[c]), int(per["n_gt"][c]), float(per["precision"][c]),
                                 float(per["recall"][c]), float(per["ap50"][c]), float(per["ap50_95"][c])))
        return cls(rows=tuple(rows), score_threshold=metric.score_threshold, **info)

    @property
    def overall(self) -> ClassRow:
        return self.rows[0]

    def _cells(self, row: ClassRow) -> list[str]:
        def f(value: float) -> str:
            return "-" if math.isnan(value) else f"{value:.3f}"

        return [row.name, str(row.images), str(row.labels), f(row.precision), f(row.recall), f(row.mAP50), f(row.mAP50_95)]

    def _notes(self) -> list[str]:
        cost = f"; {self.params / 1e6:.3f}M params, {self.bflops:.3f} BFLOPs" if self.params is not None and self.bflops is not None else ""
        return [
            f"model: {self.model} at {self.img_size}x{self.img_size}{cost}",
            f"data: {self.data}",
            f"P and R at score {self.score_threshold:g}; NMS conf {self.conf_thres:g}, IoU {self.iou_thres:g}, "
            f"at most {self.max_det} detections per image",
        ]

    def text(self) -> str:
        """The console table (right-aligned numbers) with the model, data and settings above it."""
        cells = [list(HEADERS), *(self._cells(r) for r in self.rows)]
        widths = [max(len(row[i]) for row in cells) for i in range(len(HEADERS))]
        lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in cells]
        return "\n".join([*self._notes(), "", *lines])

    def markdown(self) -> str:
        """``val.md``: the notes and the table."""
        body = [f"| {' | '.join(HEADERS)} |", "|" + "---|" * len(HEADERS)]
        body += [f"| {' | '.join(self._cells(r))} |" for r in self.rows]
        return "\n".join(["# Validation", "", *(f"- {n}" for n in self._notes()), "", *body]) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """``val.json``: every attribute; nan becomes null."""
        def clean(value: Any) -> Any:
            return None if isinstance(value, float) and math.isnan(value) else value

        out = {k: v for k, v in asdict(self).items() if k != "rows"}
        out["classes"] = [{k: clean(v) for k, v in asdict(r).items()} for r in self.rows]
        return out

    def metrics(self) -> dict[str, float]:
        """``val/*`` floats of the ``all`` row (training's names) plus the counts and the cost."""
        row = self.overall
        out = {f"val/{k}": float(getattr(row, k)) for k in QUALITY}
        out.update({"val/images": float(row.images), "val/labels": float(row.labels)})
        if self.params is not None and self.bflops is not None:
            out.update({"val/params": float(self.params), "val/bflops": float(self.bflops)})
        return out
