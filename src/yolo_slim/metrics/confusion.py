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

from yolo_slim.errors import ConfigError, DataError
from yolo_slim.metrics.detection import match_to_targets

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

    def _check(self, pred: Tensor, target: Tensor, image: int) -> None:
        if pred.ndim != 2 or pred.shape[1] != 6 or target.ndim != 2 or target.shape[1] != 5:
            raise DataError(
                f"ConfusionMatrix.update: image {image} needs pred Tensor[K, 6] and target Tensor[M, 5], "
                f"got {tuple(pred.shape)} and {tuple(target.shape)}"
            )
        for what, cls in (("pred", pred[:, 5]), ("target", target[:, 0])):
            if cls.numel() and (cls.min() < 0 or cls.max() >= self.num_classes or (cls != cls.round()).any()):
                raise DataError(
                    f"ConfusionMatrix.update: {what} of image {image} has class ids outside "
                    f"0..{self.num_classes - 1}: {sorted({int(c) if float(c).is_integer() else c for c in cls.tolist()})[:10]}"
                )

    def update(self, preds: Sequence[Tensor], targets: Sequence[Tensor]) -> None:
        """Add one batch.

        Args:
            preds: Per image Tensor[K, 6] of (x1, y1, x2, y2, score, class), pixels.
            targets: Per image Tensor[M, 5] of (class, x1, y1, x2, y2), same frame.
        """
        if len(preds) != len(targets):
            raise DataError(f"ConfusionMatrix.update: {len(preds)} prediction tensors for {len(targets)} target tensors")
        background = self.num_classes
        for i, (pred, target) in enumerate(zip(preds, targets)):
            pred = pred.detach().cpu().double()
            target = target.detach().cpu().double()
            pred = pred.reshape(0, 6) if pred.numel() == 0 else pred
            target = target.reshape(0, 5) if target.numel() == 0 else target
            self._check(pred, target, i)
            pred = pred[pred[:, 4] >= self.score_threshold]
            pred_cls = pred[:, 5].long().numpy()
            true_cls = target[:, 0].long().numpy()
            taken = match_to_targets(pred, target, [self.iou_threshold])[:, 0]
            np.add.at(self.counts, (true_cls[taken[taken >= 0]], pred_cls[taken >= 0]), 1)
            free_pred = np.nonzero(taken < 0)[0]
            free_gt = np.setdiff1d(np.arange(len(target)), taken[taken >= 0])
            agnostic_pred, agnostic_gt = pred[free_pred].clone(), target[free_gt].clone()
            agnostic_pred[:, 5] = 0
            agnostic_gt[:, 0] = 0
            second = match_to_targets(agnostic_pred, agnostic_gt, [self.iou_threshold])[:, 0]
            hit = second >= 0
            np.add.at(self.counts, (true_cls[free_gt[second[hit]]], pred_cls[free_pred[hit]]), 1)
            np.add.at(self.counts, (background, pred_cls[free_pred[~hit]]), 1)
            missed = np.setdiff1d(free_gt, free_gt[second[hit]])
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

