"""Anchors fitted to a dataset's boxes, and how well a set of anchors covers them.

The boxes are the training labels' widths and heights in pixels as training sees
them: each image letterboxed to ``img_size`` (longest side scaled to it, aspect
kept), so a box of ``w x h`` (normalised) in a ``W0 x H0`` image measures
``w * W0 * s x h * H0 * s`` pixels with ``s = img_size / max(W0, H0)``.

Fitting is k-means with darknet's distance (``detector calc_anchors``, AlexeyAB's
src/detector.c and src/matrix.c): ``d = 1 - IoU`` of two boxes aligned at a corner,
assignment to the nearest centre (the first on ties), each centre replaced by the
mean width and height of its boxes (an empty cluster keeps its centre), until no
assignment changes or 1000 iterations. Darknet starts once from randomly chosen
boxes; here the start is k-means++ under the same distance, repeated ``restarts``
times from one seeded generator, and the run with the highest mean best IoU wins,
so a result does not hinge on one lucky start and the same seed gives the same
anchors. The anchors are rounded to whole pixels (as darknet prints them for
inputs above 32 px) and sorted by area.

Two figures say how well anchors fit (for the fitted anchors and for a cfg's own):

* BPR, the best possible recall (Ultralytics' autoanchor check): the share of boxes
  for which some anchor has both width and height ratios within ``anchor_t``
  (4, the training loss's assignment rule ``max(r, 1/r) < anchor_t``): the boxes the
  loss can assign to an anchor at all;
* the mean best IoU (darknet's "avg IoU"): per box, the IoU with its best anchor.

Boxes under ``min_box`` pixels (2) on either side are left out of the fit (they
carry no shape) but counted in the figures. Fewer usable boxes, or fewer distinct
box sizes, than anchors is an error: there is nothing to fit so many anchors to.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from yolo_slim.darknet.anchors import anchor_count, used_anchors, with_anchors
from yolo_slim.darknet.cfg import DarknetCfg, load_cfg
from yolo_slim.data.formats import DataSpec
from yolo_slim.data.labels import DataReport, LabelIssue
from yolo_slim.errors import CfgError, ConfigError, DataError

__all__ = [
    "AnchorFit",
    "AnchorStats",
    "anchor_stats",
    "fit_anchors",
    "fit_cfg_anchors",
    "kmeans_anchors",
    "letterboxed_box_sizes",
    "wh_iou",
]

_log = logging.getLogger(__name__)

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


def _image_size(spec: DataSpec, image: Path) -> tuple[int, int] | None:
    """``(width, height)`` as OpenCV decodes the image (EXIF orientation applied); None if unreadable."""
    known = spec.image_size(image)
    if known is not None:
        return known
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(image) as im:
            width, height = im.size
            orientation = im.getexif().get(274, 1)
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def letterboxed_box_sizes(spec: DataSpec, img_size: int, split: str = "train") -> tuple[np.ndarray, DataReport]:
    """The widths and heights of a split's boxes, letterboxed to ``img_size``.

    Args:
        spec: The dataset.
        img_size: Training input side in pixels.
        split: ``"train"`` or ``"valid"``.

    Returns:
        ``(wh, report)``: ``float64 [N, 2]`` pixels, and the data check of the
        split (unreadable images are skipped, bad label lines dropped, as in
        training).

    Raises:
        DataError: The split has no sources or no images.
    """
    if isinstance(img_size, bool) or not isinstance(img_size, int) or img_size < 1:
        raise ConfigError(f"img_size must be a positive integer, got {img_size!r}")
    images = spec.images("train" if split == "train" else "valid")
    report = DataReport(name=split, images=len(images))
    sizes: list[np.ndarray] = []
    for image in images:
        size = _image_size(spec, image)
        if size is None:
            report.add(LabelIssue("image_unreadable", Path(image), None, "image missing, unreadable or corrupt"))
            continue
        labels, issues = spec.read_labels(image)
        report.extend(issues)
        report.images_kept += 1
        report.boxes += len(labels)
        width, height = size
        scale = img_size / max(width, height)
        sizes.append(labels[:, 3:5].astype(np.float64) * np.array([width * scale, height * scale]))
    wh = np.concatenate(sizes) if sizes else np.zeros((0, 2))
    return wh, report


@dataclass(frozen=True)
class AnchorFit:
    """Anchors fitted to a dataset, with the figures for them and for a cfg's own.

    Attributes:
        anchors: ``K`` fitted (w, h) in pixels at ``img_size``, sorted by area.
        fitted: Figures of the fitted anchors over all boxes.
        current: Figures of the anchors a cfg's heads use, when a cfg was given.
        current_anchors: Those anchors.
        img_size: The training size the boxes were measured at.
        images: Images read.
        boxes: Boxes measured.
        small_boxes: Boxes under ``min_box`` px, left out of the fit.
        seed: The seed of the fit.
        source: The dataset's file or folder, for messages.
    """

    anchors: tuple[tuple[float, float], ...]
    fitted: AnchorStats
    current: AnchorStats | None
    current_anchors: tuple[tuple[float, float], ...]
    img_size: int
    images: int
    boxes: int
    small_boxes: int
    seed: int
    source: str

    def cfg_text(self) -> str:
        """The anchors as a cfg's ``anchors=`` value (``w,h, w,h, ...``)."""
        return ", ".join(f"{w:g},{h:g}" for w, h in self.anchors)

    def format(self) -> str:
        """A short human-readable report (several lines)."""

        def line(name: str, stats: AnchorStats) -> str:
            return (f"{name:<8} BPR {stats.bpr:.3f}   mean best IoU {stats.mean_iou:.3f}   "
                    f"anchors/box {stats.anchors_per_box:.2f}")

        lines = [
            f"{self.source}: {self.boxes} boxes in {self.images} images at {self.img_size} px (letterboxed)"
            + (f", {self.small_boxes} under 2 px left out of the fit" if self.small_boxes else ""),
            f"anchors  {self.cfg_text()}",
            line("fitted", self.fitted),
        ]
        if self.current is not None:
            lines.append(line("cfg", self.current) + f"   ({len(self.current_anchors)} anchors its masks use)")
        lines.append(f"(BPR: share of boxes some anchor matches within a ratio of {self.fitted.anchor_t:g} in width "
                     "and height; k-means with 1 - IoU, seed "
                     f"{self.seed})")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "img_size": self.img_size, "images": self.images, "boxes": self.boxes,
            "small_boxes": self.small_boxes, "seed": self.seed, "anchors": [list(a) for a in self.anchors],
            "fitted": self.fitted.to_dict(),
            "current": self.current.to_dict() if self.current is not None else None,
            "current_anchors": [list(a) for a in self.current_anchors],
        }


