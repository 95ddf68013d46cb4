"""Evaluate a `Darknet` on validation batches: the numbers of the original tables.

One function for every place that scores a PyTorch model outside training (prune
reports, sweeps, the pipeline), so they all use the same NMS and metric code as
validation during training.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch

QUALITY_KEYS = ("precision", "recall", "f1", "mAP50", "mAP50_95")


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
    from yolo_slim.ops.boxes import targets_to_pixels
    from yolo_slim.metrics.detection import DetectionMetrics
    from yolo_slim.ops.nms import non_max_suppression

    metric = DetectionMetrics(num_classes, score_threshold=score_threshold)
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        for batch in batches:
            images = batch["images"].to(device)
            detections = non_max_suppression(model(images), conf_thres, iou_thres, max_det=max_det)
            hw = (images.shape[2], images.shape[3])
            metric.update([d.cpu() for d in detections], targets_to_pixels(batch["targets"], images.shape[0], hw))
    result: dict[str, Any] = {k: float(v) for k, v in metric.compute().items() if k in QUALITY_KEYS}
    if curves:
        recall, precision = metric.pr_curves()
        result["pr_recall"] = np.asarray(recall).tolist()
        result["pr_precision"] = np.asarray(precision).tolist()
    return result
