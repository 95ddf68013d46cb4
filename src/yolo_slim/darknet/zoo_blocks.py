"""The model zoo's building blocks: layer sections, the blocks the papers describe,
and the six networks composed from them.

Each builder returns typed sections (`sections.py`) with references written as
upstream writes them (relative inside a block, absolute for taps into the backbone);
`Layers.add` turns them into absolute ids as the network grows, remembering the
style, so `writer.py` writes them back the upstream way. The table of networks
(anchors, schedules, default sizes) and the text output are `zoo.py`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from yolo_slim.darknet.sections import ConvSection, LayerSection, MaxPoolSection, RouteSection, ShortcutSection, UpsampleSection, YoloSection

Anchors = tuple[tuple[int, int], ...]


# Training-only [yolo] keys, in upstream's order. Values are kept as darknet writes them.
YOLO_TRAIN_V3: tuple[tuple[str, str], ...] = (
    ("jitter", ".3"),
    ("ignore_thresh", ".7"),
    ("truth_thresh", "1"),
    ("random", "1"),
)
YOLO_TRAIN_TINY_V4: tuple[tuple[str, str], ...] = (
    ("jitter", ".3"),
    ("scale_x_y", "1.05"),
    ("cls_normalizer", "1.0"),
    ("iou_normalizer", "0.07"),
    ("iou_loss", "ciou"),
    ("ignore_thresh", ".7"),
    ("truth_thresh", "1"),
    ("random", "0"),
    ("resize", "1.5"),
    ("nms_kind", "greedynms"),
    ("beta_nms", "0.6"),
)


def yolo_train_v4(scale_x_y: str, *, random: bool) -> tuple[tuple[str, str], ...]:
    """YOLOv4's [yolo] training keys; only grid sensitivity and multi-scale differ per head."""
    keys: list[tuple[str, str]] = [("jitter", ".3"), ("ignore_thresh", ".7"), ("truth_thresh", "1")]
    if random:
        keys.append(("random", "1"))
    keys += [
        ("scale_x_y", scale_x_y),
        ("iou_thresh", "0.213"),
        ("cls_normalizer", "1.0"),
        ("iou_normalizer", "0.07"),
        ("iou_loss", "ciou"),
        ("nms_kind", "greedynms"),
        ("beta_nms", "0.6"),
        ("max_delta", "5"),
    ]
    return tuple(keys)


# --------------------------------------------------------------------------- sections


def _absolute(section: LayerSection, index: int) -> LayerSection:
    """A route or shortcut built with references as written (negative: relative to
    the layer) turned into `sections.py`'s absolute ids, remembering the style."""
    if not isinstance(section, (RouteSection, ShortcutSection)):
        return section
    refs = section.sources
    return replace(section, sources=tuple(index + r if r < 0 else r for r in refs), relative=tuple(r < 0 for r in refs))


def conv(filters: int, size: int, stride: int = 1, activation: str = "leaky", bn: bool = True) -> ConvSection:
    """A ``[convolutional]`` section with 'same' padding (``pad=1``)."""
    return ConvSection(filters=filters, size=size, stride=stride, pad=1, batch_normalize=int(bn), activation=activation)


def shortcut(from_: int, activation: str = "linear") -> ShortcutSection:
    """A ``[shortcut]`` section adding layer ``from_`` (as written) to the previous layer."""
    return ShortcutSection(sources=(from_,), activation=activation)


def route(*layers: int, groups: int | None = None, group_id: int | None = None) -> RouteSection:
    """A ``[route]`` section concatenating ``layers`` (as written; or one channel group of one layer)."""
    if groups is None:
        return RouteSection(sources=layers)
    return RouteSection(sources=layers, groups=groups, group_id=group_id or 0)


def maxpool(size: int, stride: int) -> MaxPoolSection:
    """A ``[maxpool]`` section (darknet's default padding, ``size - 1``)."""
    return MaxPoolSection(size=size, stride=stride, padding=size - 1)


def upsample(stride: int = 2) -> UpsampleSection:
    """An ``[upsample]`` (nearest neighbour) section."""
    return UpsampleSection(stride=stride)


def yolo(mask: Sequence[int], anchors: Anchors, classes: int, train_keys: Sequence[tuple[str, str]]) -> YoloSection:
    """A ``[yolo]`` detection section using the anchors at indices ``mask``; a
    ``scale_x_y`` among the training keys is the head's grid sensitivity."""
    keys = dict(train_keys)
    scale_x_y = float(keys.pop("scale_x_y", "1"))
    return YoloSection(
        mask=tuple(mask),
        anchors=tuple((float(w), float(h)) for w, h in anchors),
        classes=classes,
        num=len(anchors),
        scale_x_y=scale_x_y,
        extra=tuple(keys.items()),
    )


# --------------------------------------------------------------------------- builder


@dataclass(frozen=True)
class Heads:
    """What every head of one network shares: the anchor set and the class count."""

    anchors: Anchors
    classes: int


