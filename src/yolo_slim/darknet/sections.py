"""Typed darknet cfg sections and `DarknetCfg`, the network they make up.

One frozen dataclass per supported darknet layer type. Every layer reference is an
absolute layer id (0-based, `[net]` not counted), resolved once by the parser, so
nothing downstream does index arithmetic. Keys that only darknet's trainer reads
(jitter, ignore_thresh, ...) are kept verbatim in `extra` and written back.

`line` records where the section started in its file (for error messages) and
takes no part in equality, so `parse(write(parse(x))) == parse(x)`.

The few rules about neighbouring layers live here too (`previous_layer`,
`layer_input`, `layer_inputs`), so no other package computes layer ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar, Union

T = TypeVar("T")

Activation = Literal["leaky", "relu", "mish", "swish", "logistic", "linear"]
ACTIVATIONS: tuple[str, ...] = ("leaky", "relu", "mish", "swish", "logistic", "linear")

Extra = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class NetSection:
    """The `[net]` section: input size plus every training hyper-parameter verbatim.

    Attributes:
        width, height: network input size in pixels.
        channels: input channels (3 for BGR/RGB images).
        options: every key of the section, in file order, as written.
    """

    width: int
    height: int
    channels: int
    options: Extra = ()
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class ConvSection:
    """`[convolutional]`: conv, optional BatchNorm, activation.

    `pad=1` means darknet's "same" padding, `size // 2`; otherwise `padding` pixels.
    """

    filters: int
    size: int = 1
    stride: int = 1
    pad: int = 0
    padding: int = 0
    groups: int = 1
    batch_normalize: int = 0
    activation: str = "logistic"
    extra: Extra = ()
    line: int = field(default=0, compare=False)

    @property
    def padding_px(self) -> int:
        """Zero padding on each side, in pixels."""
        return self.size // 2 if self.pad else self.padding

    def is_depthwise(self, in_channels: int) -> bool:
        """Whether this conv is depthwise at `in_channels` inputs (groups == inputs ==
        filters, more than one): input channel c feeds output channel c alone."""
        return self.groups > 1 and self.groups == in_channels == self.filters


@dataclass(frozen=True)
class ShortcutSection:
    """`[shortcut]`: element-wise sum of the previous layer and `sources`."""

    sources: tuple[int, ...]
    activation: str = "linear"
    relative: tuple[bool, ...] = ()
    extra: Extra = ()
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class RouteSection:
    """`[route]`: concatenation of `sources` along channels.

    With `groups > 1` each source contributes only its `group_id`-th channel slice
    of size `channels // groups` (the CSP split of the tiny models).
    """

    sources: tuple[int, ...]
    groups: int = 1
    group_id: int = 0
    relative: tuple[bool, ...] = ()
    extra: Extra = ()
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class MaxPoolSection:
    """`[maxpool]`: `padding` is darknet's total padding (default `size - 1`).

    Darknet puts `padding // 2` before and the rest after, padding with -inf.
    """

    size: int
    stride: int
    padding: int
    extra: Extra = ()
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class UpsampleSection:
    """`[upsample]`: nearest-neighbour upsampling by an integer `stride`."""

    stride: int = 2
    extra: Extra = ()
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class YoloSection:
    """`[yolo]`: a detection head decoding its input map.

    Attributes:
        mask: indices into `anchors` used by this head.
        anchors: all anchors of the network, (w, h) in input pixels.
        classes: number of classes.
        num: number of anchors in `anchors`.
        scale_x_y: darknet's grid-sensitivity factor (1.0 = plain sigmoid).
        new_coords: 1 for the scaled-YOLOv4 / YOLOv7 box parameterisation.
    """

    mask: tuple[int, ...]
    anchors: tuple[tuple[float, float], ...]
    classes: int
    num: int
    scale_x_y: float = 1.0
    new_coords: int = 0
    extra: Extra = ()
    line: int = field(default=0, compare=False)

    @property
    def head_anchors(self) -> tuple[tuple[float, float], ...]:
        """The (w, h) anchors this head predicts, in input pixels."""
        return tuple(self.anchors[m] for m in self.mask)

    @property
    def outputs_per_anchor(self) -> int:
        return self.classes + 5


LayerSection = Union[
    ConvSection, ShortcutSection, RouteSection, MaxPoolSection, UpsampleSection, YoloSection
]

@dataclass(frozen=True)
class DarknetCfg:
    """A parsed darknet network.

    Attributes:
        net: the `[net]` section.
        layers: layer sections; `layers[i]` is darknet layer i.
        source: where it was read from (a path, or `<zoo:name>`), for messages.
    """

    net: NetSection
    layers: tuple[LayerSection, ...]
    source: str = "<memory>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DarknetCfg):
            return NotImplemented
        return self.net == other.net and self.layers == other.layers

    def __hash__(self) -> int:
        return hash((self.net, self.layers))

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def input_hw(self) -> tuple[int, int]:
        return (self.net.height, self.net.width)

    def yolo_ids(self) -> list[int]:
        """Ids of the `[yolo]` layers, in order."""
        return [i for i, s in enumerate(self.layers) if isinstance(s, YoloSection)]

    def conv_ids(self) -> list[int]:
        """Ids of the `[convolutional]` layers, in order (the `.weights` order)."""
        return [i for i, s in enumerate(self.layers) if isinstance(s, ConvSection)]

    def inputs(self, index: int) -> tuple[int, ...]:
        """Absolute ids of the layers layer `index` reads (-1 = network input)."""
        return layer_inputs(index, self.layers[index])

    @property
    def num_classes(self) -> int:
        heads = [self.layers[i] for i in self.yolo_ids()]
        return heads[0].classes if heads else 0


SECTION_NAMES: dict[type, str] = {
    ConvSection: "convolutional",
    ShortcutSection: "shortcut",
    RouteSection: "route",
    MaxPoolSection: "maxpool",
    UpsampleSection: "upsample",
    YoloSection: "yolo",
}


def section_name(section: LayerSection) -> str:
    """The darknet header name of a section, e.g. `"convolutional"`."""
    return SECTION_NAMES[type(section)]


def previous_layer(index: int) -> int:
    """The id of the layer before layer `index`, what a layer reads unless its section
    names sources; -1 (the network input) for layer 0."""
    return index - 1


def layer_input(values: Sequence[T], index: int, network_input: T) -> T:
    """From a per-layer sequence (shapes, channel positions, ...), the entry layer `index`
    reads as its input: the previous layer's, or `network_input` for layer 0."""
    return values[index - 1] if index > 0 else network_input


def layer_inputs(index: int, section: LayerSection) -> tuple[int, ...]:
    """Absolute ids of the layers a layer reads; -1 stands for the network input."""
    if isinstance(section, RouteSection):
        return section.sources
    if isinstance(section, ShortcutSection):
        return (previous_layer(index), *section.sources)
    return (previous_layer(index),)
