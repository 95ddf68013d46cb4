"""The built-in dataset: seeded synthetic detection images written in YOLO format.

Two presets (:data:`PRESETS`, ``builtin.preset``):

* ``demo`` (the default, what the demo trains on): two classes, ``disc`` (a filled
  circle) and ``plate`` (a filled rectangle, possibly rotated), on textured
  backgrounds (gradients, noise blobs, stripes) with unlabelled distractors
  (triangles, rings, outlined frames, lines, text), partial occlusion, colour
  jitter, blur, pixel noise and JPEG compression. Object sizes range from
  ``min_size`` to ``max_size`` of the image side (log-uniform).
* ``aerial``: about 100 overhead tiles with many small vehicles of one class, the
  stand-in for a small user dataset (:mod:`yolo_slim.data.aerial`).

Like the classes of a real dataset, each demo class has a typical look: with
probability ``class_colour`` an object takes its class's hue family (discs warm,
plates cool); otherwise, and for every distractor, the colour is random. A small
model learns such data in a few hundred optimizer steps on a CPU, and still does
not saturate mAP@0.5: off-palette objects must be told apart by shape, small ones
are hard, and distractors may take the class hues. ``class_colour=0`` gives
shape-only classes and ``min_size=0.03`` more tiny objects: the demo model then
learns nothing visible in a few hundred steps.

The dataset is written to disk exactly as a user dataset would be, in the layout
darknet's own tools read: each label file beside its image (same stem), absolute
image paths in ``train.txt``/``val.txt``, absolute paths in the ``.data`` file, a
``.names`` file. Generation is deterministic for a seed (each image has its own
generator seeded with ``(seed, split, index)``), written into a temporary folder
and renamed into place; a folder whose ``manifest.json`` matches the preset, the
parameters and the folder's path is reused.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from yolo_slim.data.aerial import AERIAL_NAMES, render_aerial
from yolo_slim.errors import ConfigError, DataError

__all__ = [
    "BUILTIN_OPTIONS",
    "PRESETS",
    "SYNTHETIC_NAMES",
    "SYNTHETIC_VERSION",
    "SyntheticPreset",
    "builtin_folder",
    "builtin_preset_of",
    "make_synthetic_dataset",
    "render_image",
]

SYNTHETIC_NAMES: tuple[str, ...] = ("disc", "plate")
"""Class names of the built-in dataset, in class-id order."""

SYNTHETIC_VERSION = 3
"""Bumped whenever the generator's output changes, so stale folders are rebuilt."""

DEFAULT_MIN_SIZE = 0.05
DEFAULT_MAX_SIZE = 0.40
DEFAULT_CLASS_COLOUR = 0.8

# OpenCV hue (0-180) range of each class's colour family: discs warm, plates cool
_CLASS_HUES = {"disc": (0.0, 30.0), "plate": (95.0, 130.0)}

_DATA_NAME = "synthetic.data"
_NAMES_NAME = "synthetic.names"
_MANIFEST = "manifest.json"
_SPLITS = (("train", 0), ("val", 1))

_log = logging.getLogger(__name__)


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


# ---------------------------------------------------------------------- presets
@dataclass(frozen=True)
class SyntheticPreset:
    """A kind of built-in dataset: its classes, renderer and default parameters.

    Attributes:
        name: The preset's name (``builtin.preset``).
        names: Class names in class-id order.
        folder: Default folder name under the data cache.
        defaults: Value of every option left unset (None).
        options: The options that apply to this preset.
    """

    name: str
    names: tuple[str, ...]
    folder: str
    defaults: Mapping[str, Any]
    options: frozenset[str]


_COMMON = frozenset({"n_train", "n_val", "img_size", "seed", "max_objects", "min_size", "max_size"})

PRESETS: dict[str, SyntheticPreset] = {
    "demo": SyntheticPreset(
        "demo", SYNTHETIC_NAMES, "builtin",
        {"n_train": 800, "n_val": 100, "img_size": 160, "seed": 0, "max_objects": 6,
         "min_size": DEFAULT_MIN_SIZE, "max_size": DEFAULT_MAX_SIZE, "class_colour": DEFAULT_CLASS_COLOUR},
        _COMMON | {"class_colour"},
    ),
    "aerial": SyntheticPreset(
        "aerial", AERIAL_NAMES, "builtin_aerial",
        {"n_train": 100, "n_val": 12, "img_size": 416, "seed": 0, "max_objects": 40,
         "min_size": 0.025, "max_size": 0.09},
        _COMMON,
    ),
}
"""The presets: ``demo`` (two shape classes, the demo's data) and ``aerial`` (small vehicles, one class)."""

