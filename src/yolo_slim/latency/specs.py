"""Layer specs: the shape of one timed operation, the key of the latency table.

A spec holds everything the deployed graph's cost of one darknet layer depends on
(batch 1): for a conv its input and output channels, kernel, stride, padding, groups,
input height and width and activation; for the other layers their channels and
sizes. `layer_specs(cfg)` turns a network into the list of specs its exported graph
runs, in layer order; `spec_key(spec)` is the stable text key the table stores.

Channel counts are the only fields a pruning plan changes, so every spec says which
of its fields are channel axes (`channel_axes`) and how a cost behaves along them:
`"stair"` for output channels (SIMD blocks: a count costs like the next block
multiple) and `"linear"` for a conv's input channels.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal, Union

from yolo_slim.darknet.cfg import DarknetCfg
from yolo_slim.darknet.sections import (
    ConvSection,
    MaxPoolSection,
    RouteSection,
    ShortcutSection,
    UpsampleSection,
    YoloSection,
)
from yolo_slim.darknet.shapes import Shape, image_shape, infer_shapes

AxisKind = Literal["stair", "linear"]


class _ChannelsSpec:
    """Ops whose one channel axis is the map's `c`, costing like the next SIMD block."""

    def channel_axes(self) -> dict[str, AxisKind]:
        return {"c": "stair"}

    def with_channels(self, **channels: int):
        return dataclasses.replace(self, **channels)  # type: ignore[type-var]  # a dataclass subclass


class _FixedSpec:
    """Ops no pruning plan changes."""

    def channel_axes(self) -> dict[str, AxisKind]:
        return {}

    def with_channels(self, **channels: int):
        return self


@dataclass(frozen=True)
class ConvSpec:
    """`[convolutional]` with its BatchNorm folded into a bias, then the activation.

    Attributes:
        cin, cout: input and output channels.
        size, stride, padding: kernel side, stride and zero padding per side (pixels).
        groups: 1, or the group count (depthwise: groups == cin == cout).
        h, w: input height and width (pixels).
        activation: darknet activation name.
        image_input: the layer reads the network input, so the plugin's reorder of the
            image into the conv's layout is part of its cost.
    """

    cin: int
    cout: int
    size: int
    stride: int
    padding: int
    groups: int
    h: int
    w: int
    activation: str
    image_input: bool = False

    kind = "conv"

    @property
    def depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.cin == self.cout

    def channel_axes(self) -> dict[str, AxisKind]:
        if self.depthwise:
            return {"cout": "stair"}
        return {"cin": "linear", "cout": "stair"}

    def with_channels(self, **channels: int) -> "ConvSpec":
        if self.depthwise:
            c = channels.get("cout", self.cout)
            return dataclasses.replace(self, cin=c, cout=c, groups=c)
        return dataclasses.replace(self, **channels)


@dataclass(frozen=True)
class PoolSpec(_ChannelsSpec):
    """`[maxpool]`: darknet's -inf padding (`padding` total, half before) then max pooling."""

    c: int
    h: int
    w: int
    size: int
    stride: int
    padding: int

    kind = "maxpool"


@dataclass(frozen=True)
class UpsampleSpec(_ChannelsSpec):
    """`[upsample]`: nearest-neighbour resize of a `c` x `h` x `w` map by `stride`."""

    c: int
    h: int
    w: int
    stride: int

    kind = "upsample"


@dataclass(frozen=True)
class AddSpec(_ChannelsSpec):
    """`[shortcut]`: the sum of `inputs` maps of `c` x `h` x `w`, then the activation."""

    c: int
    h: int
    w: int
    inputs: int
    activation: str

    kind = "shortcut"


