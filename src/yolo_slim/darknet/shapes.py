"""Output shapes of every darknet layer, by darknet's own size rules.

`infer_shapes(cfg, (h, w))` gives each layer's `(channels, height, width)`;
`shape_problems(cfg)` lists what cannot be built at the `[net]` size.
"""

from __future__ import annotations

from typing import NamedTuple

from yolo_slim.darknet.sections import (
    ConvSection,
    LayerSection,
    MaxPoolSection,
    RouteSection,
    ShortcutSection,
    UpsampleSection,
    YoloSection,
    section_name,
)
from yolo_slim.errors import CfgError


class Shape(NamedTuple):
    """A feature map's channels, height and width."""

    c: int
    h: int
    w: int


def conv_out(size_in: int, kernel: int, stride: int, padding: int) -> int:
    """Darknet conv output size: (in + 2*padding - kernel) // stride + 1."""
    return (size_in + 2 * padding - kernel) // stride + 1


def maxpool_out(size_in: int, kernel: int, stride: int, padding: int) -> int:
    """Darknet maxpool output size, `padding` being the total padding."""
    return (size_in + padding - kernel) // stride + 1


def route_channels(source: Shape, groups: int) -> int:
    """Channels one route input contributes (its `1/groups` slice)."""
    return source.c // groups


def _layer_shape(index: int, s: LayerSection, shapes: list[Shape], image: Shape, problems: list[str], where: str) -> Shape:
    prev = shapes[index - 1] if index > 0 else image
    if isinstance(s, ConvSection):
        if prev.c % s.groups or s.filters % s.groups:
            problems.append(f"{where} groups={s.groups} must divide input channels {prev.c} and filters {s.filters}")
        h = conv_out(prev.h, s.size, s.stride, s.padding_px)
        w = conv_out(prev.w, s.size, s.stride, s.padding_px)
        return Shape(s.filters, h, w)
    if isinstance(s, MaxPoolSection):
        return Shape(prev.c, maxpool_out(prev.h, s.size, s.stride, s.padding), maxpool_out(prev.w, s.size, s.stride, s.padding))
    if isinstance(s, UpsampleSection):
        return Shape(prev.c, prev.h * s.stride, prev.w * s.stride)
    if isinstance(s, ShortcutSection):
        for src in s.sources:
            other = shapes[src]
            if other != prev:
                problems.append(
                    f"{where} from={src - index} (layer {src}, shape {tuple(other)}) does not match the previous layer {index - 1} "
                    f"(shape {tuple(prev)}); shortcut inputs must have equal shapes"
                )
        return prev
    if isinstance(s, RouteSection):
        first = shapes[s.sources[0]]
        channels = 0
        for src in s.sources:
            other = shapes[src]
            if (other.h, other.w) != (first.h, first.w):
                problems.append(
                    f"{where} layers: input layer {src} is {other.h}x{other.w} but layer {s.sources[0]} is {first.h}x{first.w}; "
                    "route inputs must have the same spatial size"
                )
            if other.c % s.groups:
                problems.append(f"{where} groups={s.groups} does not divide the {other.c} channels of layer {src}")
            channels += route_channels(other, s.groups)
        return Shape(channels, first.h, first.w)
    if isinstance(s, YoloSection):
        expected = len(s.mask) * (s.classes + 5)
        if prev.c != expected:
            problems.append(
                f"{where} the layer before this head has {prev.c} filters; expected len(mask) * (classes + 5) = "
                f"{len(s.mask)} * ({s.classes} + 5) = {expected}"
            )
        return prev
    raise TypeError(type(s))  # pragma: no cover


def _infer(cfg, hw: tuple[int, int]) -> tuple[list[Shape], list[str]]:
    image = Shape(cfg.net.channels, hw[0], hw[1])
    shapes: list[Shape] = []
    problems: list[str] = []
    for index, s in enumerate(cfg.layers):
        where = f"{cfg.source}:{s.line}: [{section_name(s)}] (layer {index})"
        shape = _layer_shape(index, s, shapes, image, problems, where)
        if shape.h < 1 or shape.w < 1:
            problems.append(f"{where} output would be {shape.h}x{shape.w} at input {hw[0]}x{hw[1]}; the input is too small")
            shape = Shape(shape.c, max(shape.h, 1), max(shape.w, 1))
        shapes.append(shape)
    return shapes, problems


def shape_problems(cfg) -> list[str]:
    """Every shape problem of `cfg` at its `[net]` size, as `path:line: ...` strings."""
    return _infer(cfg, cfg.input_hw)[1]


def image_shape(cfg, hw: tuple[int, int] | int | None = None) -> Shape:
    """The network input's shape at `hw` (an int is square; default: the `[net]` size)."""
    if hw is None:
        hw = cfg.input_hw
    elif isinstance(hw, int):
        hw = (hw, hw)
    return Shape(cfg.net.channels, hw[0], hw[1])


def infer_shapes(cfg, hw: tuple[int, int] | int | None = None) -> list[Shape]:
    """Output shape of every layer at input size `hw` (default: the `[net]` size).

    Raises:
        CfgError: if the network cannot be built at that size.
    """
    image = image_shape(cfg, hw)
    hw = (image.h, image.w)
    shapes, problems = _infer(cfg, hw)
    if problems:
        raise CfgError(f"{cfg.source}: cannot build the network at {hw[0]}x{hw[1]}:\n  " + "\n  ".join(problems))
    return shapes
