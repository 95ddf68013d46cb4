"""`meta.json`: everything a runtime needs beside an exported model.

The file sits next to `model.onnx` / `model.xml` and records the class names, the
input size and letterbox settings, per-head strides (measured from feature-map
sizes) and anchors, the precision, a sha256 of the source cfg text, the output
layout and whether NMS is inside the graph, and optionally (`speed`) how fast each
precision exported beside it ran on the exporting device
(`yolo_slim.export.precision.PrecisionReport`). `read_meta` validates it so a
detector fails with one clear message instead of producing wrong boxes.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from yolo_slim.darknet.cfg import DarknetCfg, write_cfg_text
from yolo_slim.io.atomic import write_atomic
from yolo_slim.darknet.sections import YoloSection
from yolo_slim.darknet.shapes import infer_shapes
from yolo_slim.errors import DeployError

META_NAME = "meta.json"
META_VERSION = 1
LETTERBOX = {"color": [114, 114, 114], "center": True, "scaleup": True, "color_order": "BGR", "scale": 1.0 / 255.0}
DECODED_LAYOUT = "[B, N, 5+C]: cx, cy, w, h (input pixels), objectness, class probabilities"
NMS_LAYOUT = "[M, 7]: batch index, x1, y1, x2, y2 (input pixels), score, class"
_REQUIRED = {
    "version": int,
    "names": list,
    "num_classes": int,
    "input_size": list,
    "letterbox": dict,
    "strides": list,
    "anchors": list,
    "precision": str,
    "cfg_sha256": str,
    "output_layout": str,
    "nms_in_graph": bool,
}


def cfg_sha256(cfg: DarknetCfg) -> str:
    """sha256 hex digest of the cfg as written by `write_cfg_text` (the architecture)."""
    return hashlib.sha256(write_cfg_text(cfg).encode("utf-8")).hexdigest()


def head_strides(cfg: DarknetCfg, hw: tuple[int, int]) -> list[list[float]]:
    """Per `[yolo]` head, (stride_y, stride_x) in input pixels per cell, from feature-map sizes."""
    shapes = infer_shapes(cfg, hw)
    return [[hw[0] / shapes[i].h, hw[1] / shapes[i].w] for i in cfg.yolo_ids()]


def build_meta(
    cfg: DarknetCfg,
    *,
    img_hw: tuple[int, int],
    names: list[str] | None,
    precision: str,
    weights: str | None,
    batch: int,
    dynamic: list[str],
    nms: dict[str, Any] | None,
) -> dict[str, Any]:
    """The `meta.json` content of one export.

    Args:
        cfg: the exported architecture.
        img_hw: network input (height, width) in pixels.
        names: class names; default `class0`, `class1`, ...
        precision: `fp32`, `fp16` or `int8`.
        weights: the weights file exported, or None for random initialisation.
        batch: the batch size the model was exported with.
        dynamic: the dynamic input axes (`batch`, `spatial`).
        nms: in-graph NMS settings (`conf_thres`, `iou_thres`, `max_det`), or None
            when NMS runs on the host.
    """
    k = cfg.num_classes
    names = list(names) if names is not None else [f"class{i}" for i in range(k)]
    if len(names) != k:
        raise DeployError(f"meta: {len(names)} class names for a model with {k} classes")
    heads = [cfg.layers[i] for i in cfg.yolo_ids()]
    anchors = [[list(map(float, a)) for a in h.head_anchors] for h in heads if isinstance(h, YoloSection)]
    return {
        "version": META_VERSION,
        "names": names,
        "num_classes": k,
        "input_size": [int(img_hw[0]), int(img_hw[1])],
        "batch": int(batch),
        "dynamic": sorted(dynamic),
        "letterbox": dict(LETTERBOX),
        "strides": head_strides(cfg, img_hw),
        "anchors": anchors,
        "precision": precision,
        "cfg_sha256": cfg_sha256(cfg),
        "cfg_source": str(cfg.source),
        "weights": weights,
        "random_init": weights is None,
        "output_layout": NMS_LAYOUT if nms else DECODED_LAYOUT,
        "nms_in_graph": bool(nms),
        "nms": nms,
    }


def write_meta(path: str | os.PathLike, meta: dict[str, Any]) -> Path:
    """Write `meta` as indented JSON, atomically."""
    return write_atomic(Path(path), json.dumps(meta, indent=2) + "\n")


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a `meta.json`.

    Raises:
        DeployError: missing, not JSON, a newer version, or a key missing or of the
            wrong type (all problems in one message).
    """
    path = Path(path)
    if not path.is_file():
        raise DeployError(f"{path}: meta.json not found; it is written by export.py next to model.xml and is required")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DeployError(f"{path}: not a readable JSON file: {err}") from None
    if not isinstance(meta, dict):
        raise DeployError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    problems = []
    for key, kind in _REQUIRED.items():
        if key not in meta:
            problems.append(f"key {key!r} missing")
        elif not isinstance(meta[key], kind):
            problems.append(f"key {key!r} should be {kind.__name__}, got {type(meta[key]).__name__}")
    if not problems:
        if meta["version"] > META_VERSION:
            problems.append(f"version {meta['version']} is newer than this reader ({META_VERSION})")
        if len(meta["names"]) != meta["num_classes"]:
            problems.append(f"{len(meta['names'])} names for num_classes={meta['num_classes']}")
        if len(meta["input_size"]) != 2 or not all(isinstance(v, int) and v > 0 for v in meta["input_size"]):
            problems.append(f"input_size should be [height, width], got {meta['input_size']}")
    if problems:
        raise DeployError(f"{path}: invalid meta.json: " + "; ".join(problems))
    return meta
