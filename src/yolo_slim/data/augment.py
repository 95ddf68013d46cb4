"""Training augmentations for detection: HSV jitter, flip, random affine, mosaic.

Every function is pure: it takes an image (``uint8 [H, W, 3]``, BGR, as OpenCV
reads it) and boxes (``float [M, 5]``: ``cls, x1, y1, x2, y2`` in pixels of that
image), plus a ``numpy.random.Generator`` where randomness is needed, and returns
new arrays. The inputs are never modified. The order the dataset applies them in
(mosaic or letterbox, then affine, HSV, flip) follows the darknet/ultralytics YOLO
recipe; the code is written from the description, not copied.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import cv2
import numpy as np

from yolo_slim.errors import ConfigError

__all__ = [
    "FILL_VALUE",
    "AugmentConfig",
    "clip_boxes",
    "flip_lr",
    "hsv_jitter",
    "mosaic4",
    "random_affine",
]

FILL_VALUE = 114
"""Grey level of padding and of canvas areas not covered by an image."""

MIN_BOX_SIZE = 2.0
"""Boxes narrower or lower than this many pixels after a transform are dropped."""

MIN_VISIBLE = 0.25
"""Boxes with less than this fraction of their area inside the image are dropped."""


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths; a zero disables the augmentation.

    Attributes:
        hsv_h: Hue gain: hue is multiplied by a factor in ``[1 - hsv_h, 1 + hsv_h]``.
        hsv_s: Saturation gain, same form.
        hsv_v: Value (brightness) gain, same form.
        flip_lr: Probability of a left-right flip.
        scale: Random zoom factor in ``[1 - scale, 1 + scale]``; must be < 1.
        translate: Random shift, as a fraction of the output size, in
            ``[-translate, translate]`` along each axis.
        mosaic: Probability of building a sample as a mosaic of 4 images.
    """

    hsv_h: float = 0.015
    hsv_s: float = 0.7
    hsv_v: float = 0.4
    flip_lr: float = 0.5
    scale: float = 0.5
    translate: float = 0.1
    mosaic: float = 1.0

    def __post_init__(self) -> None:
        problems = []
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
                problems.append(f"augment.{f.name} must be a finite number, got {value!r}")
            elif value < 0:
                problems.append(f"augment.{f.name} must be >= 0, got {value}")
        if not problems:
            for name in ("flip_lr", "mosaic", "hsv_h", "hsv_s", "hsv_v", "translate"):
                if getattr(self, name) > 1:
                    problems.append(f"augment.{name} must be <= 1, got {getattr(self, name)}")
            if self.scale >= 1:
                problems.append(f"augment.scale must be < 1 (zoom factor 1 - scale > 0), got {self.scale}")
        if problems:
            raise ConfigError("; ".join(problems))

    @classmethod
    def from_any(cls, value: AugmentConfig | dict[str, Any] | None) -> AugmentConfig | None:
        """Builds a config from a config object, a mapping (e.g. Hydra's) or None.

        Raises:
            ConfigError: The mapping has unknown keys or bad values.
        """
        if value is None or isinstance(value, AugmentConfig):
            return value
        try:
            items = dict(value)
        except (TypeError, ValueError):
            raise ConfigError(f"augment must be a mapping, AugmentConfig or None, got {value!r}") from None
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(items) - known)
        if unknown:
            raise ConfigError(f"unknown augment option(s) {unknown}; known: {sorted(known)}")
        return cls(**{k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in items.items()})

    def to_dict(self) -> dict[str, float]:
        """Returns the config as a plain dict (for hyper-parameter logging)."""
        return asdict(self)


