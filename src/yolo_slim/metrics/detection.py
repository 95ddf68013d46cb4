"""Detection metrics: COCO-style matching and AP, plus P/R read at a score.

Matching and AP follow the COCO evaluation protocol (greedy by score, each
ground truth matched once per IoU threshold, 101-point interpolation of the
monotone precision envelope; area range "all", no crowd boxes), so mAP agrees
with pycocotools. Precision and recall are read off the per-class curves at a
fixed confidence, as the darknet pruning tutorials report them.

``match_predictions`` and ``ap_per_class`` are pure functions;
``DetectionMetrics`` is the torchmetrics wrapper that accumulates their inputs
across batches and processes. ``DetectionCurves`` holds the curves behind those
numbers (precision-recall at IoU 0.5; precision, recall and F1 against the score),
computed by the same code, so the plots of a run agree with its logged metrics.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

from yolo_slim.errors import ConfigError, DataError
from yolo_slim.ops.boxes import box_iou

#: COCO's IoU thresholds 0.50:0.05:0.95, exactly as pycocotools builds them.
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
#: COCO's 101 recall points at which precision is sampled.
RECALL_GRID = np.linspace(0.0, 1.0, 101)
#: Scores at which the precision, recall and F1 curves are sampled (step 0.001).
SCORE_GRID = np.linspace(0.0, 1.0, 1001)


def _thresholds(iou_thresholds: Tensor | Sequence[float] | np.ndarray | None) -> np.ndarray:
    if iou_thresholds is None:
        return COCO_IOU_THRESHOLDS
    thr = np.asarray(
        iou_thresholds.detach().cpu().numpy() if isinstance(iou_thresholds, Tensor) else iou_thresholds,
        dtype=np.float64,
    ).reshape(-1)
    if thr.size == 0 or not np.all((thr > 0) & (thr <= 1)):
        raise ConfigError(f"iou_thresholds must be a non-empty list of values in (0, 1], got {thr.tolist()}")
    return thr


def match_predictions(
    pred: Tensor,
    target: Tensor,
    iou_thresholds: Tensor | Sequence[float] | None = None,
) -> Tensor:
    """Mark each prediction of one image as true or false positive, COCO style.

    Predictions are visited by score, highest first; at each IoU threshold a
    prediction takes the unmatched ground truth of its class with the highest
    IoU, if that IoU >= the threshold. Each ground truth is matched at most
    once per threshold.

    Args:
        pred: Tensor[K, 6] of (x1, y1, x2, y2, score, class), pixels.
        target: Tensor[M, 5] of (class, x1, y1, x2, y2), same pixel frame.
        iou_thresholds: T thresholds; default COCO's 0.50:0.05:0.95.

    Returns:
        Tensor[K, T] bool on ``pred``'s device, row order as ``pred``.
    """
    matched = match_to_targets(pred, target, iou_thresholds)
    return torch.from_numpy(matched >= 0).to(pred.device)


def match_to_targets(
    pred: Tensor,
    target: Tensor,
    iou_thresholds: Tensor | Sequence[float] | None = None,
) -> np.ndarray:
    """The matching of ``match_predictions``, naming the ground truth each prediction took.

    Args:
        pred: Tensor[K, 6] of (x1, y1, x2, y2, score, class), pixels.
        target: Tensor[M, 5] of (class, x1, y1, x2, y2), same pixel frame.
        iou_thresholds: T thresholds; default COCO's 0.50:0.05:0.95.

    Returns:
        np.ndarray[K, T] int64: the row of ``target`` matched by each prediction
        at each threshold, -1 for a false positive; row order as ``pred``.
    """
    if pred.ndim != 2 or pred.shape[1] != 6:
        raise DataError(f"match_predictions: pred must be Tensor[K, 6], got {tuple(pred.shape)}")
    if target.ndim != 2 or target.shape[1] != 5:
        raise DataError(f"match_predictions: target must be Tensor[M, 5], got {tuple(target.shape)}")
    thr = _thresholds(iou_thresholds)
    k, m = pred.shape[0], target.shape[0]
    taken = np.full((k, thr.size), -1, dtype=np.int64)
    if k and m:
        p = pred.detach().cpu().double()
        t = target.detach().cpu().double()
        iou = box_iou(p[:, :4], t[:, 1:]).numpy()
        iou[p[:, 5].numpy()[:, None] != t[:, 0].numpy()[None, :]] = -1.0
        order = np.argsort(-p[:, 4].numpy(), kind="stable")
        matched = np.zeros((thr.size, m), dtype=bool)
        candidate_rows = order[(iou[order] >= thr.min()).any(1)]
        for row in candidate_rows:
            # [T, M]: IoU with every still-unmatched GT that clears the threshold.
            ok = (iou[row][None, :] >= thr[:, None]) & ~matched
            scored = np.where(ok, iou[row][None, :], -1.0)
            best = scored.argmax(1)
            hit = ok[np.arange(thr.size), best]
            matched[np.nonzero(hit)[0], best[hit]] = True
            taken[row] = np.where(hit, best, -1)
    return taken


def _interpolated_precision(tp_cum: np.ndarray, fp_cum: np.ndarray, n_gt: int) -> np.ndarray:
    """COCO's 101-point precision for one class.

    Args:
        tp_cum: np.ndarray[K, T] cumulative true positives by descending score.
        fp_cum: np.ndarray[K, T] cumulative false positives.
        n_gt: Number of ground truths of the class (> 0).

    Returns:
        np.ndarray[T, 101]: envelope precision at each recall in RECALL_GRID
        (0 where the recall is never reached).
    """
    n_thr = tp_cum.shape[1]
    out = np.zeros((n_thr, RECALL_GRID.size))
    if tp_cum.shape[0] == 0:
        return out
    recall = tp_cum / n_gt
    precision = tp_cum / np.maximum(tp_cum + fp_cum, np.finfo(np.float64).eps)
    # Monotone envelope: precision at recall r is the best precision at recall >= r.
    envelope = np.maximum.accumulate(precision[::-1], axis=0)[::-1]
    for t in range(n_thr):
        idx = np.searchsorted(recall[:, t], RECALL_GRID, side="left")
        valid = idx < recall.shape[0]
        out[t, valid] = envelope[idx[valid], t]
    return out


def _read_at_scores(conf_sorted: np.ndarray, curve: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Linear interpolation of a curve (by descending confidence) at scores.

    Args:
        conf_sorted: np.ndarray[K] confidences, descending.
        curve: np.ndarray[K] the curve's value after each detection.
        scores: np.ndarray[N] confidences to read at.

    Returns:
        np.ndarray[N]; 0 at a score no detection reaches: with no detections kept,
        recall is 0 and precision is reported as 0, not as the top detection's.
    """
    out = np.zeros(scores.shape, dtype=np.float64)
    if conf_sorted.size == 0:
        return out
    reached = scores <= conf_sorted[0]
    out[reached] = np.interp(-scores[reached], -conf_sorted, curve)
    return out


