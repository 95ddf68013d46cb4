"""ONNX -> OpenVINO IR (`model.xml` + `model.bin`), optionally with NMS in the graph.

`openvino.convert_model` reads the ONNX file; `openvino.save_model` writes the IR,
compressing weights to FP16 only when asked (`compress_to_fp16` defaults to True in
OpenVINO, which would make every "FP32" IR an FP16 one). In-graph NMS appends
OpenVINO's `MulticlassNms` op to the decoded output, with the host NMS's semantics
(best class per row, IoU without darknet's +1), so the IR returns final detections
`[M, 7]`: batch index, x1, y1, x2, y2, score, class (input pixels).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from yolo_slim.errors import ExportError

OUTPUT_NAME = "detections"


def convert_onnx(onnx_path: str | os.PathLike):
    """`openvino.convert_model` on an ONNX file.

    `convert_model` reads a comma in its path as a list of files (OpenVINO 2026.4), so a
    path with one is read through the same ONNX frontend by `Core.read_model` instead.

    Raises:
        ExportError: OpenVINO cannot convert it (the first line of its message).
    """
    import openvino as ov

    try:
        if "," in str(onnx_path):
            return ov.Core().read_model(str(onnx_path))
        return ov.convert_model(str(onnx_path))
    except Exception as err:  # noqa: BLE001 - OpenVINO raises many types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ExportError(f"{onnx_path}: OpenVINO conversion failed: {first}") from err


def add_nms(model, conf_thres: float, iou_thres: float, max_det: int, multi_label: bool = False):
    """Append class-aware NMS to a decoded model (one output `[B, N, 5+C]`).

    The semantics are the host NMS's (`yolo_slim.ops.nms.non_max_suppression`): a
    row's score is objectness x class probability, a row competes only with its best
    class unless `multi_label`, rows scoring <= `conf_thres` are dropped, a box is
    suppressed by a better one of its class with IoU > `iou_thres` (areas without
    darknet's +1, as OpenCV's NMS), and at most `max_det` detections per image are
    kept, by score. The thresholds become constants of the graph.

    Returns:
        A new `ov.Model` with one output `detections [M, 7]` (batch index, x1, y1, x2,
        y2 in input pixels, score, class; image by image, by score within an image)
        and a second output `counts [B]` (detections per image, in batch order).
    """
    import openvino as ov
    import openvino.opset13 as ops
    from openvino import opset9

    if len(model.outputs) != 1:
        raise ExportError(f"add_nms: expected one decoded output, the model has {len(model.outputs)}")
    old_result = model.get_results()[0]
    out = old_result.input_value(0)
    out.remove_target_input(old_result.input(0))  # detach, or plugins still see the old Result
    out.get_tensor().set_names({"decoded"})
    shape = out.get_partial_shape()
    if shape.rank.is_static and shape.rank.get_length() != 3:
        raise ExportError(f"add_nms: expected a decoded output [B, N, 5+C], got {shape}")

    def cols(a: int, b: int):
        return ops.slice(out, np.array([a]), np.array([b]), np.array([1]), np.array([2]))

    xy, wh, obj, cls = cols(0, 2), cols(2, 4), cols(4, 5), cols(5, 1 << 30)
    half = ops.multiply(wh, np.array(0.5, np.float32))
    boxes = ops.concat([ops.subtract(xy, half), ops.add(xy, half)], 2)  # [B, N, 4] x1 y1 x2 y2
    scores = ops.multiply(cls, obj)  # [B, N, C]
    if not multi_label:  # keep each row's best class only (the first on ties, as argmax)
        best = ops.topk(scores, np.array(1, np.int64), 2, "max", "none").output(1)
        depth = ops.gather(ops.shape_of(scores, "i64"), np.array(2, np.int64), np.array(0, np.int64))
        one_hot = ops.one_hot(ops.squeeze(best, np.array([2], np.int64)), depth, np.array(1.0, np.float32), np.array(0.0, np.float32), -1)
        scores = ops.multiply(scores, one_hot)
    nms = opset9.multiclass_nms(
        boxes, ops.transpose(scores, np.array([0, 2, 1])), sort_result_type="score", sort_result_across_batch=False,
        output_type="i32", iou_threshold=float(iou_thres), score_threshold=float(conf_thres), nms_top_k=-1,
        keep_top_k=int(max_det), background_class=-1, normalized=True, nms_eta=1.0,
    )
    selected, indices, counts = nms.output(0), nms.output(1), nms.output(2)  # [M,6] cls,score,x1..y2; [M,1]; [B]
    n_rows = ops.shape_of(out, "i32")
    rows = ops.gather(n_rows, np.array([1], np.int32), np.array(0, np.int32))
    batch_idx = ops.convert(ops.divide(indices, rows), "f32")  # flat index // N
    cls_col = ops.slice(selected, np.array([0]), np.array([1]), np.array([1]), np.array([1]))
    score_col = ops.slice(selected, np.array([1]), np.array([2]), np.array([1]), np.array([1]))
    box_cols = ops.slice(selected, np.array([2]), np.array([6]), np.array([1]), np.array([1]))
    dets = ops.concat([batch_idx, box_cols, score_col, cls_col], 1)
    dets.output(0).get_tensor().set_names({OUTPUT_NAME})
    counts.get_tensor().set_names({"counts"})
    results = [ops.result(dets.output(0)), ops.result(counts)]
    results[0].set_friendly_name(OUTPUT_NAME)
    results[1].set_friendly_name("counts")
    return ov.Model(results, model.get_parameters(), "yolo_with_nms")


def save_ir(model, xml_path: str | os.PathLike, fp16: bool) -> Path:
    """Write `model` as `xml_path` + `.bin`, weights FP16-compressed only if `fp16`.

    Both files are written in a temporary folder beside the target and renamed
    (`.bin` first), so a reader never sees a half-written pair.
    """
    import openvino as ov

    xml_path = Path(xml_path)
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=xml_path.parent, prefix=".ir-") as tmp:
        tmp_xml = Path(tmp) / xml_path.name
        try:
            ov.save_model(model, str(tmp_xml), compress_to_fp16=bool(fp16))
        except Exception as err:  # noqa: BLE001
            raise ExportError(f"{xml_path}: OpenVINO save_model failed: {err}") from err
        os.replace(tmp_xml.with_suffix(".bin"), xml_path.with_suffix(".bin"))
        os.replace(tmp_xml, xml_path)
    return xml_path
