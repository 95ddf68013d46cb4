"""Darknet `.cfg` parsing, validation and writing.

A cfg becomes a `DarknetCfg`: the `[net]` section and a list of typed layer
sections (see `sections.py`). Relative references (`from=-3`, `layers=-1,61`) are
resolved to absolute layer ids here, once. Every problem found is reported in one
`CfgError`, each as `path:line: [section] key: what was expected`.

`write_cfg_text` writes references back in the style they were read (relative stays
relative), so `parse_cfg_text(write_cfg_text(cfg)) == cfg` and darknet and OpenCV
read the result.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from yolo_slim.darknet.sections import (
    ACTIVATIONS,
    ConvSection,
    Extra,
    LayerSection,
    MaxPoolSection,
    NetSection,
    RouteSection,
    ShortcutSection,
    UpsampleSection,
    YoloSection,
    layer_inputs,
    section_name,
)
from yolo_slim.darknet import limits
from yolo_slim.darknet.zoo import ZOO_NAMES, zoo_cfg_text
from yolo_slim.errors import CfgError
from yolo_slim.io.atomic import write_atomic

# Keys that only darknet's trainer reads: kept verbatim and written back.
_TRAINING_KEYS: dict[str, frozenset[str]] = {
    "convolutional": frozenset({"learning_rate", "stopbackward", "dontload", "dontloadscales", "train"}),
    "shortcut": frozenset(),
    "route": frozenset({"stopbackward"}),
    "maxpool": frozenset(),
    "upsample": frozenset(),
    "yolo": frozenset(
        {
            "jitter", "ignore_thresh", "truth_thresh", "random", "iou_thresh", "cls_normalizer",
            "iou_normalizer", "obj_normalizer", "iou_loss", "nms_kind", "beta_nms", "max_delta",
            "resize", "counters_per_class", "label_smooth_eps", "focal_loss", "objectness_smooth",
            "uc_normalizer", "delta_normalizer", "max", "embedding_layer", "track_history_size",
            "sim_thresh", "dets_for_track", "dets_for_show", "track_ciou_norm", "map",
        }
    ),
}

_ARCH_KEYS: dict[str, tuple[str, ...]] = {
    "convolutional": ("batch_normalize", "filters", "size", "stride", "pad", "padding", "groups", "activation"),
    "shortcut": ("from", "activation"),
    "route": ("layers", "groups", "group_id"),
    "maxpool": ("size", "stride", "padding"),
    "upsample": ("stride",),
    "yolo": ("mask", "anchors", "classes", "num", "scale_x_y", "new_coords"),
}

_REQUIRED: dict[str, tuple[str, ...]] = {
    "convolutional": ("filters",),
    "shortcut": ("from",),
    "route": ("layers",),
    "maxpool": (),
    "upsample": (),
    "yolo": ("anchors", "classes"),
}


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


# ----------------------------------------------------------------------------- parsing


@dataclass
class _RawSection:
    name: str
    line: int
    options: list[tuple[str, str, int]]  # key, value, line


def _split_sections(text: str, source: str, problems: list[str]) -> list[_RawSection]:
    sections: list[_RawSection] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                problems.append(f"{source}:{lineno}: section header {line!r} has no closing ']'")
                continue
            sections.append(_RawSection(line[1:-1].strip().lower(), lineno, []))
            continue
        if "=" not in line:
            problems.append(f"{source}:{lineno}: expected 'key=value', got {line!r}")
            continue
        if not sections:
            problems.append(f"{source}:{lineno}: option {line!r} before the first [section]")
            continue
        key, value = line.split("=", 1)
        sections[-1].options.append(("".join(key.split()), "".join(value.split()), lineno))
    return sections


_INT_RE = re.compile(r"[+-]?[0-9]{1,30}")


def _to_int(text: str) -> int:
    """An ASCII decimal integer (no ``_`` separators or other digits Python would accept)."""
    if not _INT_RE.fullmatch(text):
        raise ValueError(text)
    return int(text)


def _to_float(text: str) -> float:
    """A finite decimal number (``nan``, ``inf`` and ``1e999`` are refused)."""
    if "_" in text or not text.isascii():
        raise ValueError(text)
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


class _Reader:
    """Typed access to one raw section's options, collecting problems."""

    def __init__(self, raw: _RawSection, source: str, problems: list[str]) -> None:
        self.raw = raw
        self.source = source
        self.problems = problems
        self.values: dict[str, tuple[str, int]] = {}
        for key, value, lineno in raw.options:
            if key in self.values:
                self.error(lineno, key, f"duplicate key (first given on line {self.values[key][1]})")
            self.values[key] = (value, lineno)

    def error(self, lineno: int, key: str | None, message: str) -> None:
        where = f"[{self.raw.name}] {key}: " if key else f"[{self.raw.name}] "
        self.problems.append(f"{self.source}:{lineno}: {where}{message}")

    def line_of(self, key: str) -> int:
        return self.values[key][1] if key in self.values else self.raw.line

    def _get(self, key: str, default, convert: Callable[[str], object], expected: str):
        if key not in self.values:
            return default
        value, lineno = self.values[key]
        try:
            return convert(value)
        except ValueError:
            self.error(lineno, key, f"expected {expected}, got {value!r}")
            return default

    def int(self, key: str, default: int | None = None, minimum: int | None = None, maximum: int | None = None) -> int | None:
        result = self._get(key, default, _to_int, "an integer")
        if result is None or key not in self.values:
            return result
        low, high = minimum is not None and result < minimum, maximum is not None and result > maximum
        if low or high:
            expected = f"an integer >= {minimum}" if low else f"an integer <= {maximum:,} (a plausible upper bound)"
            self.error(self.line_of(key), key, f"expected {expected}, got {result:,}")
            return default
        return result

    def float(self, key: str, default: float, minimum: float, maximum: float) -> float:
        result = self._get(key, default, _to_float, "a finite number")
        if key in self.values and not minimum < result <= maximum:
            self.error(self.line_of(key), key, f"expected a number in ({minimum:g}, {maximum:g}], got {result:g}")
            return default
        return result

    def ints(self, key: str) -> tuple[int, ...] | None:
        return self._get(key, None, lambda v: tuple(_to_int(x) for x in v.split(",") if x != ""), "comma-separated integers")

    def floats(self, key: str) -> tuple[float, ...] | None:
        return self._get(key, None, lambda v: tuple(_to_float(x) for x in v.split(",") if x != ""), "comma-separated finite numbers")

    def string(self, key: str, default: str) -> str:
        return self.values[key][0] if key in self.values else default

    def extra(self) -> Extra:
        name = self.raw.name
        arch, training = _ARCH_KEYS[name], _TRAINING_KEYS[name]
        kept: list[tuple[str, str]] = []
        for key, (value, lineno) in self.values.items():
            if key in arch:
                continue
            if key in training:
                kept.append((key, value))
            else:
                allowed = ", ".join(arch + tuple(sorted(training)))
                self.error(lineno, key, f"unknown key for [{name}] (supported: {allowed})")
        return tuple(kept)

    def require(self) -> bool:
        ok = True
        for key in _REQUIRED[self.raw.name]:
            if key not in self.values:
                self.error(self.raw.line, key, "missing required key")
                ok = False
        return ok


