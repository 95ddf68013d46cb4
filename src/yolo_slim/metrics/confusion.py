"""The detection confusion matrix: which class each ground truth was detected as.

Rows are the true classes plus ``background`` (detections that match no ground
truth), columns the predicted classes plus ``background`` (ground truths no
detection found). Detections below the score threshold are dropped first.

Matching runs in two passes, both greedy by score with one match per ground truth:
first the class-aware matching of `yolo_slim.metrics.detection` at one IoU
threshold (so the diagonal counts exactly the true positives behind P and R at
that score), then, among what is left, the same matching ignoring classes (a
detection on an object of another class is a confusion, not background). The
matrix therefore has ``n_gt[c]`` in row ``c`` and, in column ``c``, every kept
detection of class ``c``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import Tensor

from yolo_slim.errors import ConfigError
from yolo_slim.metrics.detection import checked_detections, match_to_targets

__all__ = ["ConfusionMatrix", "confusion_matrix"]


class ConfusionMatrix:
    """Counts of (true class, predicted class) over images, background included.

    Args:
        num_classes: Number of classes C.
        score_threshold: Detections with a lower score are ignored.
        iou_threshold: IoU a detection needs with a ground truth to match it.
    """

    def __init__(self, num_classes: int, score_threshold: float = 0.1, iou_threshold: float = 0.5) -> None:
        if isinstance(num_classes, bool) or int(num_classes) != num_classes or num_classes < 1:
            raise ConfigError(f"ConfusionMatrix: num_classes must be a positive int, got {num_classes!r}")
        if not 0.0 <= score_threshold <= 1.0:
            raise ConfigError(f"ConfusionMatrix: score_threshold must be in [0, 1], got {score_threshold}")
        if not 0.0 < iou_threshold <= 1.0:
            raise ConfigError(f"ConfusionMatrix: iou_threshold must be in (0, 1], got {iou_threshold}")
        self.num_classes = int(num_classes)
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        #: np.ndarray[C + 1, C + 1] int64; index C is background.
        self.counts = np.zeros((self.num_classes + 1, self.num_classes + 1), dtype=np.int64)

    def update(self, preds: Sequence[Tensor], targets: Sequence[Tensor]) -> None:
        """Add one batch.

        Args:
            preds: Per image Tensor[K, 6] of (x1, y1, x2, y2, score, class), pixels.
            targets: Per image Tensor[M, 5] of (class, x1, y1, x2, y2), same frame.

        Raises:
            DataError: Not one target per prediction tensor, a wrong shape, or a
                class id out of range.
        """
        for pred, target in checked_detections(preds, targets, self.num_classes, "ConfusionMatrix.update"):
            self._add_image(pred.cpu().double(), target.cpu().double())

    def _add_image(self, pred: Tensor, target: Tensor) -> None:
        background = self.num_classes
        pred = pred[pred[:, 4] >= self.score_threshold]
        pred_cls = pred[:, 5].long().numpy()
        true_cls = target[:, 0].long().numpy()
        # pass 1, by class as the metric matches: the diagonal
        taken = match_to_targets(pred, target, [self.iou_threshold])[:, 0]
        first = taken >= 0
        np.add.at(self.counts, (true_cls[taken[first]], pred_cls[first]), 1)
        # pass 2, what is left ignoring the class: confusions, then background both ways
        free_pred = np.nonzero(~first)[0]
        free_gt = np.setdiff1d(np.arange(len(target)), taken[first])
        taken = match_to_targets(_one_class(pred[free_pred], 5), _one_class(target[free_gt], 0), [self.iou_threshold])[:, 0]
        second = taken >= 0
        np.add.at(self.counts, (true_cls[free_gt[taken[second]]], pred_cls[free_pred[second]]), 1)
        np.add.at(self.counts, (background, pred_cls[free_pred[~second]]), 1)
        missed = np.setdiff1d(free_gt, free_gt[taken[second]])
        np.add.at(self.counts, (true_cls[missed], background), 1)

    def normalised(self) -> np.ndarray:
        """np.ndarray[C + 1, C + 1] float: each row divided by its sum (rows without counts stay 0).

        A true class's row then reads as the fractions of its ground truths
        detected as each class or missed; the background row as the share of each
        class among the false detections.
        """
        totals = self.counts.sum(1, keepdims=True)
        return np.divide(self.counts, totals, out=np.zeros(self.counts.shape), where=totals > 0)

    def to_dict(self, names: Sequence[str]) -> dict[str, Any]:
        """A JSON-ready record: labels, thresholds, counts and the normalised rows."""
        if len(names) != self.num_classes:
            raise ConfigError(f"ConfusionMatrix.to_dict: {len(names)} names for {self.num_classes} classes")
        return {
            "labels": [*map(str, names), "background"],
            "rows": "true class",
            "columns": "predicted class",
            "score_threshold": self.score_threshold,
            "iou_threshold": self.iou_threshold,
            "counts": self.counts.tolist(),
            "normalised": np.round(self.normalised(), 6).tolist(),
        }


def _one_class(boxes: Tensor, column: int) -> Tensor:
    """A copy of ``boxes`` with every class id (in ``column``) set to 0, for class-agnostic matching."""
    out = boxes.clone()
    out[:, column] = 0
    return out


def confusion_matrix(
    preds: Sequence[Tensor],
    targets: Sequence[Tensor],
    num_classes: int,
    score_threshold: float = 0.1,
    iou_threshold: float = 0.5,
) -> np.ndarray:
    """The counts of `ConfusionMatrix` for one set of images.

    Args:
        preds: Per image Tensor[K, 6] of (x1, y1, x2, y2, score, class), pixels.
        targets: Per image Tensor[M, 5] of (class, x1, y1, x2, y2), same frame.
        num_classes: C.
        score_threshold: Detections with a lower score are ignored.
        iou_threshold: IoU needed for a match.

    Returns:
        np.ndarray[C + 1, C + 1] int64, rows true class, columns predicted class,
        index C background.
    """
    matrix = ConfusionMatrix(num_classes, score_threshold, iou_threshold)
    matrix.update(list(preds), list(targets))
    return matrix.counts

