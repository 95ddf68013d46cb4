"""`export(cfg)`: a darknet model -> `model.onnx`, `model.xml`/`.bin` and `meta.json`.

Steps: build the model from its cfg (zoo name or file) and weights (or random init,
recorded in the meta), export ONNX and check it against PyTorch with ONNX Runtime,
convert it with OpenVINO, check the FP32 IR against PyTorch, compress (FP16) or
quantize (INT8 with NNCF on calibration images from the configured data), optionally
append NMS, and write `meta.json`. With a labelled dataset, INT8 (or FP16) mAP@0.5
is reported next to FP32's.

The config is validated first (`yolo_slim.config.validate_config`). The model comes
through `yolo_slim.model.load_model` like in every app: a zoo name or `.cfg` with
darknet `.weights`, or a `.ckpt` (its EMA weights; its own cfg when `model.cfg` is
null). The IR, the calibration images and the mAP all use one size: `img_size`, else
the model's own (`yolo_slim.config.sizes`). `data` is resolved like in training
(`yolo_slim.config.datasets`); a folder without `.data` file or `train/` folder is a
plain image folder, used for calibration only.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from yolo_slim.config import validate_config
from yolo_slim.config.datasets import dataset_spec, has_data
from yolo_slim.config.devices import openvino_device
from yolo_slim.config.location import output_dir
from yolo_slim.config.sizes import resolve_img_size
from yolo_slim.darknet.shapes import max_stride
from yolo_slim.errors import ConfigError, DataError, ExportError
from yolo_slim.export.meta import META_NAME, build_meta, write_meta
from yolo_slim.export.onnx import export_onnx, run_onnxruntime
from yolo_slim.export.parity import compare_decoded
from yolo_slim.io.finite import describe_nonfinite
from yolo_slim.io.staging import staged_outputs
from yolo_slim.model import Darknet, load_model
from yolo_slim.progress import ProgressTask, progress_task

log = logging.getLogger(__name__)
FORMATS = ("onnx", "openvino")
PRECISIONS = ("fp32", "fp16", "int8")


def _data_sources(cfg: DictConfig, img_size: int):
    """(names, calibration images, labelled validation images, label reader) of `cfg.data`.

    `data` is anything `yolo_slim.data.sources.resolve_dataset` takes (a `.data` file, a
    data.yaml, a COCO json, a dataset folder, 'builtin'), or a plain image folder
    (calibration only, no mAP). Calibration uses the training images of a dataset.

    Raises:
        DataError: the data cannot be found or has no training images to calibrate on.
    """
    from yolo_slim.data.formats import resolve_image_list
    from yolo_slim.data.sources import is_dataset_folder

    if not has_data(cfg.data):
        return None, [], [], None
    path = Path(str(cfg.data)).expanduser()
    if str(cfg.data) != "builtin" and path.is_dir() and not is_dataset_folder(path):
        log.info("export: data=%s is an image folder without a dataset description: calibration only, no mAP", path)
        return None, resolve_image_list(path), [], None
    spec = dataset_spec(str(cfg.data), cfg.builtin, img_size, cfg.paths.data_dir)
    train, valid = spec.images("train"), spec.images("valid")
    if not train:
        raise DataError(f"{cfg.data}: no training images to calibrate on")
    return list(spec.names), train, valid, spec.read_labels


def _check_options(e: DictConfig) -> tuple[list[str], str, list[str]]:
    formats = list(e.formats)
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ConfigError(f"export.formats: {formats} not a non-empty subset of {list(FORMATS)}")
    if e.precision not in PRECISIONS:
        raise ConfigError(f"export.precision: {e.precision!r} not one of {list(PRECISIONS)}")
    if e.precision != "fp32" and "openvino" not in formats:
        raise ConfigError(f"export.precision={e.precision} needs 'openvino' in export.formats")
    if e.nms not in ("host", "graph"):
        raise ConfigError(f"export.nms: {e.nms!r} not 'host' or 'graph'")
    if int(e.batch) < 1:
        raise ConfigError(f"export.batch must be >= 1, got {e.batch}")
    dynamic = list(e.dynamic or [])
    bad = sorted(set(dynamic) - {"batch", "spatial"})
    if bad:
        raise ExportError(f"export: unknown dynamic axes {bad}; allowed: ['batch', 'spatial']")
    return formats, str(e.precision), dynamic


def build_model(cfg: DictConfig, img_size: int) -> tuple[Darknet, str | None]:
    """The model to export at `img_size` and the weights path it was loaded from (None: random init)."""
    weights = cfg.weights
    model = load_model(cfg.model.cfg, weights, cfg.model.classes, img_size)
    if not weights:
        log.warning("export: no weights given, exporting a randomly initialised model (recorded in meta.json)")
    return model.eval(), (str(weights) if weights else None)


def export(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Path]]:
    """Export a darknet model for deployment.

    Returns:
        `(metrics, artifacts)`: parity reports (`export/onnx_parity/...`,
        `export/ir_parity/...`), timings, and mAP figures when a labelled dataset is
        configured; artifact paths by name (`onnx`, `xml`, `bin`, `meta`).

    Raises:
        ConfigError, CfgError, WeightsError, DataError, ExportError.
    """
    cfg = validate_config(cfg, "export")
    with progress_task("export") as steps:
        return _export(cfg, steps)


def _export(cfg: DictConfig, steps: ProgressTask) -> tuple[dict[str, float], dict[str, Path]]:
    """The steps of `export` on a validated `cfg`, each announced on `steps`."""
    e = cfg.export
    formats, precision, dynamic = _check_options(e)
    if precision == "int8" and not has_data(cfg.data):
        raise ConfigError("export.precision=int8 needs calibration images: give data=PATH (a .data file, dataset folder or image folder) or data=builtin")
    torch.manual_seed(int(cfg.seed))
    img_size = resolve_img_size(cfg.img_size, cfg.model.cfg, cfg.weights)
    out = output_dir(cfg)
    names, calib_paths, valid_paths, read_labels = _data_sources(cfg, img_size)
    openvino_steps = (3 + (precision == "int8") + bool(e.speed.measure) + (bool(valid_paths) and bool(e.evaluate))) if "openvino" in formats else 0
    steps.set_total(2 + openvino_steps)
    model, weights = build_model(cfg, img_size)
    out.mkdir(parents=True, exist_ok=True)
    hw = (img_size, img_size)
    batch = int(e.batch)
    names = list(cfg.names or []) or names
    if names is not None and len(names) != model.num_classes:
        raise ExportError(f"export: {len(names)} class names from the data but the model has {model.num_classes} classes")
    metrics: dict[str, float] = {}
    staged: dict[str, Path] = {}

    x = torch.rand(batch, 3, *hw, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = model(x).numpy()
    if not np.isfinite(reference).all():  # fail before the (slow) exports, with the reason
        raise ExportError(
            f"export: the model's own PyTorch output holds NaN/inf ({describe_nonfinite(reference)}) on a random input in [0, 1]; "
            "its weights are finite but overflow: check the weights file"
        )

    # everything is written into a staging folder in `out` and moved in at the end, so a
    # failed check, an error or an interrupt leaves `out` as it was (yolo_slim.io.staging)
    with staged_outputs(out) as stage:
        onnx_path = stage.path / "model.onnx"
        steps.step("ONNX export")
        export_onnx(model, onnx_path, img_hw=hw, batch=batch, dynamic=dynamic, exporter=e.exporter, opset=int(e.opset),
                    max_stride=max_stride(model.cfg))
        steps.step("ONNX Runtime against PyTorch")
        report = compare_decoded(reference, run_onnxruntime(onnx_path, x), float(e.parity_tol), "onnxruntime")
        metrics.update(report.as_metrics("export/onnx_parity"))
        if not report.ok:
            raise ExportError(f"export: ONNX Runtime differs from PyTorch by {report.rel_error:.2e} of scale (> {report.tolerance:.0e})")
        if "onnx" in formats:
            staged["onnx"] = onnx_path

        nms = GraphNms(float(e.conf_thres), float(e.iou_thres), int(e.max_det)) if e.nms == "graph" else None
        if "openvino" in formats:
            job = IrJob(onnx_path, x, reference, calib_paths, hw, batch, nms)
            metrics.update(_export_openvino(cfg, job, staged, steps))
        meta = build_meta(model.cfg, img_hw=hw, names=names, precision=precision if "openvino" in formats else "fp32",
                          weights=weights, batch=batch, dynamic=dynamic, nms=asdict(nms) if nms else None)
        if "xml_fp32" in staged:  # the FP32 reference IR is a deployable model of its own
            staged["meta_fp32"] = write_meta(staged["xml_fp32"].parent / META_NAME, {**meta, "precision": "fp32"})
        staged["meta"] = write_meta(stage.path / META_NAME, meta)
        if "openvino" in formats and bool(e.speed.measure):
            steps.step("time the IRs")
            shape = [1 if "batch" in dynamic else batch, 3, *hw]
            metrics.update(_measure_speed(staged, precision, shape, openvino_device(cfg.device), int(e.speed.rounds)))
        if "openvino" in formats and valid_paths and bool(e.evaluate):
            steps.step("mAP of the IR")
            metrics.update(_evaluate(stage.path, staged["xml"], valid_paths, model.num_classes, cfg, read_labels))
        stage.commit([p for p in stage.path.rglob("*") if p.is_file() and (p != onnx_path or "onnx" in formats)])
    return metrics, {name: stage.final(path) for name, path in staged.items()}


@dataclass(frozen=True)
class GraphNms:
    """The NMS appended to the IR (``export.nms=graph``): thresholds in [0, 1], boxes kept per image."""

    conf_thres: float
    iou_thres: float
    max_det: int


@dataclass(frozen=True)
class IrJob:
    """What the OpenVINO step works from, all made by the ONNX step before it.

    Attributes:
        onnx_path: the checked `model.onnx` (in the staging folder).
        sample: Float[B, 3, H, W], the parity input in [0, 1].
        reference: Float[B, N, 5+C], PyTorch's decoded output on `sample`.
        calib_paths: images for INT8 calibration (may be empty for fp32/fp16).
        hw: the IR's input (height, width), pixels.
        batch: the IR's batch size.
        nms: the NMS to append, or None.
    """

    onnx_path: Path
    sample: torch.Tensor
    reference: np.ndarray
    calib_paths: list[Path]
    hw: tuple[int, int]
    batch: int
    nms: GraphNms | None


def _export_openvino(cfg: DictConfig, job: IrJob, artifacts: dict[str, Path], steps: ProgressTask) -> dict[str, float]:
    """Convert, check, compress or quantize, append NMS and save the IR (and its FP32
    twin) into the staging folder beside `job.onnx_path`; the parity metrics."""
    import openvino as ov

    from yolo_slim.export.openvino import add_nms, convert_onnx, save_ir
    from yolo_slim.openvino_core import compile_model

    e = cfg.export
    out = job.onnx_path.parent
    metrics: dict[str, float] = {}
    steps.step("OpenVINO conversion")
    fp32 = convert_onnx(job.onnx_path)
    steps.step("OpenVINO IR against PyTorch")
    compiled = compile_model(fp32, openvino_device(cfg.device), {"INFERENCE_PRECISION_HINT": "f32"})
    report = compare_decoded(job.reference, compiled(job.sample.numpy())[0], float(e.ir_parity_tol), "openvino")
    metrics.update(report.as_metrics("export/ir_parity"))
    if not report.ok:
        raise ExportError(f"export: the FP32 IR differs from PyTorch by {report.rel_error:.2e} of scale (> {report.tolerance:.0e})")
    model = fp32
    if e.precision == "int8":
        from yolo_slim.export.quantize import load_calibration_images, quantize_int8

        steps.step("INT8 quantization")
        inputs = load_calibration_images(job.calib_paths, job.hw, int(e.calibration_images))
        metrics["export/calibration_images"] = float(len(inputs))
        fp32_ref = convert_onnx(job.onnx_path)  # quantize works on its own copy
        model = quantize_int8(fp32_ref, inputs, int(e.calibration_images), job.batch)
    nms = job.nms
    if nms is not None:
        model = add_nms(model, nms.conf_thres, nms.iou_thres, nms.max_det)
    steps.step(f"save the {e.precision.upper()} IR")
    xml = save_ir(model, out / "model.xml", fp16=e.precision == "fp16")
    artifacts["xml"], artifacts["bin"] = xml, xml.with_suffix(".bin")
    if e.precision != "fp32":
        # keep an FP32 IR beside for the accuracy comparison (and for users who want both)
        ref = add_nms(convert_onnx(job.onnx_path), nms.conf_thres, nms.iou_thres, nms.max_det) if nms else convert_onnx(job.onnx_path)
        artifacts["xml_fp32"] = save_ir(ref, out / "fp32" / "model.xml", fp16=False)
    return metrics


def _measure_speed(artifacts: dict[str, Path], precision: str, shape: list[int], device: str, rounds: int) -> dict[str, float]:
    """Time the IRs written (this precision and its FP32 reference) and record the result.

    The record goes into each IR's `meta.json` (key `speed`, IR paths relative to
    that meta.json); the summary is logged, with a warning for each precision slower
    than FP32 saying why.
    """
    from yolo_slim.export.precision import measure_precisions

    irs = {precision: artifacts["xml"]} | ({"fp32": artifacts["xml_fp32"]} if "xml_fp32" in artifacts else {})
    report = measure_precisions(irs, device, rounds=rounds, input_shape=shape)
    for line in report.summary()[: len(report.timings) + 1]:
        log.info("export speed: %s", line)
    for note in report.notes:
        log.warning("export speed: %s", note)
    for key in ("meta", "meta_fp32"):
        if key in artifacts:
            path = artifacts[key]
            write_meta(path, json.loads(path.read_text(encoding="utf-8")) | {"speed": report.as_dict(relative_to=path.parent)})
    metrics = {"export/speed/overhead_ms": report.overhead_ms}
    for t in report.timings:
        metrics[f"export/speed/{t.precision}_latency_ms"] = t.latency_ms
        metrics[f"export/speed/{t.precision}_fps"] = t.throughput_fps
    return metrics


def _evaluate(out: Path, xml: Path, valid: list[Path], num_classes: int, cfg: DictConfig, read_labels=None) -> dict[str, float]:
    from yolo_slim.deploy.detector import OpenVINODetector
    from yolo_slim.deploy.evaluate import evaluate_detector

    limit = cfg.export.eval_images
    metrics: dict[str, float] = {}
    prec = str(cfg.export.precision)
    ev = {"device": openvino_device(cfg.device), "conf_thres": float(cfg.eval.conf_thres), "iou_thres": float(cfg.eval.iou_thres),
          "max_det": int(cfg.eval.max_det)}
    det = OpenVINODetector(xml, **ev)
    for k, v in evaluate_detector(det, valid, num_classes, limit, read_labels=read_labels).items():
        metrics[f"export/{prec}_{k}"] = v
    fp32_xml = out / "fp32" / "model.xml"
    if prec != "fp32" and fp32_xml.is_file():
        det = OpenVINODetector(fp32_xml, **ev)
        for k, v in evaluate_detector(det, valid, num_classes, limit, read_labels=read_labels).items():
            metrics[f"export/fp32_{k}"] = v
        metrics[f"export/{prec}_mAP50_drop"] = metrics["export/fp32_mAP50"] - metrics[f"export/{prec}_mAP50"]
    return metrics