def _parse_net(reader: _Reader) -> NetSection:
    width = reader.int("width", 416, minimum=1, maximum=limits.MAX_INPUT_SIZE)
    height = reader.int("height", 416, minimum=1, maximum=limits.MAX_INPUT_SIZE)
    channels = reader.int("channels", 3, minimum=1, maximum=limits.MAX_CHANNELS)
    options = tuple((k, v) for k, (v, _) in reader.values.items())
    return NetSection(width, height, channels, options, line=reader.raw.line)


def _resolve(reader: _Reader, key: str, index: int, refs: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[bool, ...]]:
    resolved, relative = [], []
    for ref in refs:
        absolute = index + ref if ref < 0 else ref
        if absolute < 0 or absolute >= index:
            direction = "forward or self" if absolute >= index else "before the first layer"
            reader.error(reader.line_of(key), key, f"reference {ref} of layer {index} points {direction} (layer {absolute}); expected an earlier layer 0..{index - 1}")
        resolved.append(absolute)
        relative.append(ref < 0)
    return tuple(resolved), tuple(relative)


def _parse_conv(r: _Reader, index: int) -> ConvSection | None:
    if not r.require():
        return None
    activation = r.string("activation", "logistic")
    if activation not in ACTIVATIONS:
        r.error(r.line_of("activation"), "activation", f"unsupported activation {activation!r}; expected one of {', '.join(ACTIVATIONS)}")
    bn = r.int("batch_normalize", 0)
    if bn not in (0, 1):
        r.error(r.line_of("batch_normalize"), "batch_normalize", f"expected 0 or 1, got {bn}")
    return ConvSection(
        filters=r.int("filters", 1, minimum=1, maximum=limits.MAX_FILTERS),
        size=r.int("size", 1, minimum=1, maximum=limits.MAX_WINDOW),
        stride=r.int("stride", 1, minimum=1, maximum=limits.MAX_LAYER_STRIDE),
        pad=r.int("pad", 0, minimum=0, maximum=1),
        padding=r.int("padding", 0, minimum=0, maximum=limits.MAX_WINDOW),
        groups=r.int("groups", 1, minimum=1, maximum=limits.MAX_FILTERS),
        batch_normalize=bn,
        activation=activation,
        extra=r.extra(),
        line=r.raw.line,
    )


