"""The ``aerial`` preset of the built-in dataset: small vehicles in overhead image tiles.

It stands in for what users most often bring: about a hundred aerial tiles with
many small objects of one class. One class, ``vehicle``; per tile 5 to
``max_objects`` of them, ``min_size``..``max_size`` of the tile side long (default
10-37 px at 416 px, log-uniform; one in six is a truck, up to 1.6 times longer).

A tile is drawn in layers, each seeded from the tile's own generator:

* terrain: a blend of grass, soil and concrete cover with coarse and fine texture;
* roads (1-3, with lane and edge markings) and sometimes a parking lot with bays;
* buildings with roof detail and small roof units, trees and bushes with shadows;
* vehicles: on road lanes along the road, in parking bays, or anywhere; body
  colours drawn from a real-car palette (white, grey, silver, black most often,
  so many have little contrast to asphalt), windows, a shadow cast away from one
  sun direction per tile;
* unlabelled distractors of vehicle size: sheds, roof units, shipping containers,
  road arrows, rocks; trees drawn over some vehicles (each keeps >= 50% visible);
* the camera: colour cast, haze, blur (sigma 0.4-1.1 px), sensor noise; the
  writer then applies JPEG compression.

Boxes are the axis-aligned extent of the vehicle body (not its shadow), clipped to
the tile; a vehicle less than 60% inside the tile is not drawn. The difficulty is
deliberate and not tuned to any model: small, low-contrast, blurred objects among
look-alikes, as in real tiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["AERIAL_NAMES", "render_aerial"]

AERIAL_NAMES: tuple[str, ...] = ("vehicle",)
"""Class names of the aerial preset."""

# (weight, BGR mean) of vehicle body colours, roughly the world's car colour shares
_CAR_COLOURS = (
    (0.24, (232, 234, 236)),  # white
    (0.18, (188, 190, 193)),  # silver
    (0.16, (118, 120, 124)),  # grey
    (0.18, (34, 34, 36)),     # black
    (0.08, (120, 60, 30)),    # blue
    (0.08, (40, 40, 175)),    # red
    (0.04, (140, 175, 195)),  # beige
    (0.04, (60, 95, 50)),     # green
)
_COVER = ((70, 122, 96), (98, 128, 150), (160, 166, 170))  # BGR grass, soil, concrete
_ROOFS = ((150, 150, 152), (70, 80, 150), (210, 212, 214), (60, 62, 66), (110, 130, 140))

_SHIFT = 4  # sub-pixel bits for OpenCV drawing
_K = 1 << _SHIFT


@dataclass(frozen=True)
class _Scene:
    """Per tile: side in pixels, shadow offset per unit of height, and where vehicles cannot go.

    ``blocked`` (bool ``[S, S]``, filled in as buildings, trees and sheds are drawn)
    keeps vehicles off roofs and tree crowns.
    """

    size: int
    sun: tuple[float, float]
    blocked: np.ndarray

    def block(self, pts: np.ndarray) -> None:
        np.logical_or(self.blocked, _mask(self.blocked.shape, pts), out=self.blocked)


def _poly(cx: float, cy: float, length: float, width: float, angle: float) -> np.ndarray:
    """Corners ``float32 [4, 2]`` of a rectangle centred at (cx, cy), long side along ``angle`` (radians)."""
    c, s = math.cos(angle), math.sin(angle)
    half = np.array([[length, width], [-length, width], [-length, -width], [length, -width]], np.float32) / 2
    rot = np.array([[c, -s], [s, c]], np.float32)
    return half @ rot.T + np.array([cx, cy], np.float32)


def _fill(canvas: np.ndarray, pts: np.ndarray, colour) -> None:
    cv2.fillPoly(canvas, [np.round(pts * _K).astype(np.int32)], colour, cv2.LINE_AA, _SHIFT)


def _window(pts: np.ndarray, shape: tuple[int, ...], margin: int = 0) -> tuple[slice, slice, np.ndarray]:
    """Rows and columns of ``shape`` around ``pts`` (clipped), and ``pts`` relative to that window."""
    x0 = min(max(int(math.floor(float(pts[:, 0].min()))) - margin, 0), shape[1])
    y0 = min(max(int(math.floor(float(pts[:, 1].min()))) - margin, 0), shape[0])
    x1 = min(max(int(math.ceil(float(pts[:, 0].max()))) + margin + 1, x0), shape[1])
    y1 = min(max(int(math.ceil(float(pts[:, 1].max()))) + margin + 1, y0), shape[0])
    return slice(y0, y1), slice(x0, x1), pts - np.array([x0, y0], np.float32)


def _mask(shape: tuple[int, int], pts: np.ndarray) -> np.ndarray:
    """bool ``shape``: the pixels inside the polygon ``pts``."""
    out = np.zeros(shape, bool)
    rows, cols, local = _window(pts, shape)
    if rows.stop > rows.start and cols.stop > cols.start:
        m = np.zeros((rows.stop - rows.start, cols.stop - cols.start), np.uint8)
        cv2.fillPoly(m, [np.round(local * _K).astype(np.int32)], 1, cv2.LINE_8, _SHIFT)
        out[rows, cols] = m.astype(bool)
    return out


def _shade(image: np.ndarray, pts: np.ndarray, offset: tuple[float, float], strength: float) -> None:
    """Darkens the shadow of the outline ``pts`` cast by ``offset`` pixels (soft edge)."""
    rows, cols, local = _window(pts + np.array(offset, np.float32), image.shape, margin=4)
    if rows.stop <= rows.start or cols.stop <= cols.start:
        return
    m = np.zeros((rows.stop - rows.start, cols.stop - cols.start), np.float32)
    _fill(m, local, 1.0)
    m = cv2.GaussianBlur(m, (0, 0), 1.0)
    image[rows, cols] *= 1.0 - strength * m[..., None]


def _noise(rng: np.random.Generator, size: int, cells: int, channels: int = 1) -> np.ndarray:
    """Smooth noise ``float32 [S, S, channels]``, zero mean, unit-ish amplitude."""
    base = rng.standard_normal((cells, cells, channels)).astype(np.float32)
    out = cv2.resize(base, (size, size), interpolation=cv2.INTER_CUBIC)
    return out.reshape(size, size, channels)


def _terrain(rng: np.random.Generator, size: int) -> np.ndarray:
    """Ground cover: soft blend of grass, soil and concrete with texture, float32 BGR."""
    fields = _noise(rng, size, int(rng.integers(2, 6)), 3) * np.float32(rng.uniform(2.0, 4.0))
    fields += rng.uniform(-1.5, 1.5, 3).astype(np.float32)
    weights = np.exp(fields - fields.max(axis=2, keepdims=True))
    weights /= weights.sum(axis=2, keepdims=True)
    cover = np.array(_COVER, np.float32) * rng.uniform(0.85, 1.15, (3, 1)).astype(np.float32)
    image = weights @ cover
    image += _noise(rng, size, int(rng.integers(12, 40))) * np.float32(rng.uniform(6, 16))
    fine = rng.standard_normal((size, size, 1)).astype(np.float32)
    image += cv2.GaussianBlur(fine, (0, 0), 0.8).reshape(size, size, 1) * np.float32(rng.uniform(8, 18))
    return image


def _road(rng: np.random.Generator, image: np.ndarray, scene: _Scene) -> tuple[np.ndarray, float, float, float]:
    """Draws one straight road across the tile; returns (centre point, angle, width, asphalt grey)."""
    s = scene.size
    centre = rng.uniform(0.15, 0.85, 2) * s
    angle = rng.uniform(0, math.pi)
    width = rng.uniform(0.06, 0.11) * s
    grey = rng.uniform(62, 112)
    pts = _poly(centre[0], centre[1], 3 * s, width, angle)
    _fill(image, pts, (grey, grey, grey * rng.uniform(0.97, 1.05)))
    direction = np.array([math.cos(angle), math.sin(angle)])
    normal = np.array([-direction[1], direction[0]])
    for side in (-1, 1):  # edge lines
        a = centre + normal * side * width * 0.44 - direction * 1.5 * s
        b = centre + normal * side * width * 0.44 + direction * 1.5 * s
        cv2.line(image, tuple(np.round(a * _K).astype(int)), tuple(np.round(b * _K).astype(int)),
                 (205, 205, 205), 1, cv2.LINE_AA, _SHIFT)
    if rng.random() < 0.7:  # dashed centre line, white or yellow
        colour = (210, 210, 210) if rng.random() < 0.6 else (60, 190, 220)
        dash, gap = rng.uniform(0.02, 0.04) * s, rng.uniform(0.02, 0.05) * s
        t = -1.5 * s
        while t < 1.5 * s:
            a, b = centre + direction * t, centre + direction * (t + dash)
            cv2.line(image, tuple(np.round(a * _K).astype(int)), tuple(np.round(b * _K).astype(int)),
                     colour, 1, cv2.LINE_AA, _SHIFT)
            t += dash + gap
    return centre, angle, width, grey


class _Vehicles:
    """Places vehicles without overlap and keeps track of how much of each stays visible."""

    def __init__(self, rng: np.random.Generator, image: np.ndarray, scene: _Scene, min_len: float, max_len: float) -> None:
        self.rng, self.image, self.scene = rng, image, scene
        self.min_len, self.max_len = min_len, max_len
        self.owner = np.full(image.shape[:2], -1, np.int32)
        self.polys: list[np.ndarray] = []
        self.visible: list[int] = []
        self.areas: list[int] = []

    def length(self, truck: bool) -> float:
        base = math.exp(self.rng.uniform(math.log(self.min_len), math.log(self.max_len)))
        return base * (self.rng.uniform(1.25, 1.6) if truck else 1.0)

    def add(self, cx: float, cy: float, angle: float, truck: bool | None = None) -> bool:
        """Draws a vehicle if it fits (inside the tile, not on another); returns whether it did."""
        rng = self.rng
        truck = bool(rng.random() < 1 / 6) if truck is None else truck
        length = self.length(truck)
        width = length * (rng.uniform(0.36, 0.42) if truck else rng.uniform(0.42, 0.52))
        pts = _poly(cx, cy, length, width, angle)
        s = self.scene.size
        full = _mask((s, s), pts)
        area_inside = int(full.sum())
        outline = cv2.contourArea(pts)
        if area_inside < max(4, 0.6 * outline) or (self.owner[full] >= 0).any():
            return False
        if self.scene.blocked[full].mean() > 0.1:  # not on a roof or a tree crown
            return False
        _shade(self.image, pts, (self.scene.sun[0] * 1.4, self.scene.sun[1] * 1.4), rng.uniform(0.3, 0.5))
        self._paint(pts, length, width, angle, truck)
        self.owner[full] = len(self.polys)
        self.polys.append(pts)
        self.visible.append(area_inside)
        self.areas.append(area_inside)
        return True

    def _paint(self, pts: np.ndarray, length: float, width: float, angle: float, truck: bool) -> None:
        rng = self.rng
        weights = np.array([w for w, _ in _CAR_COLOURS])
        base = np.array(_CAR_COLOURS[rng.choice(len(_CAR_COLOURS), p=weights / weights.sum())][1], np.float32)
        colour = np.clip(base * rng.uniform(0.85, 1.12) + rng.normal(0, 6, 3), 0, 255)
        centre = pts.mean(axis=0)
        d = np.array([math.cos(angle), math.sin(angle)], np.float32)
        _fill(self.image, pts, tuple(float(c) for c in colour))
        glass = tuple(float(c) for c in np.clip(rng.uniform(25, 60) + rng.normal(0, 4, 3), 0, 255))
        if truck:  # cab at the front, cargo box (often white) behind a gap
            box = np.clip(np.array((225, 226, 228), np.float32) * rng.uniform(0.75, 1.05), 0, 255) \
                if rng.random() < 0.6 else colour * rng.uniform(0.7, 1.0)
            c_box = centre - d * length * 0.14
            _fill(self.image, _poly(*c_box, length * 0.68, width * 0.98, angle), tuple(float(c) for c in box))
            _fill(self.image, _poly(*(centre + d * length * 0.33), length * 0.08, width * 0.8, angle), glass)
            return
        _fill(self.image, _poly(*(centre + d * length * 0.17), length * 0.14, width * 0.82, angle), glass)
        _fill(self.image, _poly(*(centre - d * length * 0.27), length * 0.10, width * 0.78, angle), glass)
        if rng.random() < 0.5:  # a roof slightly lighter or darker than the body
            roof = np.clip(colour * rng.uniform(0.85, 1.15), 0, 255)
            _fill(self.image, _poly(*(centre - d * length * 0.05), length * 0.3, width * 0.72, angle),
                  tuple(float(c) for c in roof))

    def occlude(self, pts: np.ndarray) -> bool:
        """Whether covering ``pts`` leaves every vehicle >= 50% visible; updates the counts if so."""
        covered = _mask(self.owner.shape, pts)
        hit = self.owner[covered]
        hit = hit[hit >= 0]
        if hit.size:
            lost = np.bincount(hit, minlength=len(self.visible))
            if any(self.visible[j] - lost[j] < 0.5 * self.areas[j] for j in np.nonzero(lost)[0]):
                return False
            for j in np.nonzero(lost)[0]:
                self.visible[j] -= int(lost[j])
        self.owner[covered] = -1
        return True

    def labels(self) -> np.ndarray:
        """float32 ``[M, 5]``: ``0, cx, cy, w, h`` normalised, clipped to the tile."""
        s = float(self.scene.size)
        rows = []
        for pts in self.polys:
            x1, y1 = max(float(pts[:, 0].min()), 0.0), max(float(pts[:, 1].min()), 0.0)
            x2, y2 = min(float(pts[:, 0].max()), s), min(float(pts[:, 1].max()), s)
            if x2 - x1 >= 2 and y2 - y1 >= 2:
                rows.append((0.0, (x1 + x2) / 2 / s, (y1 + y2) / 2 / s, (x2 - x1) / s, (y2 - y1) / s))
        return np.asarray(rows, np.float32).reshape(-1, 5)


def _parking_lot(rng: np.random.Generator, image: np.ndarray, scene: _Scene, bay: float) -> list[tuple[float, float, float]]:
    """Draws a lot with rows of bays; returns the bay centres and angles (x, y, angle)."""
    s = scene.size
    angle = rng.uniform(0, math.pi)
    rows, per_row = int(rng.integers(2, 5)), int(rng.integers(5, 12))
    bay_w, bay_l = bay * 0.62, bay * 1.25
    lot_w, lot_l = per_row * bay_w + bay_w, rows * bay_l * 1.6
    centre = rng.uniform(0.2, 0.8, 2) * s
    grey = rng.uniform(70, 150)
    _fill(image, _poly(centre[0], centre[1], lot_w, lot_l, angle), (grey, grey, grey))
    d = np.array([math.cos(angle), math.sin(angle)])
    n = np.array([-d[1], d[0]])
    bays = []
    for r in range(rows):
        row_c = centre + n * ((r - (rows - 1) / 2) * bay_l * 1.6)
        for k in range(per_row + 1):  # bay separator lines
            p = row_c + d * ((k - per_row / 2) * bay_w)
            a, b = p - n * bay_l / 2, p + n * bay_l / 2
            cv2.line(image, tuple(np.round(a * _K).astype(int)), tuple(np.round(b * _K).astype(int)),
                     (215, 215, 215), 1, cv2.LINE_AA, _SHIFT)
        for k in range(per_row):
            p = row_c + d * ((k + 0.5 - per_row / 2) * bay_w)
            bays.append((float(p[0]), float(p[1]), angle + math.pi / 2 + rng.normal(0, 0.04)))
    return bays


def _building(rng: np.random.Generator, image: np.ndarray, scene: _Scene, unit: float) -> None:
    """A roof with a ridge, roof units (vehicle-sized look-alikes) and its shadow."""
    s = scene.size
    cx, cy = rng.uniform(0, s, 2)
    length, width = rng.uniform(0.1, 0.3) * s, rng.uniform(0.08, 0.2) * s
    angle = rng.uniform(0, math.pi)
    pts = _poly(cx, cy, length, width, angle)
    height = rng.uniform(2.0, 5.0)
    _shade(image, pts, (scene.sun[0] * height, scene.sun[1] * height), rng.uniform(0.35, 0.55))
    roof = np.array(_ROOFS[int(rng.integers(len(_ROOFS)))], np.float32) * rng.uniform(0.85, 1.15)
    _fill(image, pts, tuple(float(c) for c in np.clip(roof, 0, 255)))
    scene.block(pts)
    if rng.random() < 0.5:  # a ridge: one half darker
        half = _poly(cx - math.sin(angle) * width / 4, cy + math.cos(angle) * width / 4, length, width / 2, angle)
        _fill(image, half, tuple(float(c) for c in roof * 0.82))
    for _ in range(int(rng.integers(0, 4))):
        u = rng.uniform(-0.35, 0.35, 2) * np.array([length, width])
        p = np.array([cx, cy]) + u[0] * np.array([math.cos(angle), math.sin(angle)]) \
            + u[1] * np.array([-math.sin(angle), math.cos(angle)])
        size = unit * rng.uniform(0.35, 0.8)
        _fill(image, _poly(p[0], p[1], size, size * rng.uniform(0.6, 1.0), angle), (198, 200, 202))


def _tree(rng: np.random.Generator, scene: _Scene, radius: float, cx: float, cy: float) -> np.ndarray:
    """Outline ``[N, 2]`` of a tree crown: a circle with a ragged edge."""
    t = np.linspace(0, 2 * math.pi, 18, endpoint=False)
    r = radius * (1 + rng.uniform(-0.18, 0.18, t.size))
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1).astype(np.float32)


def _paint_tree(rng: np.random.Generator, image: np.ndarray, scene: _Scene, pts: np.ndarray) -> None:
    _shade(image, pts, (scene.sun[0] * 2.5, scene.sun[1] * 2.5), rng.uniform(0.35, 0.5))
    green = np.array((45, 95, 55), np.float32) * rng.uniform(0.7, 1.25)
    _fill(image, pts, tuple(float(c) for c in green))
    inner = (pts - pts.mean(0)) * 0.55 + pts.mean(0) + rng.uniform(-1, 1, 2).astype(np.float32)
    _fill(image, inner, tuple(float(c) for c in green * 1.18))


def _distractor(rng: np.random.Generator, image: np.ndarray, scene: _Scene, unit: float) -> None:
    """One unlabelled object of about vehicle size: shed, container, road arrow or rock."""
    s = scene.size
    cx, cy = rng.uniform(0, s, 2)
    angle = rng.uniform(0, math.pi)
    kind = rng.choice(4, p=(0.35, 0.2, 0.2, 0.25))
    if kind == 0:  # shed: squarish, roof-coloured, with a shadow
        side = unit * rng.uniform(0.7, 1.3)
        pts = _poly(cx, cy, side, side * rng.uniform(0.7, 1.0), angle)
        _shade(image, pts, (scene.sun[0] * 1.8, scene.sun[1] * 1.8), 0.4)
        _fill(image, pts, tuple(float(c) for c in np.array(_ROOFS[int(rng.integers(len(_ROOFS)))]) * rng.uniform(0.8, 1.1)))
        scene.block(pts)
    elif kind == 1:  # shipping container: long, ridged, rust/blue/white
        length = unit * rng.uniform(1.6, 2.4)
        pts = _poly(cx, cy, length, length * 0.4, angle)
        colour = np.array(((40, 70, 150), (140, 90, 40), (215, 215, 215))[int(rng.integers(3))], np.float32)
        _shade(image, pts, (scene.sun[0] * 1.6, scene.sun[1] * 1.6), 0.4)
        _fill(image, pts, tuple(float(c) for c in colour * rng.uniform(0.8, 1.1)))
        scene.block(pts)
        d = np.array([math.cos(angle), math.sin(angle)])
        for t in np.linspace(-0.45, 0.45, 9):
            p = np.array([cx, cy]) + d * t * length
            _fill(image, _poly(p[0], p[1], 1.0, length * 0.38, angle), tuple(float(c) for c in colour * 0.75))
    elif kind == 2:  # painted road arrow
        length = unit * rng.uniform(0.8, 1.4)
        d = np.array([math.cos(angle), math.sin(angle)])
        n = np.array([-d[1], d[0]])
        c = np.array([cx, cy])
        shaft = _poly(cx, cy, length, length * 0.12, angle)
        head = np.array([c + d * length * 0.75, c + d * length * 0.4 + n * length * 0.2,
                         c + d * length * 0.4 - n * length * 0.2], np.float32)
        _fill(image, shaft, (215, 215, 215))
        _fill(image, head, (215, 215, 215))
    else:  # rock or bush: an irregular blob
        pts = _tree(rng, scene, unit * rng.uniform(0.25, 0.5), cx, cy)
        tone = rng.uniform(90, 170)
        _fill(image, pts, (tone * 0.95, tone, tone * 1.02))


def _camera(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Colour cast, haze, blur and sensor noise; returns uint8 BGR."""
    image *= rng.uniform(0.9, 1.1, 3).astype(np.float32)
    haze = np.float32(rng.uniform(0.0, 0.18))
    image *= 1 - haze
    image += haze * np.float32(rng.uniform(150, 210))
    image = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.4, 1.1)))
    image += rng.standard_normal(image.shape[:2] + (1,), dtype=np.float32) * np.float32(rng.uniform(2, 6))
    return np.clip(image, 0, 255, out=image).astype(np.uint8)