def hsv_jitter(image: np.ndarray, rng: np.random.Generator, hgain: float, sgain: float, vgain: float) -> np.ndarray:
    """Multiplies hue, saturation and value by random factors.

    Args:
        image: ``uint8 [H, W, 3]`` BGR.
        rng: Source of the three factors, each uniform in ``[1 - gain, 1 + gain]``.
        hgain: Hue gain (hue wraps around, OpenCV hue range 0..179).
        sgain: Saturation gain.
        vgain: Value gain.

    Returns:
        The jittered ``uint8 [H, W, 3]`` BGR image (a new array).
    """
    if hgain == 0 and sgain == 0 and vgain == 0:
        return image.copy()
    r = rng.uniform(-1.0, 1.0, 3) * np.array([hgain, sgain, vgain]) + 1.0
    hue, sat, val = cv2.split(cv2.cvtColor(image, cv2.COLOR_BGR2HSV))
    x = np.arange(256, dtype=np.float32)
    lut_h = np.mod(x * r[0], 180).astype(np.uint8)
    lut_s = np.clip(x * r[1], 0, 255).astype(np.uint8)
    lut_v = np.clip(x * r[2], 0, 255).astype(np.uint8)
    hsv = cv2.merge((cv2.LUT(hue, lut_h), cv2.LUT(sat, lut_s), cv2.LUT(val, lut_v)))
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def flip_lr(image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirrors an image and its boxes left to right.

    Args:
        image: ``uint8 [H, W, 3]``.
        boxes: ``[M, 5]``: ``cls, x1, y1, x2, y2`` in pixels.

    Returns:
        ``(image, boxes)``, new arrays; ``x1' = W - x2``, ``x2' = W - x1``.
    """
    width = image.shape[1]
    out = boxes.copy()
    out[:, 1] = width - boxes[:, 3]
    out[:, 3] = width - boxes[:, 1]
    return np.ascontiguousarray(image[:, ::-1]), out


def clip_boxes(
    boxes: np.ndarray,
    width: float,
    height: float,
    *,
    x0: float = 0.0,
    y0: float = 0.0,
    min_size: float = MIN_BOX_SIZE,
    min_visible: float = MIN_VISIBLE,
) -> np.ndarray:
    """Clips boxes to a rectangle and drops those too small or mostly outside it.

    Args:
        boxes: ``[M, 5]``: ``cls, x1, y1, x2, y2`` in pixels.
        width: Right edge of the rectangle is ``x0 + width``.
        height: Bottom edge of the rectangle is ``y0 + height``.
        x0: Left edge of the rectangle.
        y0: Top edge of the rectangle.
        min_size: Boxes whose clipped width or height is below this (pixels) go.
        min_visible: Boxes with less than this fraction of their area inside go.

    Returns:
        ``[K, 5]`` clipped boxes, ``K <= M``, same dtype.
    """
    if len(boxes) == 0:
        return boxes.copy()
    out = boxes.copy()
    out[:, [1, 3]] = out[:, [1, 3]].clip(x0, x0 + width)
    out[:, [2, 4]] = out[:, [2, 4]].clip(y0, y0 + height)
    w, h = out[:, 3] - out[:, 1], out[:, 4] - out[:, 2]
    area_before = np.maximum((boxes[:, 3] - boxes[:, 1]) * (boxes[:, 4] - boxes[:, 2]), 1e-9)
    keep = (w >= min_size) & (h >= min_size) & (w * h / area_before >= min_visible)
    return out[keep]


def random_affine(
    image: np.ndarray,
    boxes: np.ndarray,
    rng: np.random.Generator,
    *,
    scale: float,
    translate: float,
    out_size: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Zooms and shifts an image about its centre onto an output canvas.

    The input centre maps to the output centre, scaled by ``s ~ U[1 - scale,
    1 + scale]`` and shifted by ``t ~ U[-translate, translate]`` times the output
    size. With zero ``scale`` and ``translate`` this is a centre crop (or pad) to
    ``out_size``, which is how a mosaic canvas of twice the size becomes a sample.
    Boxes are transformed, clipped and filtered with :func:`clip_boxes`.

    Args:
        image: ``uint8 [H, W, 3]``.
        boxes: ``[M, 5]``: ``cls, x1, y1, x2, y2`` in input pixels.
        rng: Source of the zoom and shift.
        scale: Zoom range, ``0 <= scale < 1``.
        translate: Shift range as a fraction of the output size.
        out_size: ``(height, width)`` of the output; default the input size.

    Returns:
        ``(image, boxes)``: ``uint8 [out_h, out_w, 3]`` and ``[K, 5]`` boxes in
        output pixels.
    """
    in_h, in_w = image.shape[:2]
    out_h, out_w = out_size if out_size is not None else (in_h, in_w)
    s = rng.uniform(1.0 - scale, 1.0 + scale) if scale > 0 else 1.0
    tx = rng.uniform(-translate, translate) * out_w if translate > 0 else 0.0
    ty = rng.uniform(-translate, translate) * out_h if translate > 0 else 0.0
    ox = out_w / 2 + tx - s * in_w / 2
    oy = out_h / 2 + ty - s * in_h / 2
    if s == 1.0 and ox == 0 and oy == 0 and (out_h, out_w) == (in_h, in_w):
        return image.copy(), clip_boxes(boxes, in_w, in_h)
    matrix = np.array([[s, 0.0, ox], [0.0, s, oy]], dtype=np.float64)
    warped = cv2.warpAffine(  # bilinear: warpAffine has no INTER_AREA (it falls back to this)
        image, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
        borderValue=(FILL_VALUE, FILL_VALUE, FILL_VALUE),
    )
    out = boxes.astype(np.float32, copy=True)
    out[:, [1, 3]] = out[:, [1, 3]] * s + ox
    out[:, [2, 4]] = out[:, [2, 4]] * s + oy
    return warped, clip_boxes(out, out_w, out_h)


def mosaic4(
    images: list[np.ndarray], boxes: list[np.ndarray], rng: np.random.Generator, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Tiles four images around a random centre of a ``2 size x 2 size`` canvas.

    Image 0 ends at the centre from the top left, 1 from the top right, 2 from the
    bottom left, 3 from the bottom right; parts beyond the canvas are cut off and
    the rest of the canvas is grey. The centre is uniform in ``[size / 2,
    3 size / 2]`` on both axes, so a centre crop of ``size`` always shows the seam.

    Args:
        images: Four ``uint8 [h_i, w_i, 3]`` images, typically resized so their
            longest side is ``size``.
        boxes: Four ``[M_i, 5]`` arrays: ``cls, x1, y1, x2, y2`` in pixels of their image.
        rng: Source of the centre.
        size: Output sample size; the canvas is ``2 size`` square.

    Returns:
        ``(canvas, boxes)``: ``uint8 [2 size, 2 size, 3]`` and ``[K, 5]`` boxes in
        canvas pixels, clipped to the part of their image that is visible.
    """
    if len(images) != 4 or len(boxes) != 4:
        raise ValueError(f"mosaic4 needs 4 images and 4 box arrays, got {len(images)} and {len(boxes)}")
    side = 2 * size
    canvas = np.full((side, side, 3), FILL_VALUE, dtype=np.uint8)
    xc = int(rng.uniform(0.5 * size, 1.5 * size))
    yc = int(rng.uniform(0.5 * size, 1.5 * size))
    placed = []
    for k, (img, bxs) in enumerate(zip(images, boxes)):
        h, w = img.shape[:2]
        if k == 0:
            x1a, y1a, x2a, y2a = max(xc - w, 0), max(yc - h, 0), xc, yc
            x1b, y1b = w - (x2a - x1a), h - (y2a - y1a)
        elif k == 1:
            x1a, y1a, x2a, y2a = xc, max(yc - h, 0), min(xc + w, side), yc
            x1b, y1b = 0, h - (y2a - y1a)
        elif k == 2:
            x1a, y1a, x2a, y2a = max(xc - w, 0), yc, xc, min(yc + h, side)
            x1b, y1b = w - (x2a - x1a), 0
        else:
            x1a, y1a, x2a, y2a = xc, yc, min(xc + w, side), min(yc + h, side)
            x1b, y1b = 0, 0
        cw, ch = x2a - x1a, y2a - y1a
        canvas[y1a:y2a, x1a:x2a] = img[y1b : y1b + ch, x1b : x1b + cw]
        shifted = bxs.astype(np.float32, copy=True)
        shifted[:, [1, 3]] += x1a - x1b
        shifted[:, [2, 4]] += y1a - y1b
        placed.append(clip_boxes(shifted, cw, ch, x0=x1a, y0=y1a))
    return canvas, np.concatenate(placed, axis=0) if placed else np.zeros((0, 5), np.float32)