def _parse_shortcut(r: _Reader, index: int) -> ShortcutSection | None:
    if not r.require():
        return None
    refs = r.ints("from")
    if not refs:
        r.error(r.line_of("from"), "from", "expected at least one layer reference")
        return None
    activation = r.string("activation", "linear")
    if activation not in ACTIVATIONS:
        r.error(r.line_of("activation"), "activation", f"unsupported activation {activation!r}; expected one of {', '.join(ACTIVATIONS)}")
    sources, relative = _resolve(r, "from", index, refs)
    return ShortcutSection(sources, activation, relative, r.extra(), line=r.raw.line)


def _parse_route(r: _Reader, index: int) -> RouteSection | None:
    if not r.require():
        return None
    refs = r.ints("layers")
    if not refs:
        r.error(r.line_of("layers"), "layers", "expected at least one layer reference")
        return None
    groups = r.int("groups", 1, minimum=1, maximum=limits.MAX_FILTERS)
    group_id = r.int("group_id", 0, minimum=0)
    if group_id >= groups:
        r.error(r.line_of("group_id"), "group_id", f"expected 0..{groups - 1} for groups={groups}, got {group_id}")
    sources, relative = _resolve(r, "layers", index, refs)
    return RouteSection(sources, groups, group_id, relative, r.extra(), line=r.raw.line)


def _parse_maxpool(r: _Reader, index: int) -> MaxPoolSection:
    size = r.int("size", 1, minimum=1, maximum=limits.MAX_WINDOW)
    stride = r.int("stride", size, minimum=1, maximum=limits.MAX_LAYER_STRIDE)
    padding = r.int("padding", size - 1, minimum=0, maximum=limits.MAX_WINDOW)
    return MaxPoolSection(size, stride, padding, r.extra(), line=r.raw.line)


def _parse_upsample(r: _Reader, index: int) -> UpsampleSection:
    return UpsampleSection(r.int("stride", 2, minimum=1, maximum=limits.MAX_LAYER_STRIDE), r.extra(), line=r.raw.line)


