"""`export(cfg)`: a darknet model -> `model.onnx`, `model.xml`/`.bin` and `meta.json`.

Steps: build the model from its cfg (zoo name or file) and weights (or random init,
recorded in the meta), export ONNX and check it against PyTorch with ONNX Runtime,
convert it with OpenVINO, check the FP32 IR against PyTorch, compress (FP16) or
quantize (INT8 with NNCF on calibration images from the configured data), optionally
append NMS, and write `meta.json`. With a labelled dataset, INT8 (or FP16) mAP@0.5
is reported next to FP32's.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from yolo_slim.darknet.cfg import load_cfg, with_input_size
from yolo_slim.darknet.shapes import check_input_size, max_stride
from yolo_slim.errors import ConfigError, DataError, ExportError
from yolo_slim.export.meta import META_NAME, build_meta, write_meta
from yolo_slim.export.onnx import export_onnx, run_onnxruntime
from yolo_slim.export.parity import compare_decoded
from yolo_slim.io.finite import describe_nonfinite
from yolo_slim.io.staging import staged_outputs
from yolo_slim.model import Darknet

log = logging.getLogger(__name__)
FORMATS = ("onnx", "openvino")
PRECISIONS = ("fp32", "fp16", "int8")


def _output_dir(cfg: DictConfig) -> Path:
    explicit = OmegaConf.select(cfg, "export.out_dir")
    if explicit:
        return Path(explicit)
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    raise ConfigError("export: set export.out_dir (no Hydra run directory outside @hydra.main)")


def _data_sources(data: str | None, root: str, builtin: dict | None = None) -> tuple[list[str] | None, list[Path], list[Path]]:
    """(names, calibration images, labelled validation images) of the configured data.

    `builtin` holds `make_synthetic_dataset` keywords (n_train, n_val, img_size, seed)
    for `data == "builtin"`, generated once into `root`."""
    from yolo_slim.data.formats import read_data_file, resolve_image_list

    if not data:
        return None, [], []
    if data == "builtin":
        from yolo_slim.data.synthetic import make_synthetic_dataset

        data = str(make_synthetic_dataset(root, **(builtin or {})))
    path = Path(data)
    if path.is_dir():
        return None, resolve_image_list(path), []
    if not path.is_file():
        raise DataError(f"{path}: data not found (a .data file, an image folder or 'builtin')")
    spec = read_data_file(path)
    train = [img for src in spec.train for img in resolve_image_list(src)]
    valid = [img for src in spec.valid for img in resolve_image_list(src)]
    return list(spec.names), train or valid, valid


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
    if int(e.batch) < 1 or int(e.img_size) < 1:
        raise ConfigError(f"export.batch and export.img_size must be >= 1, got {e.batch}, {e.img_size}")
    dynamic = list(e.dynamic or [])
    bad = sorted(set(dynamic) - {"batch", "spatial"})
    if bad:
        raise ExportError(f"export: unknown dynamic axes {bad}; allowed: ['batch', 'spatial']")
    return formats, str(e.precision), dynamic


def build_model(cfg: DictConfig) -> tuple[Darknet, str | None]:
    """The model to export and the weights path it was loaded from (None: random init)."""
    img = int(cfg.export.img_size)
    dcfg = load_cfg(str(cfg.model.cfg), classes=OmegaConf.select(cfg, "model.classes"))
    check_input_size(dcfg, img, "export.img_size")
    model = Darknet(with_input_size(dcfg, img))
    weights = OmegaConf.select(cfg, "weights")
    if weights:
        model.load_darknet_weights(str(weights))
    else:
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
    e = cfg.export
    formats, precision, dynamic = _check_options(e)
    torch.manual_seed(int(OmegaConf.select(cfg, "seed", default=0)))
    out = _output_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    data = OmegaConf.select(cfg, "dataset", default=None) or OmegaConf.select(cfg, "data", default=None)  # `data` in older configs
    if data is not None and not isinstance(data, str):
        raise ConfigError(f"export: dataset must be a .data file, an image folder or 'builtin', got {data!r}")
    builtin = OmegaConf.select(cfg, "export.builtin", default=None)
    names, calib_paths, valid_paths = _data_sources(data, str(OmegaConf.select(cfg, "export.data_root", default="data/builtin")),
                                                    OmegaConf.to_container(builtin) if builtin is not None else None)
    if precision == "int8" and not calib_paths:
        raise ConfigError("export.precision=int8 needs calibration images: set data= to a .data file, an image folder or 'builtin'")
    model, weights = build_model(cfg)
    hw = (int(e.img_size), int(e.img_size))
    batch = int(e.batch)
    names = list(OmegaConf.select(cfg, "names") or []) or names
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
        export_onnx(model, onnx_path, img_hw=hw, batch=batch, dynamic=dynamic, exporter=e.exporter, opset=int(e.opset),
                    max_stride=max_stride(model.cfg))
        report = compare_decoded(reference, run_onnxruntime(onnx_path, x), float(e.parity_tol), "onnxruntime")
        metrics.update(report.as_metrics("export/onnx_parity"))
        if not report.ok:
            raise ExportError(f"export: ONNX Runtime differs from PyTorch by {report.rel_error:.2e} of scale (> {report.tolerance:.0e})")
        if "onnx" in formats:
            staged["onnx"] = onnx_path

        nms = {"conf_thres": float(e.conf_thres), "iou_thres": float(e.iou_thres), "max_det": int(e.max_det)} if e.nms == "graph" else None
        if "openvino" in formats:
            metrics.update(_export_openvino(cfg, stage.path, onnx_path, x, reference, calib_paths, hw, batch, nms, staged))
        meta = build_meta(model.cfg, img_hw=hw, names=names, precision=precision if "openvino" in formats else "fp32",
                          weights=weights, batch=batch, dynamic=dynamic, nms=nms)
        staged["meta"] = write_meta(stage.path / META_NAME, meta)
        if "openvino" in formats and valid_paths and bool(e.evaluate):
            metrics.update(_evaluate(stage.path, staged["xml"], valid_paths, model.num_classes, e))
        stage.commit([p for p in stage.path.rglob("*") if p.is_file() and (p != onnx_path or "onnx" in formats)])
    return metrics, {name: stage.final(path) for name, path in staged.items()}


def _export_openvino(cfg, out, onnx_path, x, reference, calib_paths, hw, batch, nms, artifacts) -> dict[str, float]:
    import openvino as ov

    from yolo_slim.export.openvino import add_nms, convert_onnx, save_ir

    e = cfg.export
    metrics: dict[str, float] = {}
    fp32 = convert_onnx(onnx_path)
    compiled = ov.Core().compile_model(fp32, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    report = compare_decoded(reference, compiled(x.numpy())[0], float(e.ir_parity_tol), "openvino")
    metrics.update(report.as_metrics("export/ir_parity"))
    if not report.ok:
        raise ExportError(f"export: the FP32 IR differs from PyTorch by {report.rel_error:.2e} of scale (> {report.tolerance:.0e})")
    model = fp32
    if e.precision == "int8":
        from yolo_slim.export.quantize import load_calibration_images, quantize_int8

        inputs = load_calibration_images(calib_paths, hw, int(e.calibration_images))
        metrics["export/calibration_images"] = float(len(inputs))
        fp32_ref = convert_onnx(onnx_path)  # quantize works on its own copy
        model = quantize_int8(fp32_ref, inputs, int(e.calibration_images), batch)
    if nms is not None:
        model = add_nms(model, nms["conf_thres"], nms["iou_thres"], nms["max_det"])
    xml = save_ir(model, out / "model.xml", fp16=e.precision == "fp16")
    artifacts["xml"], artifacts["bin"] = xml, xml.with_suffix(".bin")
    if e.precision != "fp32":
        # keep an FP32 IR beside for the accuracy comparison (and for users who want both)
        ref = add_nms(convert_onnx(onnx_path), nms["conf_thres"], nms["iou_thres"], nms["max_det"]) if nms else convert_onnx(onnx_path)
        artifacts["xml_fp32"] = save_ir(ref, out / "fp32" / "model.xml", fp16=False)
    return metrics


def _evaluate(out: Path, xml: Path, valid: list[Path], num_classes: int, e) -> dict[str, float]:
    import json

    from yolo_slim.deploy.detector import OpenVINODetector
    from yolo_slim.deploy.evaluate import evaluate_detector

    limit = OmegaConf.select(e, "eval_images")
    metrics: dict[str, float] = {}
    prec = str(e.precision)
    det = OpenVINODetector(xml, conf_thres=0.001, iou_thres=0.6)
    for k, v in evaluate_detector(det, valid, num_classes, limit).items():
        metrics[f"export/{prec}_{k}"] = v
    fp32_xml = out / "fp32" / "model.xml"
    if prec != "fp32" and fp32_xml.is_file():
        meta = json.loads((out / META_NAME).read_text())
        meta["precision"] = "fp32"
        write_meta(fp32_xml.parent / META_NAME, meta)
        det = OpenVINODetector(fp32_xml, conf_thres=0.001, iou_thres=0.6)
        for k, v in evaluate_detector(det, valid, num_classes, limit).items():
            metrics[f"export/fp32_{k}"] = v
        metrics[f"export/{prec}_mAP50_drop"] = metrics["export/fp32_mAP50"] - metrics[f"export/{prec}_mAP50"]
    return metrics
