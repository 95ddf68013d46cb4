"""PyTorch `Darknet` -> ONNX, a single self-contained file checked by `onnx.checker`.

The eval-mode forward already decodes (cx, cy, w, h in input pixels, objectness,
class probabilities), so the graph's one output is `detections [B, N, 5+C]`. The
decode builds its grid from the tensor shape on every call (no Python cache), so a
graph exported with dynamic spatial axes stays valid at other sizes.

Two exporters: `dynamo` (torch.export based, torch's default since 2.9) and
`torchscript` (the tracing exporter, much faster to run, deprecated by PyTorch).
Failures name the darknet layer that caused them.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import warnings
from pathlib import Path
from typing import Literal, Sequence

import torch

from yolo_slim.darknet.sections import section_name
from yolo_slim.errors import ExportError
from yolo_slim.io.atomic import temporary_path
from yolo_slim.model import Darknet

Exporter = Literal["dynamo", "torchscript"]
INPUT_NAME = "images"
OUTPUT_NAME = "detections"
DYNAMIC_AXES = ("batch", "spatial")
_LAYER_RE = re.compile(r"layers[._\[](\d+)")


def _layer_desc(model: Darknet, i: int) -> str:
    return f"layer {i} ({section_name(model.cfg.layers[i])})"


def probe_forward(model: Darknet, x: torch.Tensor) -> None:
    """Run the model layer by layer so a failure names its layer.

    Raises:
        ExportError: a layer fails on the example input; the message names it.
    """
    failed: list[int] = []

    def hook_for(i: int):
        def pre_hook(module, args):
            failed.append(i)

        return pre_hook

    handles = [layer.register_forward_pre_hook(hook_for(i)) for i, layer in enumerate(model.layers)]
    try:
        with torch.no_grad():
            model(x)
    except Exception as err:  # noqa: BLE001 - re-raised with the layer named
        where = _layer_desc(model, failed[-1]) if failed else "the input"
        raise ExportError(f"export: forward fails at {where} on input {tuple(x.shape)}: {err}") from err
    finally:
        for h in handles:
            h.remove()


def _dynamic_spec(exporter: Exporter, dynamic: Sequence[str], max_stride: int):
    if exporter == "torchscript":
        axes: dict[int, str] = {}
        if "batch" in dynamic:
            axes[0] = "batch"
        if "spatial" in dynamic:
            axes.update({2: "height", 3: "width"})
        out_axes = {0: "batch"} if "batch" in dynamic else {}
        if "spatial" in dynamic:
            out_axes[1] = "rows"
        return {INPUT_NAME: axes, OUTPUT_NAME: out_axes} if axes else None
    dims: dict[int, object] = {}
    if "batch" in dynamic:
        dims[0] = torch.export.Dim("batch", min=1, max=1024)
    if "spatial" in dynamic:
        dims[2] = max_stride * torch.export.Dim("cells_h", min=1, max=4096 // max_stride)
        dims[3] = max_stride * torch.export.Dim("cells_w", min=1, max=4096 // max_stride)
    return {"x": dims} if dims else None


def export_onnx(
    model: Darknet,
    path: str | os.PathLike,
    *,
    img_hw: tuple[int, int],
    batch: int = 1,
    dynamic: Sequence[str] = (),
    exporter: Exporter = "dynamo",
    opset: int = 18,
    max_stride: int = 32,
) -> Path:
    """Export `model` (eval mode, decoded output) to one `.onnx` file, atomically.

    Args:
        model: the network; it is put in eval mode.
        path: output file; weights are embedded (no external data).
        img_hw: example input (height, width), pixels.
        batch: example batch size.
        dynamic: dynamic input axes: `batch` and/or `spatial`.
        exporter: `dynamo` or `torchscript`.
        opset: ONNX opset.
        max_stride: largest downsampling factor; dynamic sizes are its multiples.

    Returns:
        The written path.

    Raises:
        ExportError: a layer fails, the exporter fails (layer named when it can be
            found), or the result does not pass `onnx.checker`.
    """
    import onnx

    bad = sorted(set(dynamic) - set(DYNAMIC_AXES))
    if bad:
        raise ExportError(f"export: unknown dynamic axes {bad}; allowed: {list(DYNAMIC_AXES)}")
    if exporter not in ("dynamo", "torchscript"):
        raise ExportError(f"export: exporter must be 'dynamo' or 'torchscript', got {exporter!r}")
    model = model.eval()
    x = torch.rand(batch, model.cfg.net.channels, *img_hw)
    probe_forward(model, x)
    path = Path(path)
    spec = _dynamic_spec(exporter, dynamic, max_stride)
    log = io.StringIO()
    # the temporary file (and any external-data file an exporter adds beside it) is
    # removed whatever ends the block: an exporter error, Ctrl-C or SIGTERM
    with temporary_path(path, suffix=".onnx") as tmp:
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(log):
                warnings.simplefilter("ignore")
                logging.getLogger("torch.onnx").setLevel(logging.ERROR)
                if exporter == "dynamo":
                    torch.onnx.export(
                        model, (x,), str(tmp), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], opset_version=opset,
                        dynamo=True, external_data=False, dynamic_shapes=spec, verbose=False,
                    )
                else:
                    torch.onnx.export(
                        model, (x,), str(tmp), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                        opset_version=min(opset, 17), dynamo=False, dynamic_axes=spec,
                    )
            proto = onnx.load(str(tmp))
            onnx.checker.check_model(proto, full_check=True)
        except Exception as err:  # noqa: BLE001 - exporter errors come in many types
            text = str(err)
            m = _LAYER_RE.search(text)
            where = f" at {_layer_desc(model, int(m.group(1)))}" if m and int(m.group(1)) < len(model.layers) else ""
            first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
            raise ExportError(f"export: ONNX export ({exporter}) failed{where}: {first}") from err
        os.replace(tmp, path)
    return path


def run_onnxruntime(path: str | os.PathLike, x: torch.Tensor):
    """Run an exported model in ONNX Runtime (CPU) on `x` (NCHW float), returning `[B, N, 5+C]`."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