@dataclass(frozen=True)
class ConcatSpec(_ChannelsSpec):
    """A `[route]` of several inputs: channel concatenation of `parts` channels each."""

    parts: tuple[int, ...]
    h: int
    w: int

    kind = "concat"

    @property
    def c(self) -> int:
        return sum(self.parts)

    def with_channels(self, **channels: int) -> "ConcatSpec":
        """The same number of parts holding `c` channels in all, split as evenly as
        the current parts are (used for grid points of the total)."""
        total = channels.get("c", self.c)
        n = len(self.parts)
        base = [total * p // max(self.c, 1) for p in self.parts]
        for i in range(total - sum(base)):
            base[i % n] += 1
        return dataclasses.replace(self, parts=tuple(max(b, 1) for b in base))


@dataclass(frozen=True)
class SliceSpec(_ChannelsSpec):
    """The channel slice of a split `[route]` (`groups` > 1): block `group_id` of `c`."""

    c: int
    h: int
    w: int
    groups: int
    group_id: int

    kind = "slice"


@dataclass(frozen=True)
class DecodeSpec(_FixedSpec):
    """`[yolo]`: reshape a head map to `anchors` x `outputs` per cell and decode it."""

    anchors: int
    outputs: int
    h: int
    w: int
    new_coords: bool

    kind = "decode"


@dataclass(frozen=True)
class HeadConcatSpec(_FixedSpec):
    """The concatenation of every head's decoded rows into the one output `[1, N, outputs]`."""

    rows: tuple[int, ...]
    outputs: int

    kind = "heads"


Spec = Union[ConvSpec, PoolSpec, UpsampleSpec, AddSpec, ConcatSpec, SliceSpec, DecodeSpec, HeadConcatSpec]
SPEC_TYPES: dict[str, type] = {t.kind: t for t in (ConvSpec, PoolSpec, UpsampleSpec, AddSpec, ConcatSpec, SliceSpec, DecodeSpec, HeadConcatSpec)}
HEADS_LAYER = -2
"""The layer id `layer_specs` gives the final concatenation of the heads (no darknet layer)."""


def spec_key(spec: Spec) -> str:
    """A stable, readable text key, e.g. `conv cin=64 cout=128 size=3 ... image_input=0`."""
    parts = []
    for f in dataclasses.fields(spec):
        v = getattr(spec, f.name)
        if isinstance(v, bool):
            v = int(v)
        elif isinstance(v, tuple):
            v = "+".join(str(x) for x in v)
        parts.append(f"{f.name}={v}")
    return f"{spec.kind} " + " ".join(parts)


def spec_from_key(key: str) -> Spec:
    """Inverse of `spec_key`.

    Raises:
        ValueError: not a key `spec_key` writes.
    """
    kind, _, rest = key.partition(" ")
    cls = SPEC_TYPES.get(kind)
    if cls is None:
        raise ValueError(f"unknown spec kind {kind!r} in key {key!r}")
    values = dict(item.split("=", 1) for item in rest.split())
    kwargs: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        raw = values[f.name]
        if f.type in ("bool",):
            kwargs[f.name] = raw == "1"
        elif f.type.startswith("tuple"):
            kwargs[f.name] = tuple(int(x) for x in raw.split("+"))
        elif f.type == "str":
            kwargs[f.name] = raw
        else:
            kwargs[f.name] = int(raw)
    return cls(**kwargs)


def _route_specs(s: RouteSection, shapes: list[Shape], out: Shape, image: Shape) -> list[Spec]:
    srcs = [image if i < 0 else shapes[i] for i in s.sources]
    specs: list[Spec] = []
    parts = []
    for src in srcs:
        if s.groups > 1:
            specs.append(SliceSpec(src.c, src.h, src.w, s.groups, s.group_id))
            parts.append(src.c // s.groups)
        else:
            parts.append(src.c)
    if len(parts) > 1:
        specs.append(ConcatSpec(tuple(parts), out.h, out.w))
    return specs


def layer_specs(cfg: DarknetCfg, hw: tuple[int, int] | int | None = None) -> list[tuple[int, Spec]]:
    """The timed operations of `cfg`'s exported graph at input `hw`, in layer order.

    A route of one unsplit input is free (no op), a split route is one slice per
    input, a route of several inputs adds a concatenation; every `[yolo]` is a
    decode, and a network with several heads ends with their concatenation
    (layer id `HEADS_LAYER`).

    Returns:
        (darknet layer id, spec) pairs; a layer may give several specs or none.

    Raises:
        CfgError: the network cannot be built at that size.
    """
    image = image_shape(cfg, hw)
    shapes = infer_shapes(cfg, (image.h, image.w))
    out: list[tuple[int, Spec]] = []
    rows = []
    outputs = 0
    for i, s in enumerate(cfg.layers):
        prev = shapes[i - 1] if i > 0 else image
        shape = shapes[i]
        if isinstance(s, ConvSection):
            out.append((i, ConvSpec(prev.c, s.filters, s.size, s.stride, s.padding_px, s.groups, prev.h, prev.w, s.activation, i == 0)))
        elif isinstance(s, MaxPoolSection):
            out.append((i, PoolSpec(prev.c, prev.h, prev.w, s.size, s.stride, s.padding)))
        elif isinstance(s, UpsampleSection):
            if s.stride != 1:
                out.append((i, UpsampleSpec(prev.c, prev.h, prev.w, s.stride)))
        elif isinstance(s, ShortcutSection):
            out.append((i, AddSpec(shape.c, shape.h, shape.w, 1 + len(s.sources), s.activation)))
        elif isinstance(s, RouteSection):
            out.extend((i, spec) for spec in _route_specs(s, shapes, shape, image))
        elif isinstance(s, YoloSection):
            out.append((i, DecodeSpec(len(s.mask), s.outputs_per_anchor, prev.h, prev.w, bool(s.new_coords))))
            rows.append(len(s.mask) * prev.h * prev.w)
            outputs = s.outputs_per_anchor
    if len(rows) > 1:
        out.append((HEADS_LAYER, HeadConcatSpec(tuple(rows), outputs)))
    return out
