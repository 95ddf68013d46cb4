"""Evaluate a `Darknet` on validation batches: the numbers of the original tables.

One function for every place that scores a PyTorch model outside training (prune
reports, sweeps, the pipeline, the plots at the end of a run), so they all use the
same NMS and metric code as validation during training.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

QUALITY_KEYS = ("precision", "recall", "f1", "mAP50", "mAP50_95")


def predict_batches(
    model,
    batches: Iterable[Mapping[str, Any]],
    conf_thres: float = 0.001,
    iou_thres: float = 0.6,
    max_det: int = 300,
) -> Iterator[tuple[Mapping[str, Any], list[Tensor], list[Tensor]]]:
    """Run `model` (put in eval mode here) with NMS over validation batches.

    Args:
        model: a `Darknet`.
        batches: batches as `collate_detection` makes them.
        conf_thres, iou_thres, max_det: NMS settings (conf 0.001 for mAP).

    Yields:
        ``(batch, detections, targets)`` per batch: per image Tensor[K, 6] of
        (x1, y1, x2, y2, score, class) and Tensor[M, 5] of (class, x1, y1, x2, y2),
        both on the CPU in network-input pixels.
    """
    from yolo_slim.ops.boxes import targets_to_pixels
    from yolo_slim.ops.nms import non_max_suppression

    device = next(model.parameters()).device
    model.eval()
    for batch in batches:
        images = batch["images"].to(device)
        with torch.no_grad():
            detections = non_max_suppression(model(images), conf_thres, iou_thres, max_det=max_det)
        hw = (images.shape[2], images.shape[3])
        yield batch, [d.cpu() for d in detections], targets_to_pixels(batch["targets"], images.shape[0], hw)


def evaluate_model(
    model,
    batches: Iterable[Mapping[str, Any]],
    num_classes: int,
    score_threshold: float = 0.1,
    conf_thres: float = 0.001,
    iou_thres: float = 0.6,
    max_det: int = 300,
    curves: bool = False,
) -> dict[str, Any]:
    """P, R (at `score_threshold`), F1, mAP@0.5 and mAP@0.5:0.95 of `model`.

    Args:
        model: a `Darknet` (put in eval mode here).
        batches: validation batches as `collate_detection` makes them (a DataLoader
            or a cached list of its batches).
        num_classes: classes of the dataset.
        conf_thres, iou_thres, max_det: NMS settings (conf 0.001 for mAP).
        curves: also return `pr_recall` (list[101]) and `pr_precision` (per class
            list[101]) at IoU 0.5.

    Returns:
        Floats under `QUALITY_KEYS`, plus the curves when asked.
    """
    from yolo_slim.metrics.detection import DetectionMetrics

    metric = DetectionMetrics(num_classes, score_threshold=score_threshold)
    for _, detections, targets in predict_batches(model, batches, conf_thres, iou_thres, max_det):
        metric.update(detections, targets)
    result: dict[str, Any] = {k: float(v) for k, v in metric.compute().items() if k in QUALITY_KEYS}
    if curves:
        recall, precision = metric.pr_curves()
        result["pr_recall"] = np.asarray(recall).tolist()
        result["pr_precision"] = np.asarray(precision).tolist()
    return result
