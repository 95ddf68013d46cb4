"""The anchor arithmetic: darknet's k-means and how well anchors cover a set of boxes.

Pure functions of box sizes (Float[N, 2] widths and heights in pixels); what the boxes
are and how anchors reach a cfg is `anchors.py`'s. The method and the two figures
(BPR, mean best IoU) are described there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from yolo_slim.errors import ConfigError, DataError

MAX_ITERATIONS = 1000
"""Darknet's iteration cap for one k-means run."""

MAX_FIT_BOXES = 100_000
"""At most this many boxes (a seeded sample) are clustered; the figures use all."""


def wh_iou(wh: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """IoU of boxes and anchors aligned at a corner (only their sizes count).

    Args:
        wh: ``[N, 2]`` box widths and heights (pixels, > 0).
        anchors: ``[K, 2]`` anchor widths and heights (pixels, > 0).

    Returns:
        ``[N, K]`` IoU in [0, 1].
    """
    inter = np.minimum(wh[:, None, 0], anchors[None, :, 0]) * np.minimum(wh[:, None, 1], anchors[None, :, 1])
    union = (wh[:, 0] * wh[:, 1])[:, None] + (anchors[:, 0] * anchors[:, 1])[None, :] - inter
    return inter / union


@dataclass(frozen=True)
class AnchorStats:
    """How well a set of anchors covers a set of boxes.

    Attributes:
        bpr: Best possible recall: share of boxes with some anchor within
            ``anchor_t`` in both width and height ratio.
        mean_iou: Mean over boxes of the IoU with the best anchor.
        anchors_per_box: Mean number of anchors within ``anchor_t`` of a box.
        boxes: Number of boxes measured.
        anchor_t: The ratio threshold used.
    """

    bpr: float
    mean_iou: float
    anchors_per_box: float
    boxes: int
    anchor_t: float

    def to_dict(self) -> dict[str, float]:
        return {"bpr": self.bpr, "mean_iou": self.mean_iou, "anchors_per_box": self.anchors_per_box,
                "boxes": self.boxes, "anchor_t": self.anchor_t}


def anchor_stats(wh: np.ndarray, anchors: np.ndarray, anchor_t: float = 4.0) -> AnchorStats:
    """BPR, mean best IoU and anchors per box (see the module docstring).

    Args:
        wh: ``[N, 2]`` box sizes in pixels, N >= 1.
        anchors: ``[K, 2]`` anchor sizes in pixels, K >= 1.
        anchor_t: Largest allowed width or height ratio, > 1.

    Raises:
        ConfigError: ``anchor_t <= 1``.
        DataError: No boxes.
    """
    if not anchor_t > 1.0:
        raise ConfigError(f"anchor_t must be > 1, got {anchor_t}")
    wh = np.asarray(wh, np.float64).reshape(-1, 2)
    anchors = np.asarray(anchors, np.float64).reshape(-1, 2)
    if not len(wh):
        raise DataError("no boxes to measure anchors on")
    ratio = wh[:, None, :] / anchors[None, :, :]
    worst = np.minimum(ratio, 1.0 / ratio).min(axis=2)  # [N, K]: the worse of the two side ratios
    within = worst > 1.0 / anchor_t
    return AnchorStats(
        bpr=float(within.any(axis=1).mean()),
        mean_iou=float(wh_iou(wh, anchors).max(axis=1).mean()),
        anchors_per_box=float(within.sum(axis=1).mean()),
        boxes=len(wh),
        anchor_t=float(anchor_t),
    )


def _plus_plus(wh: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ start under ``1 - IoU``: each next centre drawn with probability ~ d^2."""
    centres = [wh[int(rng.integers(len(wh)))]]
    nearest = 1.0 - wh_iou(wh, np.asarray(centres)).max(axis=1)
    for _ in range(1, k):
        weights = nearest**2
        centres.append(wh[int(rng.choice(len(wh), p=weights / weights.sum()))])
        nearest = np.minimum(nearest, 1.0 - wh_iou(wh, centres[-1][None]).ravel())
    return np.asarray(centres, np.float64)


def _kmeans_once(wh: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, float]:
    """Darknet's iteration from ``centres``; returns the centres and the mean best IoU."""
    assign = np.full(len(wh), -1)
    for _ in range(MAX_ITERATIONS):
        new = wh_iou(wh, centres).argmax(axis=1)
        if np.array_equal(new, assign):
            break
        assign = new
        for j in range(len(centres)):
            members = wh[assign == j]
            if len(members):
                centres[j] = members.mean(axis=0)
    return centres, float(wh_iou(wh, centres).max(axis=1).mean())


def kmeans_anchors(wh: np.ndarray, k: int, *, seed: int = 0, restarts: int = 10) -> np.ndarray:
    """Fits ``k`` anchors to box sizes with k-means under ``1 - IoU``.

    Args:
        wh: ``[N, 2]`` box widths and heights in pixels (> 0).
        k: Number of anchors, >= 1.
        seed: Seed of the starts (and of the sample when N > :data:`MAX_FIT_BOXES`).
        restarts: Number of k-means++ starts; the best mean IoU wins.

    Returns:
        ``float64 [k, 2]`` anchors (w, h) in pixels, unrounded, sorted by area.

    Raises:
        ConfigError: ``k`` or ``restarts`` < 1.
        DataError: Fewer boxes, or fewer distinct box sizes, than ``k``.
    """
    for name, value in (("k", k), ("restarts", restarts)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    wh = np.asarray(wh, np.float64).reshape(-1, 2)
    if len(wh) < k:
        raise DataError(f"{len(wh)} boxes for {k} anchors: need at least as many boxes as anchors (fit fewer anchors)")
    distinct = len(np.unique(np.round(wh, 3), axis=0))
    if distinct < k:
        raise DataError(
            f"only {distinct} distinct box size(s) for {k} anchors: k-means cannot place {k} different anchors "
            f"(fit {distinct} or fewer, or keep the cfg's anchors)"
        )
    rng = np.random.default_rng(seed)
    if len(wh) > MAX_FIT_BOXES:
        wh = wh[rng.choice(len(wh), MAX_FIT_BOXES, replace=False)]
    best, best_iou = _kmeans_once(wh, _plus_plus(wh, k, rng))
    for _ in range(restarts - 1):
        centres, iou = _kmeans_once(wh, _plus_plus(wh, k, rng))
        if iou > best_iou:
            best, best_iou = centres, iou
    return best[np.argsort(best[:, 0] * best[:, 1], kind="stable")]
