"""COCO-style matching and average precision, as pure functions.

Matching and AP follow the COCO evaluation protocol (greedy by score, each
ground truth matched once per IoU threshold, 101-point interpolation of the
monotone precision envelope; area range "all", no crowd boxes), so mAP agrees
with pycocotools. Precision and recall are read off the per-class curves at a
fixed confidence, as the darknet pruning tutorials report them. `detection.py`
accumulates their inputs (`DetectionMetrics`) and keeps the curves
(`DetectionCurves`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from yolo_slim.errors import ConfigError, DataError
from yolo_slim.ops.boxes import box_iou

#: COCO's IoU thresholds 0.50:0.05:0.95, exactly as pycocotools builds them.
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
#: COCO's 101 recall points at which precision is sampled.
RECALL_GRID = np.linspace(0.0, 1.0, 101)
#: Scores at which the precision, recall and F1 curves are sampled (step 0.001).
SCORE_GRID = np.linspace(0.0, 1.0, 1001)


def iou_thresholds_array(iou_thresholds: Tensor | Sequence[float] | np.ndarray | None) -> np.ndarray:
    """Float64[T] IoU thresholds, each in (0, 1]; None gives `COCO_IOU_THRESHOLDS`.

    Raises:
        ConfigError: an empty list or a value outside (0, 1].
    """
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
    thr = iou_thresholds_array(iou_thresholds)
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
