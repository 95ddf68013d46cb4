"""Darknet `.cfg` writing: a `DarknetCfg` back to text darknet and OpenCV read.

References are written in the style they were read (relative stays relative), so
`parse_cfg_text(write_cfg_text(cfg)) == cfg`. The model zoo writes its networks
through here too.
"""

from __future__ import annotations

import os
from pathlib import Path

from yolo_slim.darknet.sections import ConvSection, DarknetCfg, LayerSection, MaxPoolSection, RouteSection, ShortcutSection, UpsampleSection, YoloSection, section_name
from yolo_slim.io.atomic import write_atomic


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