def fit_anchors(
    spec: DataSpec,
    img_size: int,
    k: int = 9,
    *,
    current: np.ndarray | tuple | None = None,
    seed: int = 0,
    anchor_t: float = 4.0,
    min_box: float = 2.0,
    restarts: int = 10,
) -> AnchorFit:
    """Fits ``k`` anchors to the training boxes of ``spec`` at ``img_size``.

    Args:
        spec: The dataset.
        img_size: Training input side in pixels.
        k: Number of anchors.
        current: ``[A, 2]`` anchors to measure for comparison (a cfg's).
        seed: Seed of the fit.
        anchor_t: Ratio threshold of the BPR.
        min_box: Boxes with a side under this (pixels) are left out of the fit.
        restarts: k-means++ starts.

    Raises:
        DataError: No readable image, fewer usable boxes or distinct sizes than ``k``.
        ConfigError: Bad ``k``, ``anchor_t`` or ``img_size``.
    """
    wh, report = letterboxed_box_sizes(spec, img_size)
    if report.total_issues:
        report.log(_log)
    if report.images_kept == 0:
        raise DataError(f"{spec.source}: none of the {report.images} training images could be read")
    usable = wh[(wh >= min_box).all(axis=1)]
    if not len(usable):
        raise DataError(f"{spec.source}: no training box of at least {min_box:g} px at {img_size} px to fit anchors to")
    anchors = kmeans_anchors(usable, k, seed=seed, restarts=restarts)
    if img_size > 32:  # whole pixels, as darknet writes them
        anchors = np.maximum(np.round(anchors), 1.0)
    current_arr = np.asarray(current, np.float64).reshape(-1, 2) if current is not None else None
    return AnchorFit(
        anchors=tuple((float(w), float(h)) for w, h in anchors),
        fitted=anchor_stats(wh, anchors, anchor_t),
        current=anchor_stats(wh, current_arr, anchor_t) if current_arr is not None and len(current_arr) else None,
        current_anchors=tuple((float(w), float(h)) for w, h in current_arr) if current_arr is not None else (),
        img_size=img_size,
        images=report.images_kept,
        boxes=len(wh),
        small_boxes=len(wh) - len(usable),
        seed=seed,
        source=str(spec.source) if spec.source is not None else "<dataset>",
    )


def fit_cfg_anchors(
    cfg: str | Path | DarknetCfg,
    data: str | Path | DataSpec,
    img_size: int,
    *,
    k: int | None = None,
    seed: int = 0,
    anchor_t: float = 4.0,
    builtin: Mapping[str, Any] | None = None,
) -> tuple[DarknetCfg, AnchorFit]:
    """Fits anchors for a cfg on a dataset at a training size; returns the updated cfg and the figures.

    For the training task: call it when training **from scratch on a custom
    dataset**, where the cfg's anchors were chosen for other boxes (COCO's at
    608 px, or the demo's at 160 px) and may match few of the user's: the fitted
    anchors are written into every ``[yolo]`` head (masks unchanged, sorted by
    area so the finest head gets the smallest). Do **not** call it for a
    pretrained cfg and weights (a ``.weights`` whose heads learned its anchors, or
    fine-tuning after pruning) unless the user asks: new anchors there throw away
    what the heads learned. Compare ``fit.fitted`` with ``fit.current`` (the cfg's
    own) before switching: if the cfg's BPR is already near 1 and its mean IoU
    close, keeping them costs little.

    Args:
        cfg: A parsed cfg, a ``.cfg`` path or a zoo name.
        data: A dataset (any form :func:`~yolo_slim.data.sources.resolve_dataset`
            takes, or a spec).
        img_size: Training input side in pixels.
        k: Number of anchors; default the cfg's (which its masks index).
        seed: Seed of the fit.
        anchor_t: Ratio threshold of the BPR.
        builtin: Options of the built-in dataset when ``data`` is ``"builtin"``.

    Returns:
        ``(cfg with the fitted anchors, the fit)``.

    Raises:
        CfgError: Bad cfg, a ``k`` other than the cfg's anchor count, masks not
            ordered by stride.
        DataError: Bad dataset or too few boxes.
    """
    from yolo_slim.data.sources import resolve_dataset

    parsed = load_cfg(cfg)
    count = anchor_count(parsed)
    if k is not None and k != count:
        raise CfgError(f"{parsed.source}: its masks index {count} anchors (num={count}); cannot write {k} into it")
    spec = data if isinstance(data, DataSpec) else resolve_dataset(data, builtin=builtin, need_valid=False)
    fit = fit_anchors(spec, img_size, count, current=np.asarray(used_anchors(parsed)),
                      seed=seed, anchor_t=anchor_t)
    return with_anchors(parsed, fit.anchors), fit
