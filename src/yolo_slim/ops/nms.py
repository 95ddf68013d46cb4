"""Non-maximum suppression for decoded YOLO outputs.

One implementation in NumPy and OpenCV serves the torch model and the OpenVINO
runtime: candidate filtering (objectness, class scores, box sizes) is vectorised
NumPy, the suppression itself is OpenCV's ``cv2.dnn.NMSBoxes`` /
``cv2.dnn.NMSBoxesBatched`` (class-aware). ``non_max_suppression`` drops rows below
the objectness threshold on the tensor's own device first, so only candidates
travel to the host. No torch op runs on the deploy path (``nms_numpy``): torch's
intra-op thread pool would contend with the inference engine's threads.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from yolo_slim.errors import YoloSlimError

#: Most candidates handed to OpenCV per image (highest scores first).
MAX_CANDIDATES = 30000
_EMPTY = np.zeros((0, 6), dtype=np.float32)


def _check_thresholds(conf_thres: float, iou_thres: float, max_det: int) -> None:
    if not 0.0 <= conf_thres <= 1.0:
        raise YoloSlimError(f"non_max_suppression: conf_thres must be in [0, 1], got {conf_thres}")
    if not 0.0 <= iou_thres <= 1.0:
        raise YoloSlimError(f"non_max_suppression: iou_thres must be in [0, 1], got {iou_thres}")
    if max_det < 1:
        raise YoloSlimError(f"non_max_suppression: max_det must be >= 1, got {max_det}")


def _candidates(pred: np.ndarray, conf_thres: float, multi_label: bool, max_wh: float) -> np.ndarray:
    """Filter one image's raw rows into scored candidates.

    Args:
        pred: np.ndarray[N, 5 + C] float32 of (cx, cy, w, h, objectness, class probs).

    Returns:
        np.ndarray[K, 6] float32 of (x1, y1, x2, y2, score, class), unsorted.
    """
    pred = pred[pred[:, 4] > conf_thres]  # the cheap test first: most rows go here
    wh = pred[:, 2:4]
    ok = (wh > 0).all(1) & (wh <= max_wh).all(1) & np.isfinite(pred[:, :5]).all(1)
    pred = pred[ok]
    half = pred[:, 2:4] / 2
    boxes = np.concatenate((pred[:, :2] - half, pred[:, :2] + half), axis=1)
    obj = pred[:, 4:5]
    scores = obj * pred[:, 5:] if pred.shape[1] > 5 else obj
    if multi_label:
        rows, cls = np.nonzero(scores > conf_thres)
        score = scores[rows, cls]
    else:
        cls = scores.argmax(1)
        score = scores[np.arange(len(scores)), cls]
        rows = np.nonzero(score > conf_thres)[0]
        score, cls = score[rows], cls[rows]
    return np.concatenate((boxes[rows], score[:, None], cls[:, None].astype(np.float32)), axis=1).astype(np.float32, copy=False)


def _suppress(cand: np.ndarray, iou_thres: float, max_det: int, agnostic: bool) -> np.ndarray:
    """Run OpenCV NMS on candidates and return the kept rows by score, desc.

    Args:
        cand: np.ndarray[K, 6], as returned by ``_candidates``.

    Returns:
        np.ndarray[<=max_det, 6] float32.
    """
    if cand.shape[0] > MAX_CANDIDATES:
        cand = cand[np.argsort(-cand[:, 4], kind="stable")[:MAX_CANDIDATES]]
    if cand.shape[0] == 0:
        return _EMPTY.copy()
    xyxy = cand[:, :4].astype(np.float64)
    # NMSBoxesBatched separates classes by shifting boxes class_id * (max coord + 1),
    # which lets classes overlap when coordinates are negative (boxes past the
    # top-left edge). A common translation keeps IoU and makes all coordinates >= 0.
    xyxy = xyxy - min(float(xyxy[:, :2].min()), 0.0)
    xywh = np.concatenate((xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]), axis=1)
    scores = cand[:, 4].astype(np.float32)
    # Scores were thresholded already (all > conf_thres >= 0); OpenCV keeps score > 0.
    if agnostic:
        keep = cv2.dnn.NMSBoxes(xywh, scores, 0.0, float(iou_thres))
    else:
        keep = cv2.dnn.NMSBoxesBatched(xywh, scores, cand[:, 5].astype(np.int32), 0.0, float(iou_thres))
    kept = cand[np.asarray(keep, dtype=np.int64).reshape(-1)]
    return kept[np.argsort(-kept[:, 4], kind="stable")[:max_det]]


def non_max_suppression(
    pred: Tensor,
    conf_thres: float = 0.001,
    iou_thres: float = 0.6,
    multi_label: bool = False,
    max_det: int = 300,
    agnostic: bool = False,
    max_wh: float = 7680,
) -> list[Tensor]:
    """Filter and suppress decoded YOLO predictions, image by image.

    A row's score is objectness times class probability; rows with
    objectness or score <= ``conf_thres`` are dropped, as are boxes with a
    side <= 0 or > ``max_wh`` pixels or non-finite values. Boxes of different
    classes never suppress each other unless ``agnostic``.

    Args:
        pred: Tensor[B, N, 5 + C] of (cx, cy, w, h, objectness, C class
            probabilities); box values in input-image pixels, the rest in
            [0, 1]. With C == 0 the score is the objectness and class is 0.
        conf_thres: Score threshold.
        iou_thres: Boxes overlapping a better one with IoU > this are removed.
        multi_label: Emit one candidate per class whose score passes, instead
            of only the best class per row.
        max_det: Most detections kept per image.
        agnostic: Suppress across classes.
        max_wh: Largest accepted box side, pixels.

    Returns:
        B tensors [K, 6] of (x1, y1, x2, y2, score, class) in input pixels,
        float32, sorted by score descending, on ``pred``'s device.
    """
    if not isinstance(pred, Tensor) or pred.ndim != 3 or pred.shape[-1] < 5:
        shape = tuple(pred.shape) if hasattr(pred, "shape") else type(pred).__name__
        raise YoloSlimError(f"non_max_suppression: expected Tensor[B, N, 5 + C], got {shape}")
    _check_thresholds(conf_thres, iou_thres, max_det)
    device = pred.device
    out = []
    with torch.no_grad():
        for image_pred in pred.detach():
            rows = image_pred[image_pred[:, 4] > conf_thres].float().cpu().numpy()
            kept = _suppress(_candidates(rows, conf_thres, multi_label, max_wh), iou_thres, max_det, agnostic)
            out.append(torch.from_numpy(kept).to(device))
    return out


def nms_numpy(
    pred: np.ndarray,
    conf_thres: float = 0.001,
    iou_thres: float = 0.6,
    multi_label: bool = False,
    max_det: int = 300,
    agnostic: bool = False,
    max_wh: float = 7680,
) -> np.ndarray:
    """``non_max_suppression`` for one image's NumPy output (OpenVINO runtime).

    Args:
        pred: np.ndarray[N, 5 + C], rows as in ``non_max_suppression``.
        conf_thres: Score threshold.
        iou_thres: IoU above which a lower-scored box is removed.
        multi_label: One candidate per passing class instead of the best one.
        max_det: Most detections kept.
        agnostic: Suppress across classes.
        max_wh: Largest accepted box side, pixels.

    Returns:
        np.ndarray[K, 6] float32 of (x1, y1, x2, y2, score, class), sorted by
        score descending.
    """
    if not isinstance(pred, np.ndarray) or pred.ndim != 2 or pred.shape[-1] < 5:
        shape = pred.shape if hasattr(pred, "shape") else type(pred).__name__
        raise YoloSlimError(f"nms_numpy: expected np.ndarray[N, 5 + C], got {shape}")
    _check_thresholds(conf_thres, iou_thres, max_det)
    rows = np.asarray(pred, dtype=np.float32)
    return _suppress(_candidates(rows, conf_thres, multi_label, max_wh), iou_thres, max_det, agnostic)
