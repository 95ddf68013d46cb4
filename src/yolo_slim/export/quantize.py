"""INT8 post-training quantization of an OpenVINO model with NNCF.

Calibration images are letterboxed exactly as the runtime does it. The YOLO decode
(sigmoid, exp, grid offsets, anchor scaling, concatenation) is kept in float through
`nncf.IgnoredScope`: its nodes are found by walking back from the output to the
head convolutions, so the scope follows the graph of any cfg, pruned or not.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from yolo_slim.errors import DataError, ExportError
from yolo_slim.ops.letterbox import letterbox

_STOP_TYPES = {"Convolution", "GroupConvolution", "Parameter", "Constant"}


def decode_node_names(model) -> list[str]:
    """Friendly names of the nodes between the head convolutions and the outputs.

    Walks from every `Result` towards the inputs and stops at convolutions,
    parameters and constants; everything visited (the decode) is returned.
    """
    seen: set[str] = set()
    names: list[str] = []
    stack = [r.input_value(0).get_node() for r in model.get_results()]
    while stack:
        node = stack.pop()
        name = node.get_friendly_name()
        if name in seen or node.get_type_name() in _STOP_TYPES:
            continue
        seen.add(name)
        names.append(name)
        stack.extend(inp.get_source_output().get_node() for inp in node.inputs())
    return names


def preprocess_nchw(image_bgr: np.ndarray, img_hw: tuple[int, int]) -> np.ndarray:
    """Letterbox a BGR uint8 image and return the network input `[1, 3, H, W]` float32 RGB in [0, 1]."""
    boxed, _ = letterbox(image_bgr, img_hw)
    rgb = cv2.cvtColor(boxed, cv2.COLOR_BGR2RGB)
    return (rgb.transpose(2, 0, 1)[None].astype(np.float32)) / 255.0


def load_calibration_images(paths: Sequence[Path], img_hw: tuple[int, int], count: int) -> list[np.ndarray]:
    """Read up to `count` images (evenly spread over `paths`) as network inputs `[1, 3, H, W]`.

    Raises:
        DataError: none of the images can be read.
    """
    if count < 1:
        raise DataError(f"calibration: count must be >= 1, got {count}")
    if not paths:
        raise DataError("calibration: no images given")
    step = max(1, len(paths) // count)
    chosen = list(paths)[::step][:count]
    out = []
    for p in chosen:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is not None:
            out.append(preprocess_nchw(img, img_hw))
    if not out:
        raise DataError(f"calibration: none of {len(chosen)} images could be read (first: {chosen[0]})")
    return out


def quantize_int8(model, inputs: Iterable[np.ndarray], subset_size: int = 300, batch: int = 1):
    """NNCF post-training INT8 quantization, decode kept in float.

    Args:
        model: an `ov.Model` with decoded output (no NMS).
        inputs: calibration inputs, each `[1, 3, H, W]` float32.
        subset_size: how many inputs NNCF uses at most.
        batch: the model's static batch size; single inputs are tiled to it.

    Returns:
        The quantized `ov.Model`.

    Raises:
        ExportError: NNCF fails.
    """
    import nncf

    items = list(inputs)
    if not items:
        raise ExportError("int8: no calibration inputs")
    if batch > 1:
        items = [np.repeat(x, batch, axis=0) for x in items]
    names = decode_node_names(model)
    logging.getLogger("nncf").setLevel(logging.ERROR)
    from yolo_slim.openvino_core import signal_stack_kept

    try:
        with signal_stack_kept():  # NNCF compiles and releases models of its own
            return nncf.quantize(
                model,
                nncf.Dataset(items),
                subset_size=min(subset_size, len(items)),
                preset=nncf.QuantizationPreset.MIXED,
                ignored_scope=nncf.IgnoredScope(names=names, validate=False),
            )
    except Exception as err:  # noqa: BLE001 - NNCF raises many types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ExportError(f"int8: NNCF quantization failed: {first}") from err
