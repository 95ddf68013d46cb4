"""The demo preset's scenes: one seeded image of discs and plates among distractors.

`render_image` draws what `synthetic.py`'s docstring describes for the ``demo``
preset (textured background, class-hued objects, unlabelled distractors, occlusion,
jitter, blur, noise); `synthetic.py` turns many of them into a dataset on disk, as
`aerial.py` does for the ``aerial`` preset.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

SYNTHETIC_NAMES: tuple[str, ...] = ("disc", "plate")
"""Class names of the demo preset (the default built-in dataset), in class-id order."""

DEFAULT_MIN_SIZE = 0.05
DEFAULT_MAX_SIZE = 0.40
DEFAULT_CLASS_COLOUR = 0.8

# OpenCV hue (0-180) range of each class's colour family: discs warm, plates cool
_CLASS_HUES = {"disc": (0.0, 30.0), "plate": (95.0, 130.0)}


# ---------------------------------------------------------------------- drawing
def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A textured ``float32 [S, S, 3]`` background: gradient + blobs (+ stripes)."""
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    xx, yy = coords[None, :], coords[:, None]
    angle = rng.uniform(0, 2 * math.pi)
    t = xx * np.float32(math.cos(angle)) + yy * np.float32(math.sin(angle))
    t = (t - t.min()) / np.float32(max(float(t.max() - t.min()), 1e-6))
    c1, c2 = rng.uniform(0, 255, 3).astype(np.float32), rng.uniform(0, 255, 3).astype(np.float32)
    image = t[..., None] * (c2 - c1)
    image += c1
    cells = int(rng.integers(3, 10))
    blobs = rng.standard_normal((cells, cells, 3), dtype=np.float32) * np.float32(rng.uniform(10, 45))
    image += cv2.resize(blobs, (size, size), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.45:
        freq = rng.uniform(3, 24)
        a2 = rng.uniform(0, math.pi)
        phase = np.float32(2 * math.pi * freq) * (xx * np.float32(math.cos(a2)) + yy * np.float32(math.sin(a2)))
        wave = np.sin(phase + np.float32(rng.uniform(0, 2 * math.pi)))
        tint = rng.uniform(-1, 1, 3).astype(np.float32) * np.float32(rng.uniform(15, 50))
        image += wave[..., None] * tint
    return image


def _hue_colour(rng: np.random.Generator, hues: tuple[float, float]) -> np.ndarray:
    """A saturated BGR colour with an OpenCV hue in ``hues``."""
    hsv = np.array([[[rng.uniform(*hues), rng.uniform(150, 255), rng.uniform(120, 255)]]], dtype=np.float32)
    hsv[..., 0] *= 2.0  # float HSV images take hue in degrees
    return cv2.cvtColor(hsv / np.array([1.0, 255.0, 255.0], np.float32), cv2.COLOR_HSV2BGR)[0, 0] * 255.0


def _contrasting_colour(
    rng: np.random.Generator, image: np.ndarray, box: tuple[int, int, int, int],
    hues: tuple[float, float] | None = None,
) -> tuple:
    """A BGR colour (random, or from the hue range ``hues``) that differs from the mean of ``image`` in ``box``."""
    x1, y1, x2, y2 = box
    region = image[max(y1, 0) : max(y2, 1), max(x1, 0) : max(x2, 1)]
    mean = region.reshape(-1, 3).mean(axis=0) if region.size else np.full(3, 127.0)

    def draw() -> np.ndarray:
        return rng.uniform(0, 255, 3) if hues is None else _hue_colour(rng, hues)

    colour = draw()
    for _ in range(8):
        if np.abs(colour - mean).sum() >= 90:
            break
        colour = draw()
    return tuple(float(c) for c in colour)


def _shape(
    rng: np.random.Generator, kind: str, size: int,
    min_size: float = DEFAULT_MIN_SIZE, max_size: float = DEFAULT_MAX_SIZE,
) -> dict[str, Any]:
    """Random geometry of one shape; ``extent`` is its size in pixels."""
    fraction = math.exp(rng.uniform(math.log(min_size), math.log(max_size)))
    extent = fraction * size
    cx, cy = rng.uniform(0, size), rng.uniform(0, size)
    spec: dict[str, Any] = {"kind": kind, "cx": cx, "cy": cy, "extent": extent}
    if kind in ("plate", "frame"):
        aspect = math.exp(rng.uniform(math.log(0.5), math.log(2.0)))
        w, h = (extent, extent / aspect) if aspect >= 1 else (extent * aspect, extent)
        theta = rng.uniform(-35, 35) if rng.random() < 0.5 else 0.0
        pts = cv2.boxPoints(((cx, cy), (w, h), theta))
        spec["poly"] = pts
        spec["area"] = w * h
    elif kind == "disc":
        spec["area"] = math.pi * (extent / 2) ** 2
    elif kind == "triangle":
        angles = rng.uniform(0, 2 * math.pi) + np.array([0, 2.1, 4.2]) + rng.uniform(-0.4, 0.4, 3)
        r = extent / 2
        spec["poly"] = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], axis=1).astype(np.float32)
    elif kind == "line":
        a = rng.uniform(0, math.pi)
        dx, dy = math.cos(a) * extent, math.sin(a) * extent
        spec["p1"], spec["p2"] = (cx - dx, cy - dy), (cx + dx, cy + dy)
        spec["thickness"] = int(rng.integers(1, 5))
    elif kind == "ring":
        spec["thickness"] = max(1, int(extent * rng.uniform(0.05, 0.2)))
    elif kind == "text":
        letters = "ABCDEFGHKMNPRSTUVWXYZ0123456789"
        spec["text"] = "".join(rng.choice(list(letters), int(rng.integers(1, 5))))
        spec["scale"] = max(0.3, extent / 40)
        spec["thickness"] = int(rng.integers(1, 4))
    return spec


