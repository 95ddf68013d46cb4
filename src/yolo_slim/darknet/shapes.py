"""Output shapes of every darknet layer, by darknet's own size rules.

`infer_shapes(cfg, (h, w))` gives each layer's `(channels, height, width)`;
`shape_problems(cfg)` lists what cannot be built at the `[net]` size.

`max_stride(cfg)` and `check_input_size(cfg, size, key)` are the one input-size rule
of every app (train, prune, export, detect, the pipeline): a size is valid when it is
a multiple of the network's largest stride, so every layer's map has an exact size and
each head's stride is the integer darknet assumes.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import NamedTuple

from yolo_slim.darknet import limits

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
    params = 0
    for index, s in enumerate(cfg.layers):
        where = f"{cfg.source}:{s.line}: [{section_name(s)}] (layer {index})"
        if isinstance(s, ConvSection):
            c_in = shapes[index - 1].c if index > 0 else image.c
            params += s.filters * (c_in // s.groups) * s.size * s.size + s.filters
        shape = _layer_shape(index, s, shapes, image, problems, where)
        if shape.h < 1 or shape.w < 1:
            problems.append(f"{where} output would be {shape.h}x{shape.w} at input {hw[0]}x{hw[1]}; the input is too small")
            shape = Shape(shape.c, max(shape.h, 1), max(shape.w, 1))
        elif shape.h > limits.MAX_INPUT_SIZE * limits.MAX_LAYER_STRIDE or shape.w > limits.MAX_INPUT_SIZE * limits.MAX_LAYER_STRIDE:
            problems.append(f"{where} output would be {shape.h}x{shape.w}: upsampled beyond any plausible size")
            shape = Shape(shape.c, min(shape.h, limits.MAX_INPUT_SIZE), min(shape.w, limits.MAX_INPUT_SIZE))
        shapes.append(shape)
    if params > limits.MAX_PARAMS:
        problems.append(
            f"{cfg.source}: the network has {params:,} parameters, more than the plausible {limits.MAX_PARAMS:,} "
            f"(a {4 * params / 2**30:,.0f} GiB .weights file); check the filters= values"
        )
    return shapes, problems


def _head_problems(cfg) -> list[str]:
    """Heads that disagree with the first one on the class count."""
    heads = [(i, cfg.layers[i]) for i, s in enumerate(cfg.layers) if isinstance(s, YoloSection)]
    if not heads:
        return []
    first_id, first = heads[0]
    return [
        f"{cfg.source}:{h.line}: [yolo] (layer {i}) classes={h.classes}, but the first head (layer {first_id}, line {first.line}) "
        f"has classes={first.classes}; every head must predict the same classes"
        for i, h in heads[1:]
        if h.classes != first.classes
    ]


def shape_problems(cfg) -> list[str]:
    """Every problem of `cfg` at its `[net]` size, as `path:line: ...` strings: shapes,
    heads that disagree on classes, an input size off the largest stride, the
    parameter count."""
    problems = _head_problems(cfg)
    size = input_size_problem(cfg, cfg.input_hw, f"{cfg.source}:{cfg.net.line}: [net] width={cfg.net.width} height={cfg.net.height}")
    if size:
        problems.append(size)
    return problems + _infer(cfg, cfg.input_hw)[1]


def layer_strides(cfg) -> list[Fraction]:
    """Per layer, input pixels per output cell, from the layer types alone (no sizes).

    Convolutions and maxpools multiply by their stride, upsampling divides, a route
    takes its first input's, everything else its input's.
    """
    strides: list[Fraction] = []
    for index, s in enumerate(cfg.layers):
        prev = strides[index - 1] if index > 0 else Fraction(1)
        if isinstance(s, (ConvSection, MaxPoolSection)):
            strides.append(prev * s.stride)
        elif isinstance(s, UpsampleSection):
            strides.append(prev / s.stride)
        elif isinstance(s, RouteSection):
            strides.append(strides[s.sources[0]] if 0 <= s.sources[0] < index else prev)
        else:
            strides.append(prev)
    return strides


def max_stride(cfg) -> int:
    """The network's largest stride: every input size must be a multiple of it (32 for the zoo)."""
    return math.lcm(1, *(f.numerator for f in layer_strides(cfg)))


def input_size_problem(cfg, hw: tuple[int, int] | int, where: str) -> str | None:
    """Why `hw` (pixels; an int is square) is no valid input size of `cfg`, or None.

    Args:
        where: what set the size, for the message (a file:line or a config key).
    """
    h, w = (hw, hw) if isinstance(hw, int) else hw
    if isinstance(h, bool) or isinstance(w, bool) or not isinstance(h, int) or not isinstance(w, int):
        return f"{where}: expected an input size in pixels (an integer), got {hw!r}"
    stride = max_stride(cfg)
    if not (stride <= h <= limits.MAX_INPUT_SIZE and stride <= w <= limits.MAX_INPUT_SIZE):
        return f"{where}: input size {h}x{w} is outside {stride}..{limits.MAX_INPUT_SIZE} pixels"
    if h % stride or w % stride:
        nearest = "x".join(str(max(stride, round(v / stride) * stride)) for v in (h, w))
        return (
            f"{where}: input size {h}x{w} is not a multiple of {stride}, the network's largest stride "
            f"({cfg.source}); use e.g. {nearest}"
        )
    return None


def check_input_size(cfg, hw: tuple[int, int] | int, key: str) -> None:
    """Refuse an input size that is not a multiple of `max_stride(cfg)` (or out of bounds).

    The one size rule of every app: call it with the config key that set the size.

    Args:
        cfg: the network (a `DarknetCfg`).
        hw: (height, width) in pixels, or one int for a square input.
        key: what set the size, e.g. ``"export.img_size"``, named in the message.

    Raises:
        CfgError: ``"export.img_size=63: input size 63x63 is not a multiple of 32, ..."``.
    """
    shown = hw if isinstance(hw, int) else "x".join(map(str, hw))
    problem = input_size_problem(cfg, hw, f"{key}={shown}")
    if problem:
        raise CfgError(problem)


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