def _f1(p: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Elementwise 2PR / (P + R): 0 where P + R = 0, nan where P is nan."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(p + r > 0, 2 * p * r / (p + r), np.where(np.isnan(p), np.nan, 0.0))


def ap_per_class(
    tp: np.ndarray,
    conf: np.ndarray,
    pred_cls: np.ndarray,
    target_cls: np.ndarray,
    num_classes: int,
    score_threshold: float = 0.1,
) -> dict[str, Any]:
    """Per-class AP, and precision, recall and F1 at a score threshold.

    AP is COCO's: the mean over 101 recall points of the monotone precision
    envelope. P and R are the precision and recall curves (IoU column 0)
    linearly interpolated at confidence ``score_threshold``; a class with no
    detection at or above it gets P = R = 0. Column 0 of ``tp`` is taken to be
    IoU 0.5 for the ``ap50`` names.

    Args:
        tp: np.ndarray[K, T] bool, from ``match_predictions`` over all images.
        conf: np.ndarray[K] scores in [0, 1].
        pred_cls: np.ndarray[K] integer class of each prediction.
        target_cls: np.ndarray[M] integer class of every ground truth.
        num_classes: C, number of classes.
        score_threshold: Confidence at which P and R are read.

    Returns:
        A dict of NumPy arrays; per-class entries are nan for classes without
        ground truth, means are over classes with ground truth (0 if none):
        ``ap`` [C, T], ``ap50`` [C], ``ap50_95`` [C], ``precision`` [C],
        ``recall`` [C], ``f1`` [C], ``n_gt`` [C] int, ``recall_grid`` [101],
        ``pr_precision`` [C, 101] (envelope precision at IoU column 0 on
        ``recall_grid``, for plots), ``score_grid`` [N] (``SCORE_GRID``),
        ``p_curve``, ``r_curve``, ``f1_curve`` [C, N] (P, R and F1 at IoU
        column 0 read at each score of ``score_grid`` exactly as P and R are read
        at ``score_threshold``), and floats ``mp``, ``mr``, ``mf1``, ``map50``,
        ``map50_95``.
    """
    tp = np.asarray(tp, dtype=bool)
    if tp.ndim != 2:
        raise DataError(f"ap_per_class: tp must be [K, T], got shape {tp.shape}")
    conf = np.asarray(conf, dtype=np.float64).reshape(-1)
    pred_cls = np.asarray(pred_cls).reshape(-1).astype(np.int64)
    target_cls = np.asarray(target_cls).reshape(-1).astype(np.int64)
    if not (conf.size == pred_cls.size == tp.shape[0]):
        raise DataError(
            f"ap_per_class: tp, conf and pred_cls disagree in length ({tp.shape[0]}, {conf.size}, {pred_cls.size})"
        )
    n_thr = tp.shape[1]
    order = np.argsort(-conf, kind="stable")
    tp, conf, pred_cls = tp[order], conf[order], pred_cls[order]
    n_gt = np.bincount(target_cls[(target_cls >= 0) & (target_cls < num_classes)], minlength=num_classes)

    ap = np.full((num_classes, n_thr), np.nan)
    pr_precision = np.full((num_classes, RECALL_GRID.size), np.nan)
    p = np.full(num_classes, np.nan)
    r = np.full(num_classes, np.nan)
    p_curve = np.full((num_classes, SCORE_GRID.size), np.nan)
    r_curve = np.full((num_classes, SCORE_GRID.size), np.nan)
    at_threshold = np.array([float(score_threshold)])
    for c in np.nonzero(n_gt)[0]:
        mask = pred_cls == c
        tp_cum = np.cumsum(tp[mask], axis=0, dtype=np.float64)
        fp_cum = np.cumsum(~tp[mask], axis=0, dtype=np.float64)
        q = _interpolated_precision(tp_cum, fp_cum, int(n_gt[c]))
        ap[c] = q.mean(1)
        pr_precision[c] = q[0]
        recall0 = tp_cum[:, 0] / n_gt[c]
        precision0 = tp_cum[:, 0] / (tp_cum[:, 0] + fp_cum[:, 0])
        p[c] = _read_at_scores(conf[mask], precision0, at_threshold)[0]
        r[c] = _read_at_scores(conf[mask], recall0, at_threshold)[0]
        p_curve[c] = _read_at_scores(conf[mask], precision0, SCORE_GRID)
        r_curve[c] = _read_at_scores(conf[mask], recall0, SCORE_GRID)
    f1 = _f1(p, r)

    present = n_gt > 0

    def mean(x: np.ndarray) -> float:
        return float(x[present].mean()) if present.any() else 0.0

    ap50 = ap[:, 0]
    ap50_95 = ap.mean(1)
    return {
        "ap": ap,
        "ap50": ap50,
        "ap50_95": ap50_95,
        "precision": p,
        "recall": r,
        "f1": f1,
        "n_gt": n_gt,
        "recall_grid": RECALL_GRID.copy(),
        "pr_precision": pr_precision,
        "score_grid": SCORE_GRID.copy(),
        "p_curve": p_curve,
        "r_curve": r_curve,
        "f1_curve": _f1(p_curve, r_curve),
        "mp": mean(p),
        "mr": mean(r),
        "mf1": mean(f1),
        "map50": mean(ap50),
        "map50_95": mean(ap50_95),
    }


def checked_detections(
    preds: Sequence[Tensor], targets: Sequence[Tensor], num_classes: int, owner: str
) -> Iterator[tuple[Tensor, Tensor]]:
    """Check one batch of per-image detections and ground truths, image by image.

    Args:
        preds: Per image Tensor[K, 6] of (x1, y1, x2, y2, score, class).
        targets: Per image Tensor[M, 5] of (class, x1, y1, x2, y2).
        num_classes: C; class ids must be integers in 0..C-1.
        owner: Who checks, for the messages (``"DetectionMetrics.update"``).

    Yields:
        ``(pred, target)`` per image, detached, empty ones shaped [0, 6] / [0, 5].

    Raises:
        DataError: Not one target per prediction tensor, a wrong shape, or a class
            id out of range.
    """
    if len(preds) != len(targets):
        raise DataError(f"{owner}: {len(preds)} prediction tensors for {len(targets)} target tensors")
    for i, (pred, target) in enumerate(zip(preds, targets)):
        pred = pred.detach().reshape(0, 6) if pred.numel() == 0 else pred.detach()
        target = target.detach().reshape(0, 5) if target.numel() == 0 else target.detach()
        if pred.ndim != 2 or pred.shape[1] != 6 or target.ndim != 2 or target.shape[1] != 5:
            raise DataError(
                f"{owner}: image {i} needs pred Tensor[K, 6] and target Tensor[M, 5], "
                f"got {tuple(pred.shape)} and {tuple(target.shape)}"
            )
        for what, cls in (("pred", pred[:, 5]), ("target", target[:, 0])):
            if cls.numel() and (cls.min() < 0 or cls.max() >= num_classes or (cls != cls.round()).any()):
                found = sorted({int(c) if float(c).is_integer() else c for c in cls.tolist()})
                raise DataError(f"{owner}: {what} of image {i} has class ids outside 0..{num_classes - 1}: {found[:10]}")
        yield pred, target


@dataclass(frozen=True)
class DetectionCurves:
    """The curves behind P, R, F1 and mAP@0.5, from the same matches (IoU 0.5).

    Per-class rows are nan for classes without ground truth; the means are over
    the classes with ground truth, as the metrics are.

    Attributes:
        recall_grid: np.ndarray[101], COCO's recall points in [0, 1].
        pr_precision: np.ndarray[C, 101], the monotone precision envelope at
            each recall; its row mean is the class's AP@0.5.
        score_grid: np.ndarray[N], scores in [0, 1] (``SCORE_GRID``).
        precision: np.ndarray[C, N], precision when keeping detections with a
            score >= each grid score.
        recall: np.ndarray[C, N], recall likewise.
        f1: np.ndarray[C, N], their harmonic mean.
        n_gt: np.ndarray[C] int, ground truths per class.
        score_threshold: The score at which the logged P, R and F1 are read.
    """

    recall_grid: np.ndarray
    pr_precision: np.ndarray
    score_grid: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    n_gt: np.ndarray
    score_threshold: float

    @classmethod
    def from_stats(cls, stats: dict[str, Any], score_threshold: float) -> DetectionCurves:
        """The curves of an ``ap_per_class`` result."""
        return cls(
            recall_grid=stats["recall_grid"],
            pr_precision=stats["pr_precision"],
            score_grid=stats["score_grid"],
            precision=stats["p_curve"],
            recall=stats["r_curve"],
            f1=stats["f1_curve"],
            n_gt=stats["n_gt"],
            score_threshold=float(score_threshold),
        )

    @property
    def present(self) -> np.ndarray:
        """np.ndarray[C] bool: classes with ground truth."""
        return self.n_gt > 0

    def _mean(self, rows: np.ndarray) -> np.ndarray:
        if not self.present.any():
            return np.zeros(rows.shape[1])
        return rows[self.present].mean(0)

    @property
    def ap50(self) -> np.ndarray:
        """np.ndarray[C]: AP@0.5 per class (nan without ground truth)."""
        return self.pr_precision.mean(1)

    @property
    def map50(self) -> float:
        """mAP@0.5: the mean AP@0.5 over classes with ground truth (0 if none)."""
        return float(self._mean(self.pr_precision).mean())

    def mean_pr_precision(self) -> np.ndarray:
        """np.ndarray[101]: the all-classes precision-recall curve (its mean is mAP@0.5)."""
        return self._mean(self.pr_precision)

    def mean_f1(self) -> np.ndarray:
        """np.ndarray[N]: the all-classes F1 curve, the mean of the per-class F1 curves."""
        return self._mean(self.f1)

    def best_f1(self, class_index: int | None = None) -> tuple[float, float]:
        """The highest F1 on the score grid and the score where it is reached.

        Args:
            class_index: A class, or None for the all-classes curve.

        Returns:
            ``(f1, score)``; the lowest such score on ties, (nan, nan) for a class
            without ground truth.
        """
        curve = self.mean_f1() if class_index is None else self.f1[class_index]
        if np.all(np.isnan(curve)):
            return float("nan"), float("nan")
        best = int(np.nanargmax(curve))
        return float(curve[best]), float(self.score_grid[best])


class DetectionMetrics(Metric):
    """P, R, F1 at a score threshold, and COCO mAP@0.5 and mAP@0.5:0.95.

    Per-prediction match flags and scores are stored as concatenated list
    states, so DDP synchronisation gathers them exactly; ``compute`` runs
    ``ap_per_class`` on everything seen since the last reset.

    Args:
        num_classes: Number of classes C.
        score_threshold: Confidence at which P, R and F1 are read.
        iou_thresholds: T IoU thresholds, the first must be 0.5; default
            COCO's 0.50:0.05:0.95.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    tp: list[Tensor]
    conf: list[Tensor]
    pred_cls: list[Tensor]
    target_cls: list[Tensor]

    def __init__(
        self,
        num_classes: int,
        score_threshold: float = 0.1,
        iou_thresholds: Tensor | Sequence[float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if int(num_classes) != num_classes or num_classes < 1:
            raise ConfigError(f"DetectionMetrics: num_classes must be a positive int, got {num_classes!r}")
        if not 0.0 <= score_threshold <= 1.0:
            raise ConfigError(f"DetectionMetrics: score_threshold must be in [0, 1], got {score_threshold}")
        thr = _thresholds(iou_thresholds)
        if not np.isclose(thr[0], 0.5):
            raise ConfigError(f"DetectionMetrics: the first IoU threshold must be 0.5, got {thr.tolist()}")
        self.num_classes = int(num_classes)
        self.score_threshold = float(score_threshold)
        self.iou_thresholds = thr
        self._curves: tuple[Tensor, Tensor] | None = None
        self.add_state("tp", default=[], dist_reduce_fx="cat")
        self.add_state("conf", default=[], dist_reduce_fx="cat")
        self.add_state("pred_cls", default=[], dist_reduce_fx="cat")
        self.add_state("target_cls", default=[], dist_reduce_fx="cat")

    def update(self, preds: list[Tensor], targets: list[Tensor]) -> None:
        """Add one batch.

        Args:
            preds: Per image Tensor[K, 6] of (x1, y1, x2, y2, score, class),
                e.g. ``non_max_suppression`` output, pixels.
            targets: Per image Tensor[M, 5] of (class, x1, y1, x2, y2) in the
                same pixel frame.
        """
        tps, confs, pcls, tcls = [], [], [], []
        for pred, target in checked_detections(preds, targets, self.num_classes, "DetectionMetrics.update"):
            tps.append(match_predictions(pred, target, self.iou_thresholds).to(self.device, torch.uint8))
            confs.append(pred[:, 4].to(self.device, torch.float32))
            pcls.append(pred[:, 5].to(self.device, torch.int64))
            tcls.append(target[:, 0].to(self.device, torch.int64))
        n_thr = self.iou_thresholds.size
        # One entry per state per call keeps every rank's list non-empty for DDP gathering.
        self.tp.append(torch.cat(tps) if tps else torch.zeros(0, n_thr, dtype=torch.uint8, device=self.device))
        self.conf.append(torch.cat(confs) if confs else torch.zeros(0, device=self.device))
        self.pred_cls.append(torch.cat(pcls) if pcls else torch.zeros(0, dtype=torch.int64, device=self.device))
        self.target_cls.append(torch.cat(tcls) if tcls else torch.zeros(0, dtype=torch.int64, device=self.device))

    @staticmethod
    def _gathered(state: list[Tensor] | Tensor, empty_shape: tuple[int, ...]) -> np.ndarray:
        if isinstance(state, Tensor):
            return state.cpu().numpy()
        if not state:
            return np.zeros(empty_shape)
        return torch.cat([s.reshape(-1, *empty_shape[1:]) for s in state]).cpu().numpy()

    def _stats(self) -> dict[str, Any]:
        n_thr = self.iou_thresholds.size
        return ap_per_class(
            self._gathered(self.tp, (0, n_thr)).reshape(-1, n_thr).astype(bool),
            self._gathered(self.conf, (0,)),
            self._gathered(self.pred_cls, (0,)),
            self._gathered(self.target_cls, (0,)),
            self.num_classes,
            self.score_threshold,
        )

    def compute(self) -> dict[str, Tensor]:
        """Metrics over everything seen since the last reset.

        Returns:
            Scalar tensors ``precision``, ``recall``, ``f1``, ``mAP50``,
            ``mAP50_95`` (means over classes with ground truth, 0 if none) and
            ``ap50_per_class`` Tensor[C] (nan for classes without ground truth).
        """
        stats = self._stats()
        self._curves = (
            torch.from_numpy(stats["recall_grid"]).float(),
            torch.from_numpy(stats["pr_precision"]).float(),
        )
        return {
            "precision": torch.tensor(stats["mp"], dtype=torch.float32),
            "recall": torch.tensor(stats["mr"], dtype=torch.float32),
            "f1": torch.tensor(stats["mf1"], dtype=torch.float32),
            "mAP50": torch.tensor(stats["map50"], dtype=torch.float32),
            "mAP50_95": torch.tensor(stats["map50_95"], dtype=torch.float32),
            "ap50_per_class": torch.from_numpy(stats["ap50"]).float(),
        }

    def curves(self) -> DetectionCurves:
        """Every curve of everything this process has seen since the last reset, for plots.

        Unlike ``compute`` it does not gather other DDP ranks' states: call it
        where one process evaluated the whole set.
        """
        return DetectionCurves.from_stats(self._stats(), self.score_threshold)

    def pr_curves(self) -> tuple[Tensor, Tensor]:
        """Precision-recall curves at IoU 0.5, for plots.

        Returns:
            Recall grid Tensor[101] in [0, 1] and per-class precision
            Tensor[C, 101] (monotone envelope; nan rows for classes without
            ground truth), from the same data as ``compute``.
        """
        self.compute()
        if self._curves is None:  # compute() answered from its cache of an older call
            stats = self._stats()
            self._curves = (
                torch.from_numpy(stats["recall_grid"]).float(),
                torch.from_numpy(stats["pr_precision"]).float(),
            )
        return self._curves

    def per_class(self) -> dict[str, np.ndarray]:
        """Per-class figures of everything this process has seen since the last reset.

        Unlike ``compute`` it does not gather other DDP ranks' states: call it where one
        process evaluated the whole set (`val`).

        Returns:
            np.ndarray[C] each: ``precision``, ``recall``, ``f1`` (at the score
            threshold), ``ap50``, ``ap50_95`` (nan for classes without ground truth)
            and ``n_gt`` (ground truths per class, int).
        """
        stats = self._stats()
        return {k: stats[k] for k in ("precision", "recall", "f1", "ap50", "ap50_95", "n_gt")}