def _draw(canvas: np.ndarray, spec: dict[str, Any], colour: Any, antialias: bool) -> None:
    """Draws a shape onto ``canvas`` (an image or a uint8 mask) in place."""
    line_type = cv2.LINE_AA if antialias else cv2.LINE_8
    shift = 4  # sub-pixel precision for circles and polygons
    k = 1 << shift
    kind = spec["kind"]
    if kind == "disc":
        centre = (round(spec["cx"] * k), round(spec["cy"] * k))
        cv2.circle(canvas, centre, max(1, round(spec["extent"] / 2 * k)), colour, -1, line_type, shift)
    elif kind == "ring":
        centre = (round(spec["cx"] * k), round(spec["cy"] * k))
        cv2.circle(canvas, centre, max(1, round(spec["extent"] / 2 * k)), colour, spec["thickness"], line_type, shift)
    elif kind in ("plate", "triangle"):
        pts = np.round(spec["poly"] * k).astype(np.int32)
        cv2.fillPoly(canvas, [pts], colour, line_type, shift)
    elif kind == "frame":
        pts = np.round(spec["poly"] * k).astype(np.int32)
        thickness = max(1, round(spec["extent"] * 0.08))
        cv2.polylines(canvas, [pts], True, colour, thickness, line_type, shift)
    elif kind == "line":
        p1 = (round(spec["p1"][0] * k), round(spec["p1"][1] * k))
        p2 = (round(spec["p2"][0] * k), round(spec["p2"][1] * k))
        cv2.line(canvas, p1, p2, colour, spec["thickness"], line_type, shift)
    elif kind == "text":
        org = (round(spec["cx"] - spec["extent"] / 2), round(spec["cy"] + spec["extent"] / 4))
        cv2.putText(canvas, spec["text"], org, cv2.FONT_HERSHEY_SIMPLEX, spec["scale"], colour,
                    spec["thickness"], line_type)


def _bbox(spec: dict[str, Any], size: int) -> tuple[float, float, float, float]:
    """Clipped ``x1, y1, x2, y2`` (pixels) of a labelled shape."""
    if spec["kind"] == "disc":
        r = spec["extent"] / 2
        x1, y1, x2, y2 = spec["cx"] - r, spec["cy"] - r, spec["cx"] + r, spec["cy"] + r
    else:
        pts = spec["poly"]
        x1, y1 = float(pts[:, 0].min()), float(pts[:, 1].min())
        x2, y2 = float(pts[:, 0].max()), float(pts[:, 1].max())
    return max(x1, 0.0), max(y1, 0.0), min(x2, float(size)), min(y2, float(size))


def _place(
    spec: dict[str, Any], owner: np.ndarray, visible: list[int], areas: list[float], min_visible: float
) -> np.ndarray | None:
    """Mask of ``spec`` if drawing it leaves every labelled object >= ``min_visible`` visible."""
    mask = np.zeros(owner.shape, dtype=np.uint8)
    _draw(mask, spec, 1, antialias=False)
    covered = mask.astype(bool)
    if not covered.any():
        return None
    if visible:
        hit = np.bincount(owner[covered] + 1, minlength=len(visible) + 1)[1:]
        for j, lost in enumerate(hit):
            if lost and (visible[j] - lost) < min_visible * areas[j]:
                return None
    return covered