BUILTIN_OPTIONS: frozenset[str] = frozenset({"preset"}).union(*(p.options for p in PRESETS.values()))
"""Every keyword :func:`make_synthetic_dataset` takes besides ``root``."""


def builtin_folder(preset: str | None) -> str:
    """Default cache folder name of a preset (``builtin`` for the demo).

    Raises:
        ConfigError: Unknown preset.
    """
    return _preset(preset).folder


def _preset(name: str | None) -> SyntheticPreset:
    name = "demo" if name is None else name
    if name not in PRESETS:
        raise ConfigError(f"builtin.preset must be one of {sorted(PRESETS)}, got {name!r}")
    return PRESETS[name]


# ---------------------------------------------------------------------- writing
def _params(preset: SyntheticPreset, given: Mapping[str, Any]) -> dict[str, Any]:
    """The preset's defaults overridden by the ``given`` options that are not None, checked."""
    problems = [f"builtin.{k} does not apply to the {preset.name!r} preset (it takes {sorted(preset.options)})"
                for k, v in given.items() if v is not None and k not in preset.options]
    values: dict[str, Any] = {k: (given[k] if given.get(k) is not None else v) for k, v in preset.defaults.items()}
    for key in ("n_train", "n_val", "img_size", "seed", "max_objects"):
        if isinstance(values[key], bool) or not isinstance(values[key], int):
            problems.append(f"builtin.{key} must be an integer, got {values[key]!r}")
    for key in ("min_size", "max_size", "class_colour"):
        if key not in values:
            continue
        if isinstance(values[key], bool) or not isinstance(values[key], (int, float)):
            problems.append(f"builtin.{key} must be a number, got {values[key]!r}")
        else:
            values[key] = float(values[key])
    if not problems:
        if not 0.0 < values["min_size"] <= values["max_size"] <= 1.0:
            problems.append("builtin.min_size and max_size need 0 < min_size <= max_size <= 1, "
                            f"got {values['min_size']} and {values['max_size']}")
        if not 0.0 <= values.get("class_colour", 0.0) <= 1.0:
            problems.append(f"builtin.class_colour must be in [0, 1], got {values['class_colour']}")
        if values["n_train"] < 1 or values["n_val"] < 1:
            problems.append(f"builtin.n_train and n_val must be >= 1, got {values['n_train']} and {values['n_val']}")
        if values["img_size"] < 32:
            problems.append(f"builtin.img_size must be >= 32, got {values['img_size']}")
        if values["max_objects"] < 1:
            problems.append(f"builtin.max_objects must be >= 1, got {values['max_objects']}")
        if values["seed"] < 0:
            problems.append(f"builtin.seed must be >= 0, got {values['seed']}")
    if problems:
        raise ConfigError("; ".join(problems))
    return values


def _manifest(preset: SyntheticPreset, params: dict[str, Any], root: Path) -> dict[str, Any]:
    return {"generator": "yolo_slim.data.synthetic", "version": SYNTHETIC_VERSION, "preset": preset.name,
            "params": params, "names": list(preset.names), "root": str(root)}


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / _MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def builtin_preset_of(source: str | Path | None) -> str | None:
    """The preset of a built-in dataset from its `.data` file or folder, else None.

    A folder this module generated holds its ``manifest.json`` beside the ``.data``
    file; a user's dataset does not. So a run given the generated ``.data`` path (as
    the pipeline passes it on) knows it trains on the built-in data too.
    """
    if source is None:
        return None
    path = Path(source)
    manifest = _read_manifest(path if path.is_dir() else path.parent)
    if manifest is None or manifest.get("generator") != "yolo_slim.data.synthetic":
        return None
    preset = manifest.get("preset")
    return str(preset) if preset is not None else None