class Layers:
    """The growing list of layer sections; hands out the index of every added layer."""

    def __init__(self) -> None:
        self.sections: list[LayerSection] = []

    @property
    def next(self) -> int:
        """Index the next added layer will get."""
        return len(self.sections)

    @property
    def last(self) -> int:
        """Index of the most recently added layer."""
        return len(self.sections) - 1

    def add(self, *sections: LayerSection) -> int:
        """Append layers in order (references as written); return the index of the last one."""
        for section in sections:
            self.sections.append(_absolute(section, self.next))
        return self.last

    def rel(self, index: int) -> int:
        """Reference to layer ``index`` as written in the next layer (``-1`` = previous)."""
        return index - self.next

    def head(self, filters: int, mask: Sequence[int], heads: Heads, train_keys: Sequence[tuple[str, str]]) -> int:
        """A 3x3 conv, the linear 1x1 prediction conv and the ``[yolo]`` layer.

        Returns:
            Index of the 3x3 conv, the feature map the head predicts from.
        """
        feature = self.add(conv(filters, 3))
        self.add(conv(len(mask) * (heads.classes + 5), 1, activation="linear", bn=False))
        self.add(yolo(mask, heads.anchors, heads.classes, train_keys))
        return feature


# --------------------------------------------------------------------------- blocks


def residual(net: Layers, hidden: int, filters: int, activation: str) -> int:
    """Residual unit: 1x1 squeeze to ``hidden``, 3x3 back to ``filters``, add the input."""
    net.add(conv(hidden, 1, activation=activation), conv(filters, 3, activation=activation))
    return net.add(shortcut(-3))