def render_image(
    rng: np.random.Generator,
    size: int,
    max_objects: int = 6,
    *,
    min_size: float = DEFAULT_MIN_SIZE,
    max_size: float = DEFAULT_MAX_SIZE,
    class_colour: float = DEFAULT_CLASS_COLOUR,
) -> tuple[np.ndarray, np.ndarray]:
    """Renders one synthetic image and its labels.

    Args:
        rng: The image's own generator.
        size: Image side in pixels.
        max_objects: Upper bound of labelled objects (at least one is attempted).
        min_size, max_size: Range of object and distractor sizes, as fractions of
            the image side.
        class_colour: Probability that an object takes its class's hue family.

    Returns:
        ``(image, labels)``: ``uint8 [size, size, 3]`` BGR and ``float32 [M, 5]``
        ``cls, cx, cy, w, h`` normalised (amodal boxes, clipped to the image).
    """
    image = _background(rng, size)
    owner = np.full((size, size), -1, dtype=np.int16)
    visible: list[int] = []
    areas: list[float] = []
    specs: list[tuple[int, dict[str, Any]]] = []
    distractor_kinds = ("triangle", "ring", "frame", "line", "text")

    def add_distractor() -> None:
        spec = _shape(rng, str(rng.choice(distractor_kinds)), size, min_size, max_size)
        for _ in range(4):
            mask = _place(spec, owner, visible, areas, min_visible=0.6)
            if mask is not None:
                hit = owner[mask]
                for j in np.unique(hit[hit >= 0]):
                    visible[j] -= int((hit == j).sum())
                owner[mask] = -1
                _draw(image, spec, _contrasting_colour(rng, image, _int_box(spec, size)), antialias=True)
                return
            spec = _shape(rng, spec["kind"], size, min_size, max_size)

    n_distractors = int(rng.integers(1, 8))
    n_under = int(rng.integers(0, n_distractors + 1))
    for _ in range(n_under):
        add_distractor()
    for _ in range(int(rng.integers(1, max_objects + 1))):
        cls = int(rng.integers(0, len(SYNTHETIC_NAMES)))
        for _ in range(8):
            spec = _shape(rng, SYNTHETIC_NAMES[cls], size, min_size, max_size)
            mask = _place(spec, owner, visible, areas, min_visible=0.5)
            if mask is None or mask.sum() < 0.6 * spec["area"]:
                continue  # occludes another object too much, or mostly outside the image
            hit = owner[mask]
            for j in np.unique(hit[hit >= 0]):
                visible[j] -= int((hit == j).sum())
            owner[mask] = len(visible)
            visible.append(int(mask.sum()))
            areas.append(float(spec["area"]))
            hues = _CLASS_HUES[SYNTHETIC_NAMES[cls]] if rng.random() < class_colour else None
            colour = _contrasting_colour(rng, image, _int_box(spec, size), hues)
            _draw(image, spec, colour, antialias=True)
            if rng.random() < 0.3:  # inner detail: a ring on a disc, an inset on a plate
                inner = dict(spec, extent=spec["extent"] * rng.uniform(0.4, 0.8))
                if "poly" in spec:
                    centre = np.array([spec["cx"], spec["cy"]], dtype=np.float32)
                    inner["poly"] = (spec["poly"] - centre) * (inner["extent"] / spec["extent"]) + centre
                _draw(image, inner, tuple(c * rng.uniform(0.5, 0.9) for c in colour), antialias=True)
            specs.append((cls, spec))
            break
    for _ in range(n_distractors - n_under):
        add_distractor()

    # global photometric jitter, blur and noise
    image *= rng.uniform(0.75, 1.25, 3).astype(np.float32)
    image += rng.uniform(-25, 25, 3).astype(np.float32)
    if rng.random() < 0.3:
        image = cv2.GaussianBlur(image, (3, 3), 0)
    noise = rng.standard_normal((size, size, 1), dtype=np.float32)  # luminance noise
    noise *= np.float32(rng.uniform(2, 12))
    image += noise
    out = np.clip(image, 0, 255, out=image).astype(np.uint8)

    rows = []
    for cls, spec in specs:
        x1, y1, x2, y2 = _bbox(spec, size)
        if x2 - x1 >= 2 and y2 - y1 >= 2:
            rows.append((cls, (x1 + x2) / 2 / size, (y1 + y2) / 2 / size, (x2 - x1) / size, (y2 - y1) / size))
    return out, np.asarray(rows, dtype=np.float32).reshape(-1, 5)


def _int_box(spec: dict[str, Any], size: int) -> tuple[int, int, int, int]:
    r = spec["extent"] / 2
    return (int(spec["cx"] - r), int(spec["cy"] - r), int(spec["cx"] + r) + 1, int(spec["cy"] + r) + 1)
