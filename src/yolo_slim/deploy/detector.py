"""`OpenVINODetector`: an exported IR plus its `meta.json`, as a BGR-image detector.

One inference request takes `frames_per_request` images: stacked as a batch, or
tiled into one mosaic (`mosaic=N`: N letterboxed frames in a near-square grid, the
network input reshaped to the grid's size). Each image has its own input slot, and
the graph stacks or tiles them (`yolo_slim.deploy.graph.attach_slots`), so the host
never copies images together. Where the rest of the work happens:

- `prepare(image)` readies one image for a slot. `preprocess="host"` (default):
  OpenCV letterboxes it, resizing straight into a reusable tile buffer;
  `"graph"`: nothing is done on the host, the frame goes in as it is and the graph
  letterboxes it (for accelerators; on a CPU OpenVINO's resize costs more than
  OpenCV's).
- `PrePostProcessor` converts the u8 NHWC BGR tensor to the model's float RGB NCHW
  input inside the compiled model.
- `nms="host"` (default): `yolo_slim.ops.nms_numpy`, vectorised NumPy candidate
  filtering and OpenCV's NMS, no torch; `"graph"`: `MulticlassNms` appended at load
  time with the same semantics (`yolo_slim.export.openvino.add_nms`). An IR
  exported with NMS keeps its own.

Detections come back per image in the original image's pixels.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal, NamedTuple, Sequence

import numpy as np

from yolo_slim.deploy.graph import FRAME_INPUT, LETTERBOX_INPUT, TILE_INPUT, attach_slots, letterbox_input
from yolo_slim.deploy.interface import ImageDetector
from yolo_slim.deploy.mosaic import mosaic_grid, split_detections
from yolo_slim.errors import DeployError
from yolo_slim.export.meta import META_NAME, read_meta
from yolo_slim.io.finite import check_ir_finite
from yolo_slim.ops.letterbox import LetterboxInfo, boxes_to_original, letterbox
from yolo_slim.ops.nms import nms_numpy

log = logging.getLogger(__name__)
Hint = Literal["latency", "throughput"]
Where = Literal["graph", "host"]
EMPTY = np.zeros((0, 6), dtype=np.float32)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("Exception from")]
    return lines[0] if lines else type(err).__name__


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or 0 in image.shape:
        desc = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise DeployError(f"detector: expected a BGR uint8 image [H, W, 3], got a {desc}")


class Prepared(NamedTuple):
    """One image readied for an input slot by `OpenVINODetector.prepare`.

    Attributes:
        tensor: the slot's u8 image: the letterboxed tile `[th, tw, 3]` (host
            letterbox) or the frame itself `[H, W, 3]` (graph letterbox).
        letterbox: the slot's `letterbox{i}` vector (graph letterbox), else None.
        info: maps the slot's detections back to the image.
        image_hw: (height, width) of the original image, pixels.
    """

    tensor: np.ndarray
    letterbox: np.ndarray | None
    info: LetterboxInfo
    image_hw: tuple[int, int]


class OpenVINODetector(ImageDetector):
    """Detect objects with an OpenVINO IR written by `export.py`.

    Args:
        xml_path: the `model.xml`; `meta.json` must sit beside it.
        device: OpenVINO device (`CPU`, `GPU`, `AUTO`, ...).
        hint: OpenVINO performance hint.
        conf_thres: score threshold (objectness x class probability) of the NMS.
        iou_thres: IoU threshold of the NMS.
        max_det: most detections per image.
        input_hw: letterbox each image to this (height, width) in pixels, reshaping
            the network (needs an IR exported with a dynamic spatial size); default
            the exported size.
        batch: images per request, stacked along the batch (network reshaped to it);
            default as exported.
        mosaic: images per request tiled into one input of `mosaic_grid(mosaic)`
            tiles of `input_hw` (exclusive with `batch`).
        config: extra OpenVINO compile properties (e.g. `{"INFERENCE_NUM_THREADS": 2,
            "NUM_STREAMS": 1}`); they override the hint's.
        preprocess: `host` or `graph` (see the module docstring).
        nms: `host` or `graph`.

    Attributes:
        meta: the validated `meta.json` content.
        tile_hw: the (height, width) every image is letterboxed to.
        input_hw: the network input (height, width): `tile_hw`, or the mosaic's size.
        batch: the network's batch size.
        frames_per_request: images one request takes (`batch`, or `mosaic`).
        grid: (rows, cols) of the mosaic, or None.
        compiled: the `ov.CompiledModel`.
        optimal_requests: the device's optimal number of requests in flight.
        names: class names.

    Raises:
        DeployError: missing or invalid `meta.json`, an IR that cannot be read or
            does not match the meta, a reshape the IR does not allow, or a model the
            device cannot compile (with the option that avoids it).
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
        *,
        mosaic: int | None = None,
        preprocess: Where = "host",
        nms: Where = "host",
    ) -> None:
        import openvino as ov

        from yolo_slim.openvino_core import compile_model
        from yolo_slim.openvino_core import core as openvino_core

        xml_path = Path(xml_path)
        for key, value, allowed in (("hint", hint, ("latency", "throughput")), ("preprocess", preprocess, ("graph", "host")), ("nms", nms, ("graph", "host"))):
            if value not in allowed:
                raise DeployError(f"OpenVINODetector: {key} must be one of {list(allowed)}, got {value!r}")
        if batch is not None and mosaic is not None:
            raise DeployError("OpenVINODetector: give batch or mosaic, not both")
        if (batch is not None and batch < 1) or (mosaic is not None and mosaic < 1):
            raise DeployError(f"OpenVINODetector: batch and mosaic must be >= 1, got {batch}, {mosaic}")
        if not xml_path.is_file() or not xml_path.with_suffix(".bin").is_file():
            raise DeployError(f"{xml_path}: OpenVINO IR not found (need {xml_path.name} and {xml_path.with_suffix('.bin').name})")
        self.meta = read_meta(xml_path.parent / META_NAME)
        self.xml_path = xml_path
        self.names = list(self.meta["names"])
        self.conf_thres, self.iou_thres, self.max_det = float(conf_thres), float(iou_thres), int(max_det)
        self.preprocess = preprocess
        self.color = tuple(int(c) for c in self.meta["letterbox"].get("color", (114, 114, 114)))
        core = openvino_core()
        try:
            model = core.read_model(str(xml_path))
        except Exception as err:  # noqa: BLE001 - OpenVINO raises RuntimeError and others
            raise DeployError(f"{xml_path}: cannot read the OpenVINO IR (corrupt or not an IR): {_first_line(err)}") from None
        self._check_against_meta(model)
        check_ir_finite(model, str(xml_path))  # NaN/inf weights would detect nothing, silently
        self.tile_hw = tuple(int(v) for v in (input_hw or self.meta["input_size"]))
        self.grid = mosaic_grid(mosaic) if mosaic is not None else None
        shape = model.input(0).get_partial_shape()
        if self.grid is not None:
            self.batch, self.frames_per_request = 1, int(mosaic)
            self.input_hw = (self.grid[0] * self.tile_hw[0], self.grid[1] * self.tile_hw[1])
        else:
            self.batch = int(batch if batch is not None else (shape[0].get_length() if shape[0].is_static else 1))
            self.frames_per_request, self.input_hw = self.batch, self.tile_hw
        self._reshape(model, shape)
        self.nms_in_graph = bool(self.meta["nms_in_graph"]) or nms == "graph"
        properties = {"PERFORMANCE_HINT": "LATENCY" if hint == "latency" else "THROUGHPUT", **(config or {})}
        try:
            self.compiled = compile_model(self._runtime_model(model, nms, preprocess), device, properties)
        except Exception as err:  # noqa: BLE001
            extra = " (in-graph letterbox needs dynamic shapes: try preprocess=host)" if preprocess == "graph" else ""
            raise DeployError(f"{xml_path}: {device} cannot compile the model{extra}: {_first_line(err)}") from None
        self.optimal_requests = int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self._request = self.compiled.create_infer_request()
        if preprocess == "graph":  # one pixel, stretched to the tile
            self._blank = Prepared(np.full((1, 1, 3), self.color, np.uint8), np.array([*self.tile_hw, 0, 0], np.int32), None, None)
        else:
            self._blank = Prepared(np.full((*self.tile_hw, 3), self.color, np.uint8), None, None, None)

    def _runtime_model(self, model, nms: Where, preprocess: Where):
        """The IR plus what runs around it in the graph: NMS if asked, colour conversion, the image slots."""
        if self.meta["nms_in_graph"]:
            nms_meta = self.meta.get("nms") or {}
            if (nms_meta.get("conf_thres"), nms_meta.get("iou_thres")) != (self.conf_thres, self.iou_thres):
                log.warning("%s: the IR carries its own NMS (conf_thres %s, iou_thres %s); conf_thres=%s, iou_thres=%s are not used",
                            self.xml_path, nms_meta.get("conf_thres"), nms_meta.get("iou_thres"), self.conf_thres, self.iou_thres)
        elif nms == "graph":
            from yolo_slim.export.openvino import add_nms

            model = add_nms(model, self.conf_thres, self.iou_thres, self.max_det)
        model = self._with_color_conversion(model)
        layout = "grid" if self.grid else "batch"
        return attach_slots(model, self.frames_per_request, self.tile_hw, self.color, layout, self.grid, letterbox=preprocess == "graph")

    def _reshape(self, model, shape) -> None:
        import openvino as ov

        target = [self.batch, 3, *self.input_hw]
        if shape.is_static and list(shape.to_shape()) == target:
            return
        try:
            model.reshape({model.input(0): ov.PartialShape(target)})
        except Exception as err:  # noqa: BLE001
            raise DeployError(
                f"{self.xml_path}: the IR cannot be reshaped to {target} ({_first_line(err)}); export it with "
                "export.dynamic=[batch,spatial] for other batch sizes or mosaic input sizes"
            ) from None

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
        if self.meta["nms_in_graph"]:
            if out.rank.is_dynamic or out.rank.get_length() != 2 or (last.is_static and last.get_length() != 7):
                problems.append(f"meta.json says NMS is in the graph (output [M, 7]) but the output is {out}")
        else:
            want = 5 + int(self.meta["num_classes"])
            if out.rank.is_dynamic or out.rank.get_length() != 3 or (last.is_static and last.get_length() != want):
                problems.append(f"output {out}, but meta.json ({self.meta['num_classes']} classes, host NMS) needs [B, N, {want}]")
        if problems:
            raise DeployError(f"{self.xml_path}: IR does not match its meta.json: " + "; ".join(problems))

    @staticmethod
    def _with_color_conversion(model):
        import openvino as ov
        from openvino.preprocess import ColorFormat, PrePostProcessor

        ppp = PrePostProcessor(model)
        ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(ColorFormat.BGR)
        ppp.input().model().set_layout(ov.Layout("NCHW"))
        ppp.input().preprocess().convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB).scale(255.0)
        return ppp.build()

    # ------------------------------------------------------------------ requests

    def prepare(self, image: np.ndarray, out: np.ndarray | None = None) -> Prepared:
        """Ready one BGR uint8 image `[H, W, 3]` for an input slot (safe to call from reader threads).

        Args:
            image: the image; with `preprocess="graph"` it is referenced, not copied:
                keep it unchanged until its request has finished.
            out: host letterbox only: write the tile into this `[th, tw, 3]` uint8
                buffer instead of a new one (reuse it once the request is done).

        Raises:
            DeployError: the image is not `[H, W, 3]` uint8.
        """
        _check_image(image)
        hw = (int(image.shape[0]), int(image.shape[1]))
        if self.preprocess == "graph":
            vector, info = letterbox_input(hw, self.tile_hw)
            return Prepared(np.ascontiguousarray(image), vector, info, hw)
        tile, info = letterbox(image, self.tile_hw, color=self.color, out=out)
        return Prepared(tile, None, info, hw)

    def inputs(self, prepared: Sequence[Prepared | None]) -> dict[str, np.ndarray]:
        """One request's inputs from up to `frames_per_request` prepared images.

        None (or a missing one at the end) leaves its slot blank: letterbox colour,
        no detections. The arrays are referenced, not copied: pass them with
        `share_inputs=True` and keep them until the request has finished.

        Raises:
            DeployError: more images than slots.
        """
        n = self.frames_per_request
        if len(prepared) > n:
            raise DeployError(f"detector: {len(prepared)} images for a request of {n}")
        feed: dict[str, np.ndarray] = {}
        for i in range(n):
            p = prepared[i] if i < len(prepared) and prepared[i] is not None else self._blank
            if self.preprocess == "graph":
                feed[FRAME_INPUT.format(i)], feed[LETTERBOX_INPUT.format(i)] = p.tensor[None], p.letterbox
            else:
                feed[TILE_INPUT.format(i)] = p.tensor[None]
        return feed

    def results(self, request, prepared: Sequence[Prepared | None]) -> list[np.ndarray | None]:
        """Per slot, the detections `[K, 6]` (original pixels) of a finished request; None for a blank slot.

        Args:
            request: the finished `ov.InferRequest`.
            prepared: what its `inputs` were made from.
        """
        per_image = self._network_detections(request)
        if self.grid is not None:
            per_image = split_detections(per_image[0], self.grid, self.tile_hw)
        return [None if p is None else self.to_original(dets, p.info, p.image_hw) for dets, p in zip(per_image, prepared)]

    def _network_detections(self, request) -> list[np.ndarray]:
        """`[K, 6]` detections per network image (batch entry), in network-input pixels."""
        out = request.get_output_tensor(0).data
        if not self.nms_in_graph:
            return [nms_numpy(np.ascontiguousarray(out[i], dtype=np.float32), self.conf_thres, self.iou_thres, max_det=self.max_det)
                    for i in range(self.batch)]
        rows = np.array(out, dtype=np.float32)
        counts = np.array(request.get_output_tensor(1).data, dtype=np.int64).reshape(-1)
        rows = rows[np.argsort(rows[:, 0], kind="stable")]  # grouped by image in batch order, by score within each
        return np.split(rows[:, 1:7], np.cumsum(counts)[:-1])

    @staticmethod
    def to_original(dets: np.ndarray, info: LetterboxInfo, orig_hw: tuple[int, int]) -> np.ndarray:
        """Map `[K, 6]` detections from letterboxed pixels back to the original image."""
        if len(dets) == 0:
            return EMPTY.copy()
        out = np.array(dets, dtype=np.float32)
        out[:, :4] = boxes_to_original(out[:, :4], info, orig_hw)
        return out

    # ------------------------------------------------------------------ public API

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Detect in several BGR uint8 images, `frames_per_request` per inference request.

        Returns:
            One np.ndarray[K, 6] per image, as `detect`.
        """
        results: list[np.ndarray] = []
        n = self.frames_per_request
        for start in range(0, len(images), n):
            prepared = [self.prepare(img) for img in images[start : start + n]]
            self._request.infer(self.inputs(prepared), share_inputs=True)
            results += self.results(self._request, prepared)
        return results

    def info(self) -> dict[str, Any]:
        """A short description for logs."""
        return {"xml": str(self.xml_path), "input_hw": self.input_hw, "batch": self.batch, "mosaic": self.grid,
                "precision": self.meta["precision"], "preprocess": self.preprocess, "nms_in_graph": self.nms_in_graph}