def darknet53(net: Layers) -> dict[str, int]:
    """Darknet-53: a stem and five stride-2 stages of residual units.

    Returns:
        Layer indices of the stage outputs at strides 8, 16 and 32 (``"c3"``, ``"c4"``, ``"c5"``).
    """
    net.add(conv(32, 3))
    taps: dict[str, int] = {}
    for name, filters, units in (("c1", 64, 1), ("c2", 128, 2), ("c3", 256, 8), ("c4", 512, 8), ("c5", 1024, 4)):
        net.add(conv(filters, 3, stride=2))
        for _ in range(units):
            residual(net, filters // 2, filters, "leaky")
        taps[name] = net.last
    return taps


def csp_stage(net: Layers, filters: int, units: int, *, first: bool = False) -> int:
    """One CSPDarknet-53 stage: downsample, split in two paths, residuals on one, merge.

    The first stage keeps full width in both paths (as published); later stages halve it.

    Returns:
        Index of the stage's transition conv (its output).
    """
    act = "mish"
    down = net.add(conv(filters, 3, stride=2, activation=act))
    width = filters if first else filters // 2
    bypass = net.add(conv(width, 1, activation=act))
    net.add(route(net.rel(down)))
    net.add(conv(width, 1, activation=act))
    for _ in range(units):
        residual(net, filters // 2, width, act)
    main = net.add(conv(width, 1, activation=act))
    net.add(route(net.rel(main), net.rel(bypass)))
    return net.add(conv(filters, 1, activation=act))


def cspdarknet53(net: Layers) -> dict[str, int]:
    """CSPDarknet-53 (YOLOv4's backbone): a Mish stem and five CSP stages.

    Returns:
        Layer indices of the stage outputs at strides 8, 16 and 32 (``"c3"``, ``"c4"``, ``"c5"``).
    """
    net.add(conv(32, 3, activation="mish"))
    taps: dict[str, int] = {}
    for name, filters, units in (("c1", 64, 1), ("c2", 128, 2), ("c3", 256, 8), ("c4", 512, 8), ("c5", 1024, 4)):
        taps[name] = csp_stage(net, filters, units, first=name == "c1")
    return taps


def spp(net: Layers) -> int:
    """Spatial pyramid pooling: stride-1 max pools of 5, 9 and 13 concatenated with the input."""
    source = net.last
    pools: list[int] = []
    for size in (5, 9, 13):
        if pools:
            net.add(route(net.rel(source)))
        pools.append(net.add(maxpool(size, 1)))
    return net.add(route(*(net.rel(i) for i in (*reversed(pools), source))))


def conv_stack(net: Layers, width: int, count: int) -> int:
    """``count`` convs alternating 1x1 to ``width`` and 3x3 to ``2 * width``, starting with 1x1."""
    for i in range(count):
        net.add(conv(width, 1) if i % 2 == 0 else conv(2 * width, 3))
    return net.last


def spp_neck(net: Layers, width: int) -> int:
    """Three convs, SPP, three convs: the stride-32 block of YOLOv3-SPP and YOLOv4."""
    conv_stack(net, width, 3)
    spp(net)
    return conv_stack(net, width, 3)


def tiny_csp_block(net: Layers, filters: int) -> int:
    """YOLOv4-tiny's CSP block: a 3x3 conv whose second channel half goes through two
    3x3 convs, their concat fused by a 1x1 conv and concatenated with the block input.

    Returns:
        Index of the 1x1 fuse conv (the tap the heads route from); the block ends with
        the concat route, not yet pooled.
    """
    base = net.add(conv(filters, 3))
    net.add(route(-1, groups=2, group_id=1))
    first = net.add(conv(filters // 2, 3))
    second = net.add(conv(filters // 2, 3))
    net.add(route(net.rel(second), net.rel(first)))
    fuse = net.add(conv(filters, 1))
    net.add(route(net.rel(base), net.rel(fuse)))
    return fuse


# --------------------------------------------------------------------------- networks


def yolov3(heads: Heads, *, spp: bool) -> list[LayerSection]:
    """YOLOv3 (optionally with SPP): Darknet-53 and an FPN with heads at strides 32, 16, 8."""
    net = Layers()
    taps = darknet53(net)
    branch = spp_neck(net, 512) if spp else conv_stack(net, 512, 5)
    net.head(1024, (6, 7, 8), heads, YOLO_TRAIN_V3)
    for width, lateral, mask in ((256, taps["c4"], (3, 4, 5)), (128, taps["c3"], (0, 1, 2))):
        net.add(route(net.rel(branch)))
        net.add(conv(width, 1), upsample(2))
        net.add(route(-1, lateral))
        branch = conv_stack(net, width, 5)
        net.head(2 * width, mask, heads, YOLO_TRAIN_V3)
    return net.sections


def yolov3_tiny(heads: Heads) -> list[LayerSection]:
    """YOLOv3-tiny: a conv/maxpool backbone and heads at strides 32 and 16."""
    net = Layers()
    taps: dict[int, int] = {}
    for filters in (16, 32, 64, 128, 256, 512):
        taps[filters] = net.add(conv(filters, 3))
        net.add(maxpool(2, 1 if filters == 512 else 2))
    net.add(conv(1024, 3))
    branch = net.add(conv(256, 1))
    net.head(512, (3, 4, 5), heads, YOLO_TRAIN_V3)
    net.add(route(net.rel(branch)))
    net.add(conv(128, 1), upsample(2))
    net.add(route(-1, taps[256]))
    net.head(256, (0, 1, 2), heads, YOLO_TRAIN_V3)
    return net.sections


def yolov4(heads: Heads) -> list[LayerSection]:
    """YOLOv4: CSPDarknet-53, SPP, a PAN neck and heads at strides 8, 16, 32."""
    net = Layers()
    taps = cspdarknet53(net)
    p5 = spp_neck(net, 512)

    # Top-down path (FPN): reduce and upsample, concatenate a 1x1-reduced backbone
    # lateral, refine with five convs.
    tops: list[int] = []
    for width, lateral in ((256, taps["c4"]), (128, taps["c3"])):
        net.add(conv(width, 1))
        up = net.add(upsample(2))
        net.add(route(lateral))
        net.add(conv(width, 1))
        net.add(route(-1, net.rel(up)))
        tops.append(conv_stack(net, width, 5))
    p4, top = tops

    # Bottom-up path (PAN): a head per level, then a stride-2 conv into the next level,
    # concatenated with that level's top-down output.
    net.head(256, (0, 1, 2), heads, yolo_train_v4("1.2", random=False))
    out = top
    for width, lateral, mask, scale, random in ((256, p4, (3, 4, 5), "1.1", False), (512, p5, (6, 7, 8), "1.05", True)):
        net.add(route(net.rel(out)))
        net.add(conv(width, 3, stride=2))
        net.add(route(-1, net.rel(lateral)))
        out = conv_stack(net, width, 5)
        net.head(2 * width, mask, heads, yolo_train_v4(scale, random=random))
    return net.sections


def yolov4_tiny(heads: Heads, *, three_heads: bool) -> list[LayerSection]:
    """YOLOv4-tiny: two stride-2 convs, three tiny CSP blocks, heads at strides 32, 16 (and 8)."""
    net = Layers()
    net.add(conv(32, 3, stride=2), conv(64, 3, stride=2))
    taps: dict[int, int] = {}
    for filters in (64, 128, 256):
        taps[filters] = tiny_csp_block(net, filters)
        net.add(maxpool(2, 2))
    net.add(conv(512, 3))
    branch = net.add(conv(256, 1))
    # Upstream's two-head model uses anchors 3,4,5 and 1,2,3 (anchor 0 unused).
    masks = ((6, 7, 8), (3, 4, 5), (0, 1, 2)) if three_heads else ((3, 4, 5), (1, 2, 3))
    net.head(512, masks[0], heads, YOLO_TRAIN_TINY_V4)
    levels = ((128, taps[256], 256), (64, taps[128], 128))[: len(masks) - 1]
    for (width, lateral, out_filters), mask in zip(levels, masks[1:]):
        net.add(route(net.rel(branch)))
        net.add(conv(width, 1), upsample(2))
        net.add(route(-1, lateral))
        branch = net.head(out_filters, mask, heads, YOLO_TRAIN_TINY_V4)
    return net.sections