def render_aerial(
    rng: np.random.Generator,
    size: int,
    max_objects: int = 40,
    *,
    min_size: float = 0.025,
    max_size: float = 0.09,
) -> tuple[np.ndarray, np.ndarray]:
    """Renders one aerial tile and its vehicle labels (see the module docstring).

    Args:
        rng: The tile's own generator.
        size: Tile side in pixels.
        max_objects: Most vehicles per tile (at least ``max(1, max_objects // 8)``
            are attempted; the count is uniform in between).
        min_size, max_size: Car length range as fractions of the tile side.

    Returns:
        ``(image, labels)``: ``uint8 [size, size, 3]`` BGR and ``float32 [M, 5]``
        ``0, cx, cy, w, h`` normalised.
    """
    sun_angle = rng.uniform(0, 2 * math.pi)
    scene = _Scene(size, (math.cos(sun_angle) * size / 416, math.sin(sun_angle) * size / 416),
                   np.zeros((size, size), bool))
    image = _terrain(rng, size)
    unit = math.sqrt(min_size * max_size) * size  # a typical car length, pixels
    roads = [_road(rng, image, scene) for _ in range(int(rng.integers(1, 4)))]
    bays = _parking_lot(rng, image, scene, unit) if rng.random() < 0.55 else []
    for _ in range(int(rng.integers(0, 5))):
        _building(rng, image, scene, unit)
    for _ in range(int(rng.integers(2, 10))):  # trees and bushes under the vehicles' level
        pts = _tree(rng, scene, rng.uniform(0.4, 1.6) * unit, *rng.uniform(0, size, 2))
        _paint_tree(rng, image, scene, pts)
        scene.block(pts)
    for _ in range(int(rng.integers(2, 9))):
        _distractor(rng, image, scene, unit)

    vehicles = _Vehicles(rng, image, scene, min_size * size, max_size * size)
    wanted = int(rng.integers(max(1, max_objects // 8), max_objects + 1))
    rng.shuffle(bays)
    for _ in range(wanted * 4):  # attempts; crowded tiles may end with fewer
        if len(vehicles.polys) >= wanted:
            break
        where = rng.random()
        if bays and where < 0.45:
            x, y, a = bays.pop()
            vehicles.add(x + rng.normal(0, 0.5), y + rng.normal(0, 0.5), a, truck=False)
        elif where < 0.85:
            centre, angle, width, _ = roads[int(rng.integers(len(roads)))]
            t = rng.uniform(-0.75, 0.75) * size
            lane = width * rng.choice((-0.22, 0.22))
            d, n = np.array([math.cos(angle), math.sin(angle)]), np.array([-math.sin(angle), math.cos(angle)])
            p = centre + d * t + n * lane
            heading = angle + (math.pi if lane < 0 else 0.0) + rng.normal(0, 0.03)
            vehicles.add(float(p[0]), float(p[1]), heading)
        else:
            vehicles.add(*rng.uniform(0, size, 2), rng.uniform(0, math.pi))
    for _ in range(int(rng.integers(0, 5))):  # trees over the vehicles
        pts = _tree(rng, scene, rng.uniform(0.5, 1.4) * unit, *rng.uniform(0, size, 2))
        if vehicles.occlude(pts):
            _paint_tree(rng, image, scene, pts)
    return _camera(rng, image), vehicles.labels()
