"""The model zoo: darknet cfg text for the stock YOLO detectors, generated in code.

The networks are the ones AlexeyAB/darknet publishes as ``cfg/yolov3.cfg``,
``yolov3-spp.cfg``, ``yolov3-tiny.cfg``, ``yolov4.cfg``, ``yolov4-tiny.cfg`` and
``yolov4-tiny-3l.cfg`` (YOLOv3: Redmon & Farhadi 2018; YOLOv4: Bochkovskiy, Wang &
Liao 2020). Nothing here is copied from those files: each network is composed from
the blocks its paper describes (Darknet-53 residual stages, CSPDarknet-53 stages,
the tiny CSP block, SPP, the FPN and PAN necks, YOLO heads) and the result is
layer-for-layer the published architecture, which the unit tests check against the
upstream files where those are available.

Only the text is produced here; parsing it is `yolo_slim.darknet.cfg`'s job. The
output carries the training keys darknet needs (``[net]`` schedule and augmentation,
``[yolo]`` loss settings) with upstream's values, so the same file trains in darknet.
Layer references are written the way upstream writes them: relative inside a block
(``from=-3``, ``layers=-1,-3``), absolute for taps into the backbone
(``layers=-1, 61``), and every index is computed while the network is built.

Example:
    >>> text = zoo_cfg_text("yolov4-tiny", classes=2, img_size=320)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from yolo_slim.errors import CfgError

__all__ = ["ZOO_NAMES", "zoo_cfg_text"]

ZOO_NAMES: tuple[str, ...] = (
    "yolov3",
    "yolov3-spp",
    "yolov3-tiny",
    "yolov4",
    "yolov4-tiny",
    "yolov4-tiny-3l",
)

Anchors = tuple[tuple[int, int], ...]

# Anchor sets published with the networks (pixels at the network's input size).
_ANCHORS_V3: Anchors = (
    (10, 13), (16, 30), (33, 23), (30, 61), (62, 45),
    (59, 119), (116, 90), (156, 198), (373, 326),
)
_ANCHORS_V4: Anchors = (
    (12, 16), (19, 36), (40, 28), (36, 75), (76, 55),
    (72, 146), (142, 110), (192, 243), (459, 401),
)
_ANCHORS_TINY: Anchors = ((10, 14), (23, 27), (37, 58), (81, 82), (135, 169), (344, 319))

# Training-only [yolo] keys, in upstream's order. Values are kept as darknet writes them.
_YOLO_TRAIN_V3: tuple[tuple[str, str], ...] = (
    ("jitter", ".3"),
    ("ignore_thresh", ".7"),
    ("truth_thresh", "1"),
    ("random", "1"),
)
_YOLO_TRAIN_TINY_V4: tuple[tuple[str, str], ...] = (
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


def _yolo_train_v4(scale_x_y: str, *, random: bool) -> tuple[tuple[str, str], ...]:
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


def _section(kind: str, *items: tuple[str, object]) -> str:
    """One cfg section: a ``[kind]`` header and ``key=value`` lines."""
    return "\n".join([f"[{kind}]", *(f"{key}={value}" for key, value in items)])


def _conv(filters: int, size: int, stride: int = 1, activation: str = "leaky", bn: bool = True) -> str:
    """A ``[convolutional]`` section with 'same' padding (``pad=1``)."""
    items: list[tuple[str, object]] = [("batch_normalize", 1)] if bn else []
    items += [("filters", filters), ("size", size), ("stride", stride), ("pad", 1), ("activation", activation)]
    return _section("convolutional", *items)


def _shortcut(from_: int, activation: str = "linear") -> str:
    """A ``[shortcut]`` section adding layer ``from_`` to the previous layer."""
    return _section("shortcut", ("from", from_), ("activation", activation))


def _route(*layers: int, groups: int | None = None, group_id: int | None = None) -> str:
    """A ``[route]`` section concatenating ``layers`` (or one channel group of one layer)."""
    items: list[tuple[str, object]] = [("layers", ",".join(str(i) for i in layers))]
    if groups is not None:
        items += [("groups", groups), ("group_id", group_id)]
    return _section("route", *items)


def _maxpool(size: int, stride: int) -> str:
    """A ``[maxpool]`` section."""
    return _section("maxpool", ("size", size), ("stride", stride))


def _upsample(stride: int = 2) -> str:
    """An ``[upsample]`` (nearest neighbour) section."""
    return _section("upsample", ("stride", stride))


def _yolo(
    mask: Sequence[int],
    anchors: Anchors,
    classes: int,
    train_keys: Sequence[tuple[str, str]],
) -> str:
    """A ``[yolo]`` detection section using the anchors at indices ``mask``."""
    return _section(
        "yolo",
        ("mask", ",".join(str(m) for m in mask)),
        ("anchors", ",  ".join(f"{w},{h}" for w, h in anchors)),
        ("classes", classes),
        ("num", len(anchors)),
        *train_keys,
    )


@dataclass(frozen=True)
class _Schedule:
    """The [net] training settings that differ between the published networks."""

    batch: int
    subdivisions: int
    momentum: str
    learning_rate: str
    max_batches: int
    steps: tuple[int, int]
    mosaic: bool = False


def _net(width: int, height: int, schedule: _Schedule) -> str:
    """The ``[net]`` section: input size plus the training schedule and augmentation."""
    items: list[tuple[str, object]] = [
        ("batch", schedule.batch),
        ("subdivisions", schedule.subdivisions),
        ("width", width),
        ("height", height),
        ("channels", 3),
        ("momentum", schedule.momentum),
        ("decay", "0.0005"),
        ("angle", 0),
        ("saturation", 1.5),
        ("exposure", 1.5),
        ("hue", ".1"),
        ("learning_rate", schedule.learning_rate),
        ("burn_in", 1000),
        ("max_batches", schedule.max_batches),
        ("policy", "steps"),
        ("steps", f"{schedule.steps[0]},{schedule.steps[1]}"),
        ("scales", ".1,.1"),
    ]
    if schedule.mosaic:
        items.append(("mosaic", 1))
    return _section("net", *items)


# --------------------------------------------------------------------------- builder


@dataclass(frozen=True)
class _Heads:
    """What every head of one network shares: the anchor set and the class count."""

    anchors: Anchors
    classes: int


class _Layers:
    """The growing list of layer sections; hands out the index of every added layer."""

    def __init__(self) -> None:
        self.sections: list[str] = []

    @property
    def next(self) -> int:
        """Index the next added layer will get."""
        return len(self.sections)

    @property
    def last(self) -> int:
        """Index of the most recently added layer."""
        return len(self.sections) - 1

    def add(self, *sections: str) -> int:
        """Append layers in order; return the index of the last one."""
        self.sections.extend(sections)
        return self.last

    def rel(self, index: int) -> int:
        """Reference to layer ``index`` as written in the next layer (``-1`` = previous)."""
        return index - self.next

    def head(self, filters: int, mask: Sequence[int], heads: _Heads, train_keys: Sequence[tuple[str, str]]) -> int:
        """A 3x3 conv, the linear 1x1 prediction conv and the ``[yolo]`` layer.

        Returns:
            Index of the 3x3 conv, the feature map the head predicts from.
        """
        feature = self.add(_conv(filters, 3))
        self.add(_conv(len(mask) * (heads.classes + 5), 1, activation="linear", bn=False))
        self.add(_yolo(mask, heads.anchors, heads.classes, train_keys))
        return feature


# --------------------------------------------------------------------------- blocks


def _residual(net: _Layers, hidden: int, filters: int, activation: str) -> int:
    """Residual unit: 1x1 squeeze to ``hidden``, 3x3 back to ``filters``, add the input."""
    net.add(_conv(hidden, 1, activation=activation), _conv(filters, 3, activation=activation))
    return net.add(_shortcut(-3))


def _darknet53(net: _Layers) -> dict[str, int]:
    """Darknet-53: a stem and five stride-2 stages of residual units.

    Returns:
        Layer indices of the stage outputs at strides 8, 16 and 32 (``"c3"``, ``"c4"``, ``"c5"``).
    """
    net.add(_conv(32, 3))
    taps: dict[str, int] = {}
    for name, filters, units in (("c1", 64, 1), ("c2", 128, 2), ("c3", 256, 8), ("c4", 512, 8), ("c5", 1024, 4)):
        net.add(_conv(filters, 3, stride=2))
        for _ in range(units):
            _residual(net, filters // 2, filters, "leaky")
        taps[name] = net.last
    return taps


def _csp_stage(net: _Layers, filters: int, units: int, *, first: bool = False) -> int:
    """One CSPDarknet-53 stage: downsample, split in two paths, residuals on one, merge.

    The first stage keeps full width in both paths (as published); later stages halve it.

    Returns:
        Index of the stage's transition conv (its output).
    """
    act = "mish"
    down = net.add(_conv(filters, 3, stride=2, activation=act))
    width = filters if first else filters // 2
    bypass = net.add(_conv(width, 1, activation=act))
    net.add(_route(net.rel(down)))
    net.add(_conv(width, 1, activation=act))
    for _ in range(units):
        _residual(net, filters // 2, width, act)
    main = net.add(_conv(width, 1, activation=act))
    net.add(_route(net.rel(main), net.rel(bypass)))
    return net.add(_conv(filters, 1, activation=act))


def _cspdarknet53(net: _Layers) -> dict[str, int]:
    """CSPDarknet-53 (YOLOv4's backbone): a Mish stem and five CSP stages.

    Returns:
        Layer indices of the stage outputs at strides 8, 16 and 32 (``"c3"``, ``"c4"``, ``"c5"``).
    """
    net.add(_conv(32, 3, activation="mish"))
    taps: dict[str, int] = {}
    for name, filters, units in (("c1", 64, 1), ("c2", 128, 2), ("c3", 256, 8), ("c4", 512, 8), ("c5", 1024, 4)):
        taps[name] = _csp_stage(net, filters, units, first=name == "c1")
    return taps


def _spp(net: _Layers) -> int:
    """Spatial pyramid pooling: stride-1 max pools of 5, 9 and 13 concatenated with the input."""
    source = net.last
    pools: list[int] = []
    for size in (5, 9, 13):
        if pools:
            net.add(_route(net.rel(source)))
        pools.append(net.add(_maxpool(size, 1)))
    return net.add(_route(*(net.rel(i) for i in (*reversed(pools), source))))


def _conv_stack(net: _Layers, width: int, count: int) -> int:
    """``count`` convs alternating 1x1 to ``width`` and 3x3 to ``2 * width``, starting with 1x1."""
    for i in range(count):
        net.add(_conv(width, 1) if i % 2 == 0 else _conv(2 * width, 3))
    return net.last


def _spp_neck(net: _Layers, width: int) -> int:
    """Three convs, SPP, three convs: the stride-32 block of YOLOv3-SPP and YOLOv4."""
    _conv_stack(net, width, 3)
    _spp(net)
    return _conv_stack(net, width, 3)


def _tiny_csp_block(net: _Layers, filters: int) -> int:
    """YOLOv4-tiny's CSP block: a 3x3 conv whose second channel half goes through two
    3x3 convs, their concat fused by a 1x1 conv and concatenated with the block input.

    Returns:
        Index of the 1x1 fuse conv (the tap the heads route from); the block ends with
        the concat route, not yet pooled.
    """
    base = net.add(_conv(filters, 3))
    net.add(_route(-1, groups=2, group_id=1))
    first = net.add(_conv(filters // 2, 3))
    second = net.add(_conv(filters // 2, 3))
    net.add(_route(net.rel(second), net.rel(first)))
    fuse = net.add(_conv(filters, 1))
    net.add(_route(net.rel(base), net.rel(fuse)))
    return fuse


# --------------------------------------------------------------------------- networks


def _yolov3(heads: _Heads, *, spp: bool) -> list[str]:
    """YOLOv3 (optionally with SPP): Darknet-53 and an FPN with heads at strides 32, 16, 8."""
    net = _Layers()
    taps = _darknet53(net)
    branch = _spp_neck(net, 512) if spp else _conv_stack(net, 512, 5)
    net.head(1024, (6, 7, 8), heads, _YOLO_TRAIN_V3)
    for width, lateral, mask in ((256, taps["c4"], (3, 4, 5)), (128, taps["c3"], (0, 1, 2))):
        net.add(_route(net.rel(branch)))
        net.add(_conv(width, 1), _upsample(2))
        net.add(_route(-1, lateral))
        branch = _conv_stack(net, width, 5)
        net.head(2 * width, mask, heads, _YOLO_TRAIN_V3)
    return net.sections


def _yolov3_tiny(heads: _Heads) -> list[str]:
    """YOLOv3-tiny: a conv/maxpool backbone and heads at strides 32 and 16."""
    net = _Layers()
    taps: dict[int, int] = {}
    for filters in (16, 32, 64, 128, 256, 512):
        taps[filters] = net.add(_conv(filters, 3))
        net.add(_maxpool(2, 1 if filters == 512 else 2))
    net.add(_conv(1024, 3))
    branch = net.add(_conv(256, 1))
    net.head(512, (3, 4, 5), heads, _YOLO_TRAIN_V3)
    net.add(_route(net.rel(branch)))
    net.add(_conv(128, 1), _upsample(2))
    net.add(_route(-1, taps[256]))
    net.head(256, (0, 1, 2), heads, _YOLO_TRAIN_V3)
    return net.sections


def _yolov4(heads: _Heads) -> list[str]:
    """YOLOv4: CSPDarknet-53, SPP, a PAN neck and heads at strides 8, 16, 32."""
    net = _Layers()
    taps = _cspdarknet53(net)
    p5 = _spp_neck(net, 512)

    # Top-down path (FPN): reduce and upsample, concatenate a 1x1-reduced backbone
    # lateral, refine with five convs.
    tops: list[int] = []
    for width, lateral in ((256, taps["c4"]), (128, taps["c3"])):
        net.add(_conv(width, 1))
        up = net.add(_upsample(2))
        net.add(_route(lateral))
        net.add(_conv(width, 1))
        net.add(_route(-1, net.rel(up)))
        tops.append(_conv_stack(net, width, 5))
    p4, top = tops

    # Bottom-up path (PAN): a head per level, then a stride-2 conv into the next level,
    # concatenated with that level's top-down output.
    net.head(256, (0, 1, 2), heads, _yolo_train_v4("1.2", random=False))
    out = top
    for width, lateral, mask, scale, random in ((256, p4, (3, 4, 5), "1.1", False), (512, p5, (6, 7, 8), "1.05", True)):
        net.add(_route(net.rel(out)))
        net.add(_conv(width, 3, stride=2))
        net.add(_route(-1, net.rel(lateral)))
        out = _conv_stack(net, width, 5)
        net.head(2 * width, mask, heads, _yolo_train_v4(scale, random=random))
    return net.sections


def _yolov4_tiny(heads: _Heads, *, three_heads: bool) -> list[str]:
    """YOLOv4-tiny: two stride-2 convs, three tiny CSP blocks, heads at strides 32, 16 (and 8)."""
    net = _Layers()
    net.add(_conv(32, 3, stride=2), _conv(64, 3, stride=2))
    taps: dict[int, int] = {}
    for filters in (64, 128, 256):
        taps[filters] = _tiny_csp_block(net, filters)
        net.add(_maxpool(2, 2))
    net.add(_conv(512, 3))
    branch = net.add(_conv(256, 1))
    # Upstream's two-head model uses anchors 3,4,5 and 1,2,3 (anchor 0 unused).
    masks = ((6, 7, 8), (3, 4, 5), (0, 1, 2)) if three_heads else ((3, 4, 5), (1, 2, 3))
    net.head(512, masks[0], heads, _YOLO_TRAIN_TINY_V4)
    levels = ((128, taps[256], 256), (64, taps[128], 128))[: len(masks) - 1]
    for (width, lateral, out_filters), mask in zip(levels, masks[1:]):
        net.add(_route(net.rel(branch)))
        net.add(_conv(width, 1), _upsample(2))
        net.add(_route(-1, lateral))
        branch = net.head(out_filters, mask, heads, _YOLO_TRAIN_TINY_V4)
    return net.sections


# --------------------------------------------------------------------------- registry

@dataclass(frozen=True)
class _ZooEntry:
    """One network of the zoo: its builder and its published defaults."""

    build: Callable[[_Heads], list[str]]
    img_size: int
    anchors: Anchors
    schedule: _Schedule


# Batch and subdivisions are darknet's documented training values (the upstream yolov3
# files ship in their "Testing" mode, batch=1); everything else is as published.
_V3_SCHEDULE = _Schedule(64, 16, "0.9", "0.001", 500200, (400000, 450000))

_ZOO: dict[str, _ZooEntry] = {
    "yolov3": _ZooEntry(lambda h: _yolov3(h, spp=False), 416, _ANCHORS_V3, _V3_SCHEDULE),
    "yolov3-spp": _ZooEntry(lambda h: _yolov3(h, spp=True), 608, _ANCHORS_V3, _V3_SCHEDULE),
    "yolov3-tiny": _ZooEntry(
        _yolov3_tiny, 416, _ANCHORS_TINY, _Schedule(64, 2, "0.9", "0.001", 500200, (400000, 450000))
    ),
    "yolov4": _ZooEntry(
        _yolov4, 608, _ANCHORS_V4, _Schedule(64, 8, "0.949", "0.0013", 500500, (400000, 450000), mosaic=True)
    ),
    "yolov4-tiny": _ZooEntry(
        lambda h: _yolov4_tiny(h, three_heads=False),
        416,
        _ANCHORS_TINY,
        _Schedule(64, 1, "0.9", "0.00261", 2000200, (1600000, 1800000)),
    ),
    "yolov4-tiny-3l": _ZooEntry(
        lambda h: _yolov4_tiny(h, three_heads=True),
        608,
        _ANCHORS_V4,
        _Schedule(64, 1, "0.9", "0.00261", 500200, (400000, 450000)),
    ),
}


def _check_img_size(img_size: int | tuple[int, int] | None, default: int) -> tuple[int, int]:
    """Validate ``img_size`` and return ``(width, height)``."""
    if img_size is None:
        return default, default
    if isinstance(img_size, int) and not isinstance(img_size, bool):
        size: tuple[object, ...] = (img_size, img_size)
    elif isinstance(img_size, (tuple, list)) and len(img_size) == 2:
        size = tuple(img_size)
    else:
        raise CfgError(f"img_size must be an int or a (width, height) pair, got {img_size!r}")
    bad = [v for v in size if isinstance(v, bool) or not isinstance(v, int) or v < 32 or v % 32]
    if bad:
        raise CfgError(
            f"img_size {img_size!r}: width and height must be positive multiples of 32 "
            "(the networks' largest stride)"
        )
    return size[0], size[1]  # type: ignore[return-value]


def _check_anchors(anchors: Sequence[tuple[int, int]] | None, default: Anchors, name: str) -> Anchors:
    """Validate user anchors against the network's anchor count."""
    if anchors is None:
        return default
    pairs = list(anchors)
    if len(pairs) != len(default):
        raise CfgError(
            f"{name} needs exactly {len(default)} anchors (num={len(default)}) as (width, height) pairs, "
            f"got {len(pairs)}"
        )
    out: list[tuple[int, int]] = []
    for pair in pairs:
        values = tuple(pair) if isinstance(pair, (tuple, list)) else (pair,)
        if len(values) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
            raise CfgError(f"anchor {pair!r} of {name}: expected a (width, height) pair of positive ints in pixels")
        out.append((values[0], values[1]))  # type: ignore[arg-type]
    return tuple(out)


def zoo_cfg_text(
    name: str,
    *,
    classes: int = 80,
    img_size: int | tuple[int, int] | None = None,
    anchors: Sequence[tuple[int, int]] | None = None,
) -> str:
    """Generate the darknet cfg text of a stock network.

    Args:
        name: One of `ZOO_NAMES`.
        classes: Number of object classes. Sets ``classes=`` of every ``[yolo]`` and
            ``filters = len(mask) * (classes + 5)`` of the conv feeding each head.
        img_size: Network input in pixels, one int for a square input or a
            ``(width, height)`` pair; each a multiple of 32. Default: upstream's
            (416 for yolov3, yolov3-tiny, yolov4-tiny; 608 for the others).
        anchors: ``(width, height)`` anchor boxes in input pixels replacing the
            anchors of all heads; as many as the network has (``num``: 9, or 6 for
            yolov3-tiny and yolov4-tiny), smallest first.

    Returns:
        The cfg text: a ``[net]`` section with upstream's training settings, then the
        layers; ends with a newline.

    Raises:
        CfgError: Unknown ``name``, ``classes < 1``, a bad ``img_size`` or the wrong
            number of anchors.
    """
    entry = _ZOO.get(name)
    if entry is None:
        raise CfgError(f"unknown zoo network {name!r}; valid names: {', '.join(ZOO_NAMES)}")
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise CfgError(f"classes must be an int >= 1 (the number of object classes), got {classes!r}")
    width, height = _check_img_size(img_size, entry.img_size)
    heads = _Heads(_check_anchors(anchors, entry.anchors, name), classes)
    sections = [_net(width, height, entry.schedule), *entry.build(heads)]
    return "\n\n".join(sections) + "\n"