def _parse_yolo(r: _Reader, index: int) -> YoloSection | None:
    if not r.require():
        return None
    flat = r.floats("anchors") or ()
    if len(flat) % 2:
        r.error(r.line_of("anchors"), "anchors", f"expected (w, h) pairs, got {len(flat)} numbers")
    elif not flat and "anchors" in r.values and not r.values["anchors"][0].strip(","):
        r.error(r.line_of("anchors"), "anchors", "expected at least one (w, h) pair")
    if len(flat) > 2 * limits.MAX_ANCHORS:
        r.error(r.line_of("anchors"), "anchors", f"expected at most {limits.MAX_ANCHORS} (w, h) pairs (a plausible upper bound), got {len(flat) // 2}")
        flat = flat[: 2 * limits.MAX_ANCHORS]
    bad_sizes = [v for v in flat if not 0 < v <= limits.MAX_ANCHOR_SIZE]
    if bad_sizes:
        r.error(r.line_of("anchors"), "anchors", f"expected widths and heights in (0, {limits.MAX_ANCHOR_SIZE:g}] pixels, got {bad_sizes[0]:g}")
    anchors = tuple((flat[i], flat[i + 1]) for i in range(0, len(flat) - 1, 2))
    num = r.int("num", len(anchors), minimum=1, maximum=limits.MAX_ANCHORS)
    if num != len(anchors) and anchors:
        r.error(r.line_of("num"), "num", f"num={num} but anchors holds {len(anchors)} (w, h) pairs")
    mask = r.ints("mask")
    if mask is None:
        mask = tuple(range(min(num, len(anchors))))
    if not mask and "mask" in r.values:
        r.error(r.line_of("mask"), "mask", "expected at least one anchor index")
    bad = [m for m in mask if not 0 <= m < len(anchors)]
    if bad and anchors:
        r.error(r.line_of("mask"), "mask", f"indices {bad} out of range 0..{len(anchors) - 1} (anchors holds {len(anchors)} pairs)")
    repeated = sorted({m for m in mask if mask.count(m) > 1})
    if repeated:
        r.error(r.line_of("mask"), "mask", f"anchor indices {repeated} repeat; each head uses an anchor once")
    new_coords = r.int("new_coords", 0)
    if new_coords not in (0, 1):
        r.error(r.line_of("new_coords"), "new_coords", f"expected 0 or 1, got {new_coords}")
    return YoloSection(
        mask=mask,
        anchors=anchors,
        classes=r.int("classes", 20, minimum=1, maximum=limits.MAX_CLASSES),
        num=num,
        scale_x_y=r.float("scale_x_y", 1.0, 0.0, limits.MAX_SCALE_X_Y),
        new_coords=new_coords,
        extra=r.extra(),
        line=r.raw.line,
    )


_PARSERS = {
    "convolutional": _parse_conv,
    "conv": _parse_conv,
    "shortcut": _parse_shortcut,
    "route": _parse_route,
    "maxpool": _parse_maxpool,
    "max": _parse_maxpool,
    "upsample": _parse_upsample,
    "yolo": _parse_yolo,
}


def parse_cfg_text(text: str, source: str = "<memory>", *, validate: bool = True) -> DarknetCfg:
    """Parse darknet cfg text into a `DarknetCfg`.

    Args:
        text: the cfg file's contents.
        source: a name for messages (the file path).
        validate: also check shapes (`validate_cfg`).

    Raises:
        CfgError: listing every problem found, each as `source:line: ...`.
    """
    problems: list[str] = []
    raws = _split_sections(text.removeprefix("\ufeff"), source, problems)
    if not raws:
        raise CfgError(f"{source}: no sections found; expected a darknet cfg starting with [net]")
    first = raws[0]
    if first.name not in ("net", "network"):
        raise CfgError(f"{source}:{first.line}: the first section is [{first.name}]; expected [net]")
    net = _parse_net(_Reader(first, source, problems))
    layers: list[LayerSection] = []
    for raw in raws[1:]:
        index = len(layers)
        parser = _PARSERS.get(raw.name)
        if parser is None:
            supported = "convolutional, shortcut, route, maxpool, upsample, yolo"
            problems.append(f"{source}:{raw.line}: unknown or unsupported section [{raw.name}] (layer {index}); supported: {supported}")
            layers.append(UpsampleSection(1, line=raw.line))  # placeholder keeps later ids right
            continue
        name = "convolutional" if raw.name == "conv" else "maxpool" if raw.name == "max" else raw.name
        raw.name = name
        section = parser(_Reader(raw, source, problems), index)
        layers.append(section if section is not None else UpsampleSection(1, line=raw.line))
    if problems:
        raise CfgError(_format(problems, source))
    if not layers:
        raise CfgError(f"{source}: the cfg defines no layers after [net]")
    cfg = DarknetCfg(net, tuple(layers), source)
    if validate:
        validate_cfg(cfg)
    return cfg


