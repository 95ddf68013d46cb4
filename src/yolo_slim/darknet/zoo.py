"""The model zoo: darknet cfg text for the stock YOLO detectors, generated in code.

The networks are the ones AlexeyAB/darknet publishes as ``cfg/yolov3.cfg``,
``yolov3-spp.cfg``, ``yolov3-tiny.cfg``, ``yolov4.cfg``, ``yolov4-tiny.cfg`` and
``yolov4-tiny-3l.cfg`` (YOLOv3: Redmon & Farhadi 2018; YOLOv4: Bochkovskiy, Wang &
Liao 2020). Nothing here is copied from those files: each network is composed from
the blocks its paper describes (Darknet-53 residual stages, CSPDarknet-53 stages,
the tiny CSP block, SPP, the FPN and PAN necks, YOLO heads) and the result is
layer-for-layer the published architecture, which the unit tests check against the
upstream files where those are available.

The blocks and networks are `zoo_blocks.py`'s; here is the table of networks (anchors,
schedules, default sizes) and `zoo_cfg_text`, which writes a network with
`writer.write_cfg_text`, the writer every cfg goes through. Parsing the text is
`parser.py`'s job. The output carries the training keys darknet needs (``[net]`` schedule and augmentation,
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

from yolo_slim.darknet import zoo_blocks as blocks
from yolo_slim.darknet.sections import DarknetCfg, LayerSection, NetSection
from yolo_slim.darknet.writer import write_cfg_text
from yolo_slim.darknet.zoo_blocks import Anchors, Heads
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


def _net(width: int, height: int, schedule: _Schedule) -> NetSection:
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
    return NetSection(width=width, height=height, channels=3, options=tuple((key, str(value)) for key, value in items))


# --------------------------------------------------------------------------- registry

@dataclass(frozen=True)
class _ZooEntry:
    """One network of the zoo: its builder and its published defaults."""

    build: Callable[[Heads], list[LayerSection]]
    img_size: int
    anchors: Anchors
    schedule: _Schedule


# Batch and subdivisions are darknet's documented training values (the upstream yolov3
# files ship in their "Testing" mode, batch=1); everything else is as published.
_V3_SCHEDULE = _Schedule(64, 16, "0.9", "0.001", 500200, (400000, 450000))

_ZOO: dict[str, _ZooEntry] = {
    "yolov3": _ZooEntry(lambda h: blocks.yolov3(h, spp=False), 416, _ANCHORS_V3, _V3_SCHEDULE),
    "yolov3-spp": _ZooEntry(lambda h: blocks.yolov3(h, spp=True), 608, _ANCHORS_V3, _V3_SCHEDULE),
    "yolov3-tiny": _ZooEntry(
        blocks.yolov3_tiny, 416, _ANCHORS_TINY, _Schedule(64, 2, "0.9", "0.001", 500200, (400000, 450000))
    ),
    "yolov4": _ZooEntry(
        blocks.yolov4, 608, _ANCHORS_V4, _Schedule(64, 8, "0.949", "0.0013", 500500, (400000, 450000), mosaic=True)
    ),
    "yolov4-tiny": _ZooEntry(
        lambda h: blocks.yolov4_tiny(h, three_heads=False),
        416,
        _ANCHORS_TINY,
        _Schedule(64, 1, "0.9", "0.00261", 2000200, (1600000, 1800000)),
    ),
    "yolov4-tiny-3l": _ZooEntry(
        lambda h: blocks.yolov4_tiny(h, three_heads=True),
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
    heads = Heads(_check_anchors(anchors, entry.anchors, name), classes)
    network = DarknetCfg(_net(width, height, entry.schedule), tuple(entry.build(heads)), f"<zoo:{name}>")
    return write_cfg_text(network)
