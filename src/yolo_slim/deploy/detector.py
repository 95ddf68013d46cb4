"""`OpenVINODetector`: an exported IR plus its `meta.json`, as a BGR-image detector.

Per image: letterbox on the host (OpenCV; the resize and the pad depend on the
image's aspect ratio), then OpenVINO's PrePostProcessor inside the compiled model
takes the u8 NHWC BGR tensor, converts it to RGB float, scales by 1/255 and
transposes to NCHW. After inference: host NMS (`yolo_slim.ops.nms_numpy`) unless
the IR carries NMS, then boxes are mapped back to the original image.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np

from yolo_slim.errors import DeployError
from yolo_slim.export.meta import META_NAME, read_meta
from yolo_slim.io.finite import check_ir_finite
from yolo_slim.ops.letterbox import LetterboxInfo, boxes_to_original, letterbox
from yolo_slim.ops.nms import nms_numpy

Hint = Literal["latency", "throughput"]
EMPTY = np.zeros((0, 6), dtype=np.float32)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("Exception from")]
    return lines[0] if lines else type(err).__name__


class OpenVINODetector:
    """Detect objects with an OpenVINO IR written by `export.py`.

    Args:
        xml_path: the `model.xml`; `meta.json` must sit beside it.
        device: OpenVINO device (`CPU`, `GPU`, `AUTO`, ...).
        hint: OpenVINO performance hint.
        conf_thres: score threshold (objectness x class probability) of host NMS.
        iou_thres: IoU threshold of host NMS.
        max_det: most detections per image.
        input_hw: reshape the network input to this (height, width) in pixels
            (e.g. twice the export size for a mosaic); default the exported size.
        batch: reshape the batch dimension to this; default as exported.
        config: extra OpenVINO compile properties (e.g. `{"INFERENCE_NUM_THREADS": 2,
            "NUM_STREAMS": 1}` to pin a benchmark's settings); they override the hint's.

    Attributes:
        meta: the validated `meta.json` content.
        input_hw: the (height, width) images are letterboxed to.
        batch: the compiled batch size.
        compiled: the `ov.CompiledModel` (u8 NHWC BGR input).
        names: class names.

    Raises:
        DeployError: missing or invalid `meta.json`, an IR that cannot be read or
            does not match the meta, or a reshape the IR does not allow.
    """

    def __init__(
        self,
        xml_path: str | os.PathLike,
        device: str = "CPU",
        hint: Hint = "latency",
        conf_thres: float = 0.25,
        iou_thres: float = 0.45,
        max_det: int = 300,
        input_hw: tuple[int, int] | None = None,
        batch: int | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        import openvino as ov
        import openvino.properties.hint as hints

        xml_path = Path(xml_path)
        if hint not in ("latency", "throughput"):
            raise DeployError(f"OpenVINODetector: hint must be 'latency' or 'throughput', got {hint!r}")
        if not xml_path.is_file() or not xml_path.with_suffix(".bin").is_file():
            raise DeployError(f"{xml_path}: OpenVINO IR not found (need {xml_path.name} and {xml_path.with_suffix('.bin').name})")
        self.meta = read_meta(xml_path.parent / META_NAME)
        self.xml_path = xml_path
        self.names = list(self.meta["names"])
        self.conf_thres, self.iou_thres, self.max_det = float(conf_thres), float(iou_thres), int(max_det)
        self.nms_in_graph = bool(self.meta["nms_in_graph"])
        core = ov.Core()
        try:
            model = core.read_model(str(xml_path))
        except Exception as err:  # noqa: BLE001 - OpenVINO raises RuntimeError and others
            raise DeployError(f"{xml_path}: cannot read the OpenVINO IR (corrupt or not an IR): {_first_line(err)}") from None
        self._check_against_meta(model)
        check_ir_finite(model, str(xml_path))  # NaN/inf weights would detect nothing, silently
        exported_hw = tuple(self.meta["input_size"])
        self.input_hw = tuple(int(v) for v in (input_hw or exported_hw))
        shape = model.input(0).get_partial_shape()
        want_batch = batch if batch is not None else (shape[0].get_length() if shape[0].is_static else 1)
        if self.input_hw != exported_hw or batch is not None or shape.is_dynamic:
            target = [int(want_batch), 3, *self.input_hw]
            try:
                model.reshape({model.input(0): ov.PartialShape(target)})
            except Exception as err:  # noqa: BLE001
                raise DeployError(
                    f"{xml_path}: the IR cannot be reshaped to {target} ({_first_line(err)}); export it with "
                    "export.dynamic=[batch,spatial] for other batch sizes or mosaic input sizes"
                ) from None
        self.batch = int(want_batch)
        properties = {hints.performance_mode: self._mode(hint), **(config or {})}
        self.compiled = core.compile_model(self._with_preprocessing(model), device, properties)
        self._request = self.compiled.create_infer_request()

    @staticmethod
    def _mode(hint: Hint):
        import openvino.properties.hint as hints

        return hints.PerformanceMode.LATENCY if hint == "latency" else hints.PerformanceMode.THROUGHPUT

    def _check_against_meta(self, model) -> None:
        problems = []
        if len(model.inputs) != 1:
            problems.append(f"{len(model.inputs)} inputs, expected 1")
        else:
            shape = model.input(0).get_partial_shape()
            if shape.rank.is_dynamic or shape.rank.get_length() != 4 or (shape[1].is_static and shape[1].get_length() != 3):
                problems.append(f"input shape {shape}, expected [B, 3, H, W]")
            elif "spatial" not in self.meta.get("dynamic", []):
                hw = [d.get_length() if d.is_static else None for d in (shape[2], shape[3])]
                if None not in hw and hw != self.meta["input_size"]:
                    problems.append(f"input size {hw} but meta.json says {self.meta['input_size']}")
        out = model.output(0).get_partial_shape()
        last = out[out.rank.get_length() - 1] if out.rank.is_static else None
        if self.nms_in_graph:
            if out.rank.is_dynamic or out.rank.get_length() != 2 or (last.is_static and last.get_length() != 7):
                problems.append(f"meta.json says NMS is in the graph (output [M, 7]) but the output is {out}")
        else:
            want = 5 + int(self.meta["num_classes"])
            if out.rank.is_dynamic or out.rank.get_length() != 3 or (last.is_static and last.get_length() != want):
                problems.append(f"output {out}, but meta.json ({self.meta['num_classes']} classes, host NMS) needs [B, N, {want}]")
        if problems:
            raise DeployError(f"{self.xml_path}: IR does not match its meta.json: " + "; ".join(problems))

    @staticmethod
    def _with_preprocessing(model):
        import openvino as ov
        from openvino.preprocess import ColorFormat, PrePostProcessor

        ppp = PrePostProcessor(model)
        ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(ColorFormat.BGR)
        ppp.input().model().set_layout(ov.Layout("NCHW"))
        ppp.input().preprocess().convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB).scale(255.0)
        return ppp.build()

    # ------------------------------------------------------------------ steps

    def prepare(self, image_bgr: np.ndarray) -> tuple[np.ndarray, LetterboxInfo]:
        """Letterbox one BGR uint8 image `[H, W, 3]` to the network size (host side)."""
        color = tuple(self.meta["letterbox"].get("color", (114, 114, 114)))
        return letterbox(image_bgr, self.input_hw, color=color)

    def infer(self, batch_u8: np.ndarray, request=None) -> list[np.ndarray]:
        """Run the network on letterboxed images `[B, H, W, 3]` u8 BGR (B = `self.batch`).

        Returns:
            Per image, the network's rows in input pixels: `[N, 5+C]` decoded rows
            (host NMS) or `[K, 6]` final detections (NMS in the graph).
        """
        request = request or self._request
        request.infer({0: batch_u8})
        return self.split_outputs(request, batch_u8.shape[0])

    def split_outputs(self, request, n: int) -> list[np.ndarray]:
        """The per-image rows from a finished infer request (see `infer`)."""
        out = request.get_output_tensor(0).data
        if not self.nms_in_graph:
            return [np.array(out[i]) for i in range(n)]
        rows = np.array(out)
        idx = rows[:, 0].astype(np.int64)
        return [rows[idx == i, 1:7] for i in range(n)]

    def postprocess(self, rows: np.ndarray, info: LetterboxInfo, orig_hw: tuple[int, int]) -> np.ndarray:
        """Network rows of one image -> `[K, 6]` x1, y1, x2, y2, score, class in original pixels."""
        dets = rows if self.nms_in_graph else self.nms(rows)
        return self.to_original(dets, info, orig_hw)

    def nms(self, rows: np.ndarray) -> np.ndarray:
        """Host NMS of decoded rows `[N, 5+C]` -> `[K, 6]` in input pixels."""
        return nms_numpy(np.ascontiguousarray(rows, dtype=np.float32), self.conf_thres, self.iou_thres, max_det=self.max_det)

    @staticmethod
    def to_original(dets: np.ndarray, info: LetterboxInfo, orig_hw: tuple[int, int]) -> np.ndarray:
        """Map `[K, 6]` detections from letterboxed pixels back to the original image."""
        if len(dets) == 0:
            return EMPTY.copy()
        out = np.array(dets, dtype=np.float32)
        out[:, :4] = boxes_to_original(out[:, :4], info, orig_hw)
        return out

    # ------------------------------------------------------------------ public API

    def detect(self, image_bgr: np.ndarray) -> np.ndarray:
        """Detect in one BGR uint8 image `[H, W, 3]`.

        Returns:
            np.ndarray[K, 6] float32: x1, y1, x2, y2 (original pixels), score, class.
        """
        return self.detect_batch([image_bgr])[0]

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Detect in several BGR uint8 images, `self.batch` per inference request.

        Returns:
            One np.ndarray[K, 6] per image, as `detect`.
        """
        results: list[np.ndarray] = []
        for start in range(0, len(images), self.batch):
            chunk = list(images[start : start + self.batch])
            prepared = [self.prepare(img) for img in chunk]
            tensor = np.zeros((self.batch, *self.input_hw, 3), dtype=np.uint8)
            for i, (boxed, _) in enumerate(prepared):
                tensor[i] = boxed
            rows = self.infer(tensor)
            for i, (img, (_, info)) in enumerate(zip(chunk, prepared)):
                results.append(self.postprocess(rows[i], info, img.shape[:2]))
        return results

    def info(self) -> dict[str, Any]:
        """A short description for logs."""
        return {"xml": str(self.xml_path), "input_hw": self.input_hw, "batch": self.batch, "precision": self.meta["precision"], "nms_in_graph": self.nms_in_graph}