def _format(problems: Sequence[str], source: str) -> str:
    head = f"{source}: {len(problems)} problem{'s' if len(problems) > 1 else ''} in darknet cfg:"
    return head + "\n  " + "\n  ".join(problems) if len(problems) > 1 else problems[0]


def parse_cfg(path: str | os.PathLike) -> DarknetCfg:
    """Read and parse a `.cfg` file (see `parse_cfg_text`)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CfgError(f"{path}: cannot read cfg file: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark (Windows editors) is fine
    except UnicodeDecodeError as exc:
        kind = "binary data (a .weights file?)" if b"\x00" in data[:4096] else "not UTF-8 text"
        raise CfgError(f"{path}: byte offset {exc.start}: expected a darknet cfg (UTF-8 text), got {kind}") from None
    return parse_cfg_text(text, str(path))


def load_cfg(cfg_or_name: str | os.PathLike | DarknetCfg, classes: int | None = None, img_size: int | None = None) -> DarknetCfg:
    """A `DarknetCfg` from a parsed cfg, a `.cfg` path, or a model-zoo name.

    Args:
        classes: rewrite the heads for this many classes (`with_classes`).
        img_size: set the `[net]` input size (pixels, square).

    Raises:
        CfgError: not a readable cfg file nor a zoo name, or the cfg is invalid.
    """
    if isinstance(cfg_or_name, DarknetCfg):
        cfg = cfg_or_name
    elif Path(cfg_or_name).is_file():
        cfg = parse_cfg(cfg_or_name)
    elif str(cfg_or_name) in ZOO_NAMES:
        name = str(cfg_or_name)
        cfg = parse_cfg_text(zoo_cfg_text(name, classes=classes or 80), f"<zoo:{name}>")
    else:
        raise CfgError(f"{cfg_or_name}: no such cfg file, and not a model-zoo name (zoo: {', '.join(ZOO_NAMES)})")
    edited = False
    if classes is not None and classes != cfg.num_classes:
        cfg, edited = with_classes(cfg, classes), True
    if img_size is not None:
        from yolo_slim.darknet.shapes import check_input_size

        check_input_size(cfg, img_size, "img_size")
        cfg, edited = with_input_size(cfg, img_size), True
    if edited:
        validate_cfg(cfg)
    return cfg


def validate_cfg(cfg: DarknetCfg) -> None:
    """Check the network as a whole at its `[net]` size.

    Shortcut inputs equal, route inputs aligned, every head's conv has
    len(mask) * (classes + 5) filters, every head predicts the same classes, the
    input size is a multiple of the largest stride (`shapes.check_input_size`), and
    the parameters stay below `limits.MAX_PARAMS`.

    Raises:
        CfgError: every problem, each with `source:line`.
    """
    from yolo_slim.darknet.shapes import shape_problems

    problems = shape_problems(cfg)
    if problems:
        raise CfgError(_format(problems, cfg.source))


# ----------------------------------------------------------------------------- writing


def _refs(index: int, sources: tuple[int, ...], relative: tuple[bool, ...]) -> str:
    rel = relative if len(relative) == len(sources) else (True,) * len(sources)
    return ",".join(str(s - index) if r else str(s) for s, r in zip(sources, rel))


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _section_lines(index: int, s: LayerSection) -> list[str]:
    if isinstance(s, ConvSection):
        lines = [f"batch_normalize={s.batch_normalize}"] if s.batch_normalize else []
        lines += [f"filters={s.filters}", f"size={s.size}", f"stride={s.stride}"]
        if s.pad:
            lines.append(f"pad={s.pad}")
        if s.padding:
            lines.append(f"padding={s.padding}")
        if s.groups != 1:
            lines.append(f"groups={s.groups}")
        lines.append(f"activation={s.activation}")
    elif isinstance(s, ShortcutSection):
        lines = [f"from={_refs(index, s.sources, s.relative)}", f"activation={s.activation}"]
    elif isinstance(s, RouteSection):
        lines = [f"layers={_refs(index, s.sources, s.relative)}"]
        if s.groups != 1:
            lines += [f"groups={s.groups}", f"group_id={s.group_id}"]
    elif isinstance(s, MaxPoolSection):
        lines = [f"size={s.size}", f"stride={s.stride}"]
        if s.padding != s.size - 1:
            lines.append(f"padding={s.padding}")
    elif isinstance(s, UpsampleSection):
        lines = [f"stride={s.stride}"]
    elif isinstance(s, YoloSection):
        anchors = ", ".join(f"{_num(w)},{_num(h)}" for w, h in s.anchors)
        lines = [
            f"mask={','.join(str(m) for m in s.mask)}",
            f"anchors={anchors}",
            f"classes={s.classes}",
            f"num={s.num}",
        ]
        if s.scale_x_y != 1.0:
            lines.append(f"scale_x_y={_num(s.scale_x_y)}")
        if s.new_coords:
            lines.append(f"new_coords={s.new_coords}")
    else:  # pragma: no cover - the union is closed
        raise TypeError(type(s))
    return lines + [f"{k}={v}" for k, v in s.extra]


def write_cfg_text(cfg: DarknetCfg) -> str:
    """Render a `DarknetCfg` as darknet cfg text (darknet and OpenCV read it)."""
    net = dict(cfg.net.options)
    net.update(width=str(cfg.net.width), height=str(cfg.net.height), channels=str(cfg.net.channels))
    out = ["[net]", *(f"{k}={v}" for k, v in net.items()), ""]
    for index, section in enumerate(cfg.layers):
        out.append(f"# layer {index}")
        out.append(f"[{section_name(section)}]")
        out.extend(_section_lines(index, section))
        out.append("")
    return "\n".join(out)


def write_cfg(cfg: DarknetCfg, path: str | os.PathLike) -> Path:
    """Write `cfg` to `path` atomically."""
    return write_atomic(path, write_cfg_text(cfg))


# ----------------------------------------------------------------------------- edits


def with_classes(cfg: DarknetCfg, classes: int) -> DarknetCfg:
    """Set the class count: every `[yolo] classes` and the filters of each head's conv.

    The conv feeding a head gets `len(mask) * (classes + 5)` filters; that is the
    edit darknet users most often get wrong by hand.
    """
    if classes < 1:
        raise CfgError(f"{cfg.source}: classes must be >= 1, got {classes}")
    if classes > limits.MAX_CLASSES:
        raise CfgError(f"{cfg.source}: classes must be <= {limits.MAX_CLASSES:,} (a plausible upper bound), got {classes:,}")
    layers = list(cfg.layers)
    for i in cfg.yolo_ids():
        head = layers[i]
        layers[i] = replace(head, classes=classes)
        producer = i - 1
        if not isinstance(layers[producer], ConvSection):
            raise CfgError(f"{cfg.source}:{head.line}: [yolo] layer {i} is not fed by a [convolutional] layer; cannot set its filters")
        layers[producer] = replace(layers[producer], filters=len(head.mask) * (classes + 5))
    return replace(cfg, layers=tuple(layers))


def with_input_size(cfg: DarknetCfg, height: int, width: int | None = None) -> DarknetCfg:
    """Set `[net]` height and width (pixels)."""
    width = height if width is None else width
    options = dict(cfg.net.options)
    options.update(width=str(width), height=str(height))
    return replace(cfg, net=replace(cfg.net, width=width, height=height, options=tuple(options.items())))


def remove_layers(cfg: DarknetCfg, removed: set[int] | frozenset[int]) -> tuple[DarknetCfg, dict[int, int]]:
    """Delete layers and renumber every reference.

    References to a removed layer are redirected to the nearest surviving earlier
    layer (a removed residual unit passes its input straight through), so this is
    meant for self-contained blocks such as residual units.

    Returns:
        The new cfg and the map old id -> new id of the kept layers.
    """
    keep = [i for i in range(len(cfg.layers)) if i not in removed]
    new_id: dict[int, int] = {old: new for new, old in enumerate(keep)}

    def redirect(ref: int) -> int:
        while ref in removed:
            ref -= 1
        return new_id[ref] if ref >= 0 else -1

    layers: list[LayerSection] = []
    for old in keep:
        s = cfg.layers[old]
        if isinstance(s, (RouteSection, ShortcutSection)):
            s = replace(s, sources=tuple(redirect(r) for r in s.sources))
        layers.append(s)
    return replace(cfg, layers=tuple(layers)), new_id
