"""Evaluate an exported IR on a labelled image set with the training metric code.

Labels are read the darknet way (`images/` -> `labels/`, normalised cx cy w h), or
by a given reader (`DataSpec.read_labels`, for COCO json held in memory);
predictions come from `OpenVINODetector` in original image pixels; both go to
`yolo_slim.metrics.detection.DetectionMetrics`, so the deployed model's P, R and
mAP compare directly with the PyTorch model's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from yolo_slim.data.formats import label_path_for
from yolo_slim.data.labels import read_labels
from yolo_slim.errors import DataError
from yolo_slim.metrics.detection import DetectionMetrics


LabelReader = Callable[[Path], tuple[np.ndarray, list]]


def read_targets(image_path: Path, num_classes: int, hw: tuple[int, int], read: LabelReader | None = None) -> np.ndarray:
    """The labels of one image as `[M, 5]`: class, x1, y1, x2, y2 in pixels.

    `read` returns `(labels [M, 5] normalised cls cx cy w h, issues)`; default: the
    image's label file."""
    labels, _ = read(image_path) if read is not None else read_labels(label_path_for(image_path), num_classes)
    h, w = hw
    cx, cy, bw, bh = labels[:, 1] * w, labels[:, 2] * h, labels[:, 3] * w, labels[:, 4] * h
    return np.stack([labels[:, 0], cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1).astype(np.float32)


def detector_batches(detector, images: Sequence[Path], num_classes: int, limit: int | None = None,
                     read_labels: LabelReader | None = None) -> Iterator[tuple[list[torch.Tensor], list[torch.Tensor]]]:
    """Run `detector` over labelled images, `detector.batch` images at a time.

    Args:
        detector: an `OpenVINODetector` or a `TorchDetector` (`detect_batch`, `batch`).
        images: image paths; unreadable images are skipped.
        num_classes: number of classes.
        limit: only the first `limit` images.
        read_labels: the labels of an image (see `read_targets`); default its label file.

    Yields:
        ``(detections, targets)`` per batch: per image Tensor[K, 6] (x1, y1, x2, y2,
        score, class) and Tensor[M, 5] (class, x1, y1, x2, y2), original pixels.

    Raises:
        DataError: no image could be read.
    """
    chosen = list(images)[:limit] if limit else list(images)
    seen = 0
    batch: list[tuple[np.ndarray, np.ndarray]] = []
    for i, path in enumerate(chosen):
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is not None:
            batch.append((img, read_targets(Path(path), num_classes, img.shape[:2], read_labels)))
            seen += 1
        if batch and (len(batch) == detector.batch or i == len(chosen) - 1):
            preds = detector.detect_batch([image for image, _ in batch])
            yield [torch.from_numpy(p) for p in preds], [torch.from_numpy(t) for _, t in batch]
            batch = []
    if seen == 0:
        raise DataError(f"evaluate: none of {len(chosen)} images could be read")


def evaluate_detector(detector, images: Sequence[Path], num_classes: int, limit: int | None = None,
                      read_labels: LabelReader | None = None, score_threshold: float = 0.1) -> dict[str, float]:
    """P, R, F1, mAP@0.5 and mAP@0.5:0.95 of `detector` on `images`.

    Args:
        detector: an `OpenVINODetector` (use a low `conf_thres`, e.g. 0.001, for mAP).
        images: image paths with darknet label files.
        num_classes: number of classes.
        limit: evaluate only the first `limit` images.
        read_labels: the labels of an image (see `read_targets`); default its label file.
        score_threshold: the score P and R are read at.

    Raises:
        DataError: no image could be read.
    """
    metric = DetectionMetrics(num_classes, score_threshold=score_threshold)
    seen = 0
    for preds, targets in detector_batches(detector, images, num_classes, limit, read_labels):
        metric.update(preds, targets)
        seen += len(preds)
    out = metric.compute()
    return {k: float(v) for k, v in out.items() if torch.as_tensor(v).numel() == 1} | {"images": float(seen)}
