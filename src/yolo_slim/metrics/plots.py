"""Drawing the plots of a run: training curves, PR and F1 curves, confusion matrix, image grids.

Every function draws one file and writes it atomically. Figures are built on
matplotlib's object API with the Agg canvas (no pyplot, no global backend switch, no
display, nothing left open), the way matplotlib recommends for servers; image grids
are drawn with OpenCV. The numbers come from `yolo_slim.metrics.detection` and
`yolo_slim.metrics.confusion`; nothing here computes a metric.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from yolo_slim.errors import DataError
from yolo_slim.io.atomic import write_atomic
from yolo_slim.metrics.confusion import ConfusionMatrix
from yolo_slim.metrics.detection import DetectionCurves

__all__ = [
    "RESULT_PANELS",
    "class_colour",
    "draw_boxes",
    "image_grid",
    "plot_confusion_matrix",
    "plot_f1_curves",
    "plot_pr_curves",
    "plot_results",
    "write_image",
]

#: (logged metric, panel title, a fraction in [0, 1]) of ``results.png``, row by row (2 x 6).
RESULT_PANELS: tuple[tuple[str, str, bool], ...] = (
    ("train/box_epoch", "train box loss", False),
    ("train/obj_epoch", "train obj loss", False),
    ("train/cls_epoch", "train cls loss", False),
    ("train/loss_epoch", "train loss", False),
    ("val/precision", "precision", True),
    ("val/mAP50", "mAP@0.5", True),
    ("val/box", "val box loss", False),
    ("val/obj", "val obj loss", False),
    ("val/cls", "val cls loss", False),
    ("val/loss", "val loss", False),
    ("val/recall", "recall", True),
    ("val/mAP50_95", "mAP@0.5:0.95", True),
)

#: Classes beyond this many are drawn without a legend entry each.
_MAX_LEGEND_CLASSES = 20
_DPI = 100


def class_colour(k: int) -> tuple[float, float, float]:
    """The RGB colour (each in [0, 1]) of class ``k`` in every plot and image.

    Matplotlib's tab20 in the order tab10's ten strong colours, then their ten light
    ones, repeating after 20 classes.
    """
    from matplotlib import colormaps

    k = int(k) % 20
    r, g, b, _ = colormaps["tab20"](2 * (k % 10) + k // 10)
    return float(r), float(g), float(b)


def _save(fig: Figure, path: str | Path) -> Path:
    buffer = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buffer, format="png", dpi=_DPI)
    return write_atomic(path, buffer.getvalue())


def _name(names: Sequence[str], k: int) -> str:
    return str(names[k]) if 0 <= k < len(names) else str(k)


def plot_results(
    history: Sequence[Mapping[str, float]], path: str | Path, panels: Sequence[tuple[str, str, bool]] = RESULT_PANELS
) -> Path:
    """``results.png``: one panel per logged metric against the epoch.

    Args:
        history: One mapping per epoch with ``epoch`` (1-based) and metric name ->
            value; a missing or nan value leaves a gap (an epoch without validation).
        path: The PNG to write.
        panels: (metric, title, fraction) per panel, filled in two rows; the
            y axis of a fraction starts at 0.

    Returns:
        ``path``.
    """
    cols = math.ceil(len(panels) / 2)
    # a fixed layout: redrawn every epoch, so no constrained-layout solve
    fig = Figure(figsize=(3.0 * cols, 5.6))
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.08, top=0.95, wspace=0.32, hspace=0.42)
    axes = fig.subplots(2, cols, squeeze=False).ravel()
    epochs = np.array([float(row.get("epoch", i + 1)) for i, row in enumerate(history)])
    for ax, (key, title, fraction) in zip(axes, panels):
        values = np.array([float(row.get(key, np.nan)) for row in history])
        ax.plot(epochs, values, marker="o", markersize=3, linewidth=1.5, color="#1f77b4")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.ticklabel_format(axis="y", useOffset=False)
        if fraction:
            ax.set_ylim(bottom=0.0, top=max(1e-3, float(np.nanmax(values, initial=0.0))) * 1.05)
        ax.grid(alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    return _save(fig, path)


def plot_pr_curves(
    series: Mapping[str, tuple[np.ndarray, np.ndarray]],
    names: Sequence[str],
    path: str | Path,
    title: str = "Precision-recall at IoU 0.5",
) -> Path:
    """PR curves per class and for all classes, AP@0.5 / mAP@0.5 in the legend.

    Args:
        series: Label (``""`` for a single model) -> (recall np.ndarray[R] in
            [0, 1], precision np.ndarray[C, R]: the monotone envelope, nan rows for
            classes without ground truth), e.g. ``DetectionCurves.recall_grid`` and
            ``pr_precision``. Each series gets its own line style.
        names: Class names (C).
        path: The PNG to write.
        title: Figure title.

    Returns:
        ``path``.
    """
    fig = Figure(figsize=(7.0, 5.6), layout="constrained")
    ax = fig.subplots()
    styles = ("-", "--", ":", "-.")
    for i, (label, (recall, precision)) in enumerate(series.items()):
        recall = np.asarray(recall, dtype=float)
        precision = np.asarray(precision, dtype=float).reshape(-1, recall.size)
        present = ~np.all(np.isnan(precision), axis=1)
        prefix = f"{label}: " if label else ""
        style = styles[i % len(styles)]
        legend = int(present.sum()) <= _MAX_LEGEND_CLASSES
        for k in np.nonzero(present)[0]:
            ap = float(precision[k].mean())
            ax.plot(recall, precision[k], style, linewidth=1.0, color=class_colour(k),
                    label=f"{prefix}{_name(names, k)} {ap:.3f}" if legend else None)
        if present.any():
            mean = precision[present].mean(0)
            ax.plot(recall, mean, style, linewidth=2.5, color="#1a1a1a" if i == 0 else "#7f3f00",
                    label=f"{prefix}all classes {float(mean.mean()):.3f} mAP@0.5")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def plot_f1_curves(curves: DetectionCurves, names: Sequence[str], path: str | Path) -> Path:
    """F1 against the score threshold, per class and for all classes.

    The legend gives each curve's best F1 and the score where it is reached; a dotted
    line marks the score at which validation reads P and R.

    Args:
        curves: From ``DetectionMetrics.curves()``.
        names: Class names (C).
        path: The PNG to write.

    Returns:
        ``path``.
    """
    fig = Figure(figsize=(7.0, 5.6), layout="constrained")
    ax = fig.subplots()
    present = np.nonzero(curves.present)[0]
    legend = present.size <= _MAX_LEGEND_CLASSES
    for k in present:
        f1, score = curves.best_f1(int(k))
        ax.plot(curves.score_grid, curves.f1[k], linewidth=1.0, color=class_colour(k),
                label=f"{_name(names, k)} {f1:.3f} at {score:.3f}" if legend else None)
    if present.size:
        f1, score = curves.best_f1()
        ax.plot(curves.score_grid, curves.mean_f1(), linewidth=2.5, color="#1a1a1a", label=f"all classes {f1:.3f} at {score:.3f}")
    ax.axvline(curves.score_threshold, linestyle=":", color="#555555", label=f"P/R read at {curves.score_threshold:g}")
    ax.set_xlabel("score threshold")
    ax.set_ylabel("F1")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("F1 at IoU 0.5")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    return _save(fig, path)


def plot_confusion_matrix(matrix: ConfusionMatrix, names: Sequence[str], path: str | Path) -> Path:
    """The confusion matrix, rows normalised per true class, as a heat map.

    Args:
        matrix: The counts (rows true class, columns predicted, background last).
        names: Class names (C).
        path: The PNG to write.

    Returns:
        ``path``.
    """
    labels = [_name(names, k) for k in range(matrix.num_classes)] + ["background"]
    n = len(labels)
    values = matrix.normalised()
    side = min(4.0 + 0.45 * n, 24.0)
    fig = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n), labels, rotation=90 if n > 6 else 0, fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Confusion matrix (score >= {matrix.score_threshold:g}, IoU {matrix.iou_threshold:g}), rows normalised", fontsize=10)
    if n <= 30:
        for (i, j), v in np.ndenumerate(values):
            if matrix.counts[i, j]:
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8, color="white" if v > 0.5 else "black")
    return _save(fig, path)


def _bgr(k: int) -> tuple[int, int, int]:
    r, g, b = class_colour(k)
    return int(b * 255), int(g * 255), int(r * 255)


def draw_boxes(image: np.ndarray, boxes: np.ndarray, names: Sequence[str], scale: float = 1.0) -> np.ndarray:
    """A copy of ``image`` with boxes and ``class`` or ``class score`` labels.

    Args:
        image: np.ndarray[H, W, 3] uint8 BGR.
        boxes: np.ndarray[N, 6] of (x1, y1, x2, y2, score, class) in ``image``'s
            pixels divided by ``scale``; a nan score draws the class name only
            (ground truth).
        names: Class names.
        scale: Factor from the boxes' pixels to ``image``'s (a resized image).

    Returns:
        np.ndarray[H, W, 3] uint8 BGR.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 6)
    out = np.ascontiguousarray(image).copy()
    font, font_scale = cv2.FONT_HERSHEY_SIMPLEX, 0.35
    for x1, y1, x2, y2, score, cls in boxes:
        k = int(cls)
        colour = _bgr(k)
        p1 = (int(round(x1 * scale)), int(round(y1 * scale)))
        p2 = (int(round(x2 * scale)), int(round(y2 * scale)))
        cv2.rectangle(out, p1, p2, colour, 1, cv2.LINE_8)
        text = _name(names, k) if np.isnan(score) else f"{_name(names, k)} {score:.2f}"
        (w, h), base = cv2.getTextSize(text, font, font_scale, 1)
        top = max(p1[1] - h - base, 0)
        cv2.rectangle(out, (p1[0], top), (p1[0] + w, top + h + base), colour, cv2.FILLED)
        cv2.putText(out, text, (p1[0], top + h), font, font_scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def image_grid(
    images: Sequence[np.ndarray],
    boxes: Sequence[np.ndarray],
    names: Sequence[str],
    cell: int = 320,
    titles: Sequence[str] | None = None,
) -> np.ndarray:
    """Images with their boxes tiled into a near-square grid.

    Each image is scaled to fit a ``cell`` x ``cell`` tile (aspect kept) and its
    boxes are drawn at that scale, so labels have the same size everywhere.

    Args:
        images: np.ndarray[H_i, W_i, 3] uint8 BGR, the original images.
        boxes: Per image np.ndarray[N_i, 6] (x1, y1, x2, y2, score, class) in that
            image's pixels (score nan for ground truth).
        names: Class names.
        cell: Tile side in pixels.
        titles: Optional text per tile (e.g. the file name).

    Returns:
        np.ndarray[rows * cell, cols * cell, 3] uint8 BGR.

    Raises:
        DataError: No images, or not one box array per image.
    """
    if not images or len(images) != len(boxes):
        raise DataError(f"image_grid: need one box array per image, got {len(images)} images and {len(boxes)} box arrays")
    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    grid = np.full((rows * cell, cols * cell, 3), 255, dtype=np.uint8)
    for i, (image, b) in enumerate(zip(images, boxes)):
        h, w = image.shape[:2]
        scale = cell / max(h, w)
        tile = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        tile = draw_boxes(tile, b, names, scale)
        if titles is not None:
            cv2.putText(tile, str(titles[i])[-40:], (3, tile.shape[0] - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
        y, x = (i // cols) * cell, (i % cols) * cell
        grid[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
        cv2.rectangle(grid, (x, y), (x + cell - 1, y + cell - 1), (255, 255, 255), 1)
    return grid


def write_image(path: str | Path, image: np.ndarray, quality: int = 90) -> Path:
    """Encode ``image`` (uint8 BGR) by the file's extension (.jpg, .png) and write it atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".jpg", ".jpeg", ".png"):
        raise DataError(f"{path}: images are written as .jpg or .png, not {path.suffix or 'a file without extension'}")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if suffix != ".png" else []
    ok, encoded = cv2.imencode(suffix, image, params)
    if not ok:
        raise DataError(f"{path}: OpenCV could not encode the image")
    return write_atomic(path, encoded.tobytes())
