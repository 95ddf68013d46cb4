"""`python -m yolo_slim info CFG_OR_NAME`: a darknet-style per-layer table and totals.

Prints each layer's type, filters, kernel/stride, input and output shapes, parameters
and BFLOPs (darknet's counting rule, `yolo_slim.metrics.cost`), then the heads with
their strides and the totals: parameters, BFLOPs and the `.weights` file size. With
`--weights` it also reads that file's header and checks that it fits the cfg.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from yolo_slim.cli import positive_int
from yolo_slim.darknet.cfg import DarknetCfg, load_cfg
from yolo_slim.darknet.sections import ConvSection, MaxPoolSection, RouteSection, ShortcutSection, UpsampleSection, YoloSection
from yolo_slim.darknet.shapes import Shape
from yolo_slim.darknet.weights import read_darknet_weights
from yolo_slim.metrics.cost import LayerCost, ModelCost, count_cost

_KINDS = {"convolutional": "conv", "maxpool": "max", "upsample": "upsample", "route": "route", "shortcut": "shortcut", "yolo": "yolo"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cfg", metavar="CFG_OR_NAME", help="a darknet .cfg file or a model-zoo name (yolov4, yolov4-tiny, ...)")
    parser.add_argument("--classes", type=positive_int, help="rewrite the heads for this many classes (default: as in the cfg; 80 for zoo names)")
    parser.add_argument("--img-size", type=positive_int, metavar="PIXELS", help="square input size to count at (default: the [net] width and height)")
    parser.add_argument("--weights", metavar="FILE", help="a darknet .weights file: print its header and check that it fits the cfg")
    parser.add_argument("--json", action="store_true", help="print the totals and per-layer costs as one JSON object instead of the table")


def _shape(shape: Shape) -> str:
    return f"{shape.w:4d} x{shape.h:4d} x{shape.c:5d}"  # 17 characters, darknet's w x h x c


def _describe(cfg: DarknetCfg, cost: LayerCost, input_hw: tuple[int, int]) -> tuple[str, str, str]:
    """(filters, size/stride, detail) columns of one layer."""
    s = cfg.layers[cost.index]
    if isinstance(s, ConvSection):
        size = f"{s.size} x{s.size:2d}/{s.stride:2d}"
        detail = f"groups {s.groups}" if s.groups > 1 else ""
        return str(s.filters), size, detail
    if isinstance(s, MaxPoolSection):
        return "", f"{s.size} x{s.size:2d}/{s.stride:2d}", ""
    if isinstance(s, UpsampleSection):
        return "", f"x{s.stride}", ""
    if isinstance(s, RouteSection):
        detail = "layers " + ", ".join(str(i) for i in s.sources)
        if s.groups > 1:
            detail += f" (group {s.group_id + 1}/{s.groups})"
        return "", "", detail
    if isinstance(s, ShortcutSection):
        return "", "", "from " + ", ".join(str(i) for i in s.sources)
    if isinstance(s, YoloSection):
        return "", "", f"mask {','.join(str(m) for m in s.mask)}, stride {input_hw[0] / cost.output.h:g}"
    raise TypeError(type(s))  # pragma: no cover - the union is closed


def format_table(cfg: DarknetCfg, cost: ModelCost) -> str:
    """The per-layer table and the totals, as printed by `info`."""
    header = f"{'layer':>5}  {'type':<8}  {'filters':>7}  {'size/strd':<9}  {'input':>17}  {'output':>17}  {'params':>11}  {'BFLOPs':>7}"
    lines = [header]
    for layer in cost.layers:
        filters, size, detail = _describe(cfg, layer, cost.input_hw)
        shows_input = layer.kind in ("convolutional", "maxpool", "upsample")
        lines.append(
            f"{layer.index:>5}  {_KINDS[layer.kind]:<8}  {filters:>7}  {size:<9}  "
            f"{_shape(layer.inputs[0]) if shows_input else '':>17}  {_shape(layer.output):>17}  "
            f"{layer.params:>11,}  {layer.flops / 1e9:>7.3f}  {detail}".rstrip()
        )
    h, w = cost.input_hw
    strides = [f"{stride:g}" for stride in _strides(cfg, cost)]
    lines += [
        "",
        f"input      {w} x {h} x {cfg.net.channels} (width x height x channels), {cfg.num_classes} classes",
        f"heads      {len(strides)}, strides {', '.join(strides) or '-'}",
        f"params     {cost.params:,} ({cost.params / 1e6:.2f} M)",
        f"BFLOPs     {cost.bflops:.3f} (darknet's count)",
        f".weights   {cost.weights_bytes:,} bytes ({cost.weights_bytes / 2**20:.2f} MiB)",
    ]
    return "\n".join(lines)


def _strides(cfg: DarknetCfg, cost: ModelCost) -> list[float]:
    return [cost.input_hw[0] / cost.layers[i].output.h for i in cfg.yolo_ids()]


def run(args: argparse.Namespace) -> int:
    cfg = load_cfg(args.cfg, classes=args.classes, img_size=args.img_size)
    header = read_darknet_weights(args.weights, cfg)[0] if args.weights else None
    cost = count_cost(cfg)
    if args.json:
        report = {"source": cfg.source, "classes": cfg.num_classes, "strides": _strides(cfg, cost), **cost.to_dict()}
        if header is not None:
            report["weights"] = {"path": str(args.weights), **dataclasses.asdict(header)}
        print(json.dumps(report))
        return 0
    print(f"{cfg.source}: {len(cfg.layers)} layers")
    print(format_table(cfg, cost))
    if header is not None:
        print(
            f"weights    {args.weights}: fits the cfg; version {header.major}.{header.minor}.{header.revision}, "
            f"trained on {header.seen:,} images"
        )
    return 0