def _same(existing: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    return existing is not None and all(existing.get(k) == v for k, v in wanted.items())


def _render(preset: SyntheticPreset, params: dict[str, Any], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if preset.name == "aerial":
        return render_aerial(rng, params["img_size"], params["max_objects"],
                             min_size=params["min_size"], max_size=params["max_size"])
    return render_image(rng, params["img_size"], params["max_objects"], min_size=params["min_size"],
                        max_size=params["max_size"], class_colour=params["class_colour"])


def _write_one(folder: Path, preset: SyntheticPreset, params: dict[str, Any], split: str, split_id: int,
               i: int) -> tuple[str, int]:
    """Renders and writes image ``i`` of ``split`` with its label file beside it (same stem)."""
    rng = np.random.default_rng([params["seed"], split_id, i])
    image, labels = _render(preset, params, rng)
    quality = int(rng.integers(75, 96))
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise DataError(f"{folder}: JPEG encoding failed for {split} image {i}")
    rel = f"images/{split}/{i:06d}.jpg"
    (folder / rel).write_bytes(encoded.tobytes())
    lines = "".join(f"{int(c)} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, x, y, w, h in labels)
    (folder / "images" / split / f"{i:06d}.txt").write_text(lines, encoding="utf-8")
    return rel, len(labels)


def _write(folder: Path, preset: SyntheticPreset, params: dict[str, Any], final: Path) -> dict[str, Any]:
    """Writes the dataset into ``folder``; list and ``.data`` paths name ``final``, where it is moved."""
    counts: dict[str, Any] = {}
    for split, split_id in _SPLITS:
        (folder / "images" / split).mkdir(parents=True)
        n = params["n_train"] if split == "train" else params["n_val"]
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # OpenCV drawing releases the GIL
            results = list(pool.map(lambda i: _write_one(folder, preset, params, split, split_id, i), range(n)))
        (folder / f"{split}.txt").write_text("".join(f"{final / r}\n" for r, _ in results), encoding="utf-8")
        counts[split] = {"images": n, "boxes": sum(b for _, b in results)}
    (folder / _NAMES_NAME).write_text("\n".join(preset.names) + "\n", encoding="utf-8")
    (folder / _DATA_NAME).write_text(
        f"# yolo_slim built-in synthetic dataset, preset {preset.name} (generated, do not edit)\n"
        f"classes = {len(preset.names)}\ntrain = {final / 'train.txt'}\nvalid = {final / 'val.txt'}\n"
        f"names = {final / _NAMES_NAME}\n",
        encoding="utf-8",
    )
    manifest = dict(_manifest(preset, params, final), counts=counts)
    (folder / _MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def make_synthetic_dataset(
    root: str | Path,
    *,
    preset: str | None = None,
    n_train: int | None = None,
    n_val: int | None = None,
    img_size: int | None = None,
    seed: int | None = None,
    max_objects: int | None = None,
    min_size: float | None = None,
    max_size: float | None = None,
    class_colour: float | None = None,
) -> Path:
    """Generates (or reuses) the built-in dataset in ``root``.

    The layout is the one darknet itself reads: each label file beside its image
    (``images/train/000000.jpg`` and ``images/train/000000.txt``), absolute paths
    in ``train.txt``, ``val.txt`` and ``synthetic.data``.

    Args:
        root: Dataset folder. Reused if its ``manifest.json`` matches the preset,
            the parameters, the generator version and the folder's own path;
            replaced if it holds a synthetic dataset with other parameters; never
            overwritten otherwise.
        preset: ``"demo"`` (default) or ``"aerial"`` (:data:`PRESETS`).
        n_train: Number of training images.
        n_val: Number of validation images.
        img_size: Image side in pixels (square images).
        seed: Seed; the same seed gives byte-identical images and labels.
        max_objects: Most labelled objects per image.
        min_size, max_size: Object size range, fractions of the image side.
        class_colour: ``demo`` only: probability that an object takes its class's
            hue family (0: classes differ by shape alone).

        Options left None take the preset's default.

    Returns:
        Path of the dataset's ``.data`` file.

    Raises:
        ConfigError: A parameter is out of range or does not apply to the preset.
        DataError: ``root`` exists and is not a synthetic dataset, or writing failed.
    """
    kind = _preset(preset)
    params = _params(kind, {"n_train": n_train, "n_val": n_val, "img_size": img_size, "seed": seed,
                            "max_objects": max_objects, "min_size": min_size, "max_size": max_size,
                            "class_colour": class_colour})
    root = Path(root).absolute()
    wanted = _manifest(kind, params, root)
    if root.exists():
        existing = _read_manifest(root)
        if _same(existing, wanted) and (root / _DATA_NAME).exists():
            return root / _DATA_NAME
        if existing is None or existing.get("generator") != wanted["generator"]:
            raise DataError(f"{root}: exists and is not a yolo_slim synthetic dataset; refusing to overwrite it")

    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    start = time.perf_counter()
    try:
        _write(tmp, kind, params, root)
        if root.exists():  # a synthetic dataset with other parameters (or a racing writer)
            if _same(_read_manifest(root), wanted):
                shutil.rmtree(tmp)
                return root / _DATA_NAME
            trash = root.parent / f".{root.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(root, trash)
            os.replace(tmp, root)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            try:
                os.replace(tmp, root)
            except OSError:
                if not _same(_read_manifest(root), wanted):
                    raise
                shutil.rmtree(tmp)  # another process finished the same dataset first
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(f"{root}: cannot write the synthetic dataset: {err}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _log.info(
        "built-in dataset (%s): %d train + %d val images at %d px written to %s in %.1f s",
        kind.name, params["n_train"], params["n_val"], params["img_size"], root, time.perf_counter() - start,
    )
    return root / _DATA_NAME
