"""Stage 7: what the slimming bought, measured in one run.

For the baseline, the sparse model and the fine-tuned slim model: P, R, mAP@0.5 of
the PyTorch model on the validation set, with PR curves; for the baseline and the
slim model also every deployed form (ONNX Runtime, OpenVINO FP32/FP16/INT8; the FP32 IR
both in f32 and in the device's default where that is lower, bf16 on a CPU with AMX) with
its batch-1 latency, all engines timed interleaved; the |gamma| histograms of the
three models; and a sample image with the slim IR's detections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2

from yolo_slim.config.devices import openvino_device
from yolo_slim.model import load_model
from yolo_slim.metrics.evaluate import evaluate_model
from yolo_slim.metrics.plots import plot_pr_curves
from yolo_slim.pipeline.measure import (
    cost_row,
    interleaved_latency,
    onnxruntime_engine,
    openvino_engine,
    torch_engine,
)
from yolo_slim.pipeline.context import StageContext
from yolo_slim.pipeline.jobs import baseline_config

def _validation_batches(ctx: StageContext) -> tuple[list[Any], Any]:
    """The pipeline's validation set at its input size, loaded with the baseline stage's loader settings."""
    from yolo_slim.config.datasets import build_datamodule

    datamodule = build_datamodule(baseline_config(ctx), int(ctx.img_size), num_workers=0)
    datamodule.prepare_data()
    datamodule.setup("validate")
    return list(datamodule.val_dataloader()), datamodule


def benchmark_models(ctx: StageContext) -> dict[str, tuple[str, str]]:
    """Model name -> (cfg, weights) of the trained models present in the results."""
    sources = {"baseline": ("baseline", "best_weights"), "sparse": ("sparsity", "last_weights"), "slim": ("finetune", "best_weights")}
    return {name: (ctx.need(stage, "cfg"), ctx.need(stage, key)) for name, (stage, key) in sources.items() if stage in ctx.results}


def benchmark(ctx: StageContext) -> dict[str, Any]:
    """Run the measurements; returns rows per model and engine, and plot paths."""
    from yolo_slim.sparsity.scope import select_bn_layers
    from yolo_slim.sparsity.stats import gamma_vector, plot_gamma_histograms

    out = ctx.stage_dir("benchmark")
    out.mkdir(parents=True, exist_ok=True)
    hw = (int(ctx.img_size), int(ctx.img_size))
    batches, datamodule = _validation_batches(ctx)
    b = ctx.cfg.benchmark
    e = ctx.cfg.eval
    device = openvino_device(ctx.cfg.deploy_device)
    rows: dict[str, dict[str, Any]] = {}
    gammas = {}
    engines = {}
    models = {}
    for name, (model_cfg, weights) in benchmark_models(ctx).items():
        model = load_model(model_cfg, weights, img_size=hw[0])
        models[name] = model
        quality = evaluate_model(model, batches, model.num_classes, score_threshold=float(e.score_threshold), conf_thres=float(e.conf_thres),
                                 iou_thres=float(e.iou_thres), max_det=int(e.max_det), curves=True)
        rows[name] = {**quality, **cost_row(model.cfg, hw), "cfg": model_cfg, "weights": weights}
        gammas[name] = gamma_vector(model, select_bn_layers(model, "prunable"))
        engines[f"{name}/pytorch"] = torch_engine(model, hw)
    exported = ctx.results.get("export", {}).get("artifacts", {})
    from yolo_slim.latency.measure import deployed_precision

    default = deployed_precision(device)
    deployed = _openvino_engines(ctx, exported, engines, hw, device, default)
    latency = interleaved_latency(engines, runs=int(b.runs), warmup=int(b.warmup))
    for key, ms in latency.items():
        name, engine = key.split("/")
        entry = deployed.setdefault(key, {})
        entry["latency_ms"] = ms
        if engine in ("pytorch", "onnxruntime") or entry.get("quality_from") == "pytorch":
            # ONNX Runtime and OpenVINO computing in f32 reproduce PyTorch (parity checked at export)
            entry.update({k: rows[name][k] for k in ("precision", "recall", "mAP50")})
        if engine == "pytorch":
            rows[name]["latency_ms"] = ms
    plots = {"gamma": str(plot_gamma_histograms({f"{k} (prunable |gamma|)": v for k, v in gammas.items()}, out / "gamma_hist.png"))}
    pr = {name: (row["pr_recall"], row["pr_precision"]) for name in ("baseline", "slim") if (row := rows.get(name))}
    plots["pr"] = str(plot_pr_curves(pr, datamodule.class_names, out / "pr_curves.png"))
    slim_xml = exported.get("slim_fp32_xml")
    if slim_xml:
        plots["sample"] = str(_sample(slim_xml, datamodule, out / "sample_detections.jpg", device))
    return {"rows": rows, "deployed": deployed, "default_compute": default, "artifacts": plots}


def _openvino_engines(ctx: StageContext, exported: dict[str, str], engines: dict[str, Any], hw: tuple[int, int], device: str,
                      default: str) -> dict[str, dict[str, Any]]:
    """Add the ONNX Runtime and OpenVINO engines of the exported IRs to `engines`; returns
    `model/engine` -> what is known before timing: the IR's P, R and mAP@0.5 as export
    measured them and `compute`, the element type the plugin computes in.

    `openvino_fp32` computes in f32 whatever the device's default. Where the device computes
    an FP32 IR in a lower precision by default (bf16 on a CPU with AMX, f16 on a GPU), that
    default (`deployed_precision(device)`) is timed too, as `openvino_fp32_<default>`: what
    `detect.py` runs there.
    """
    metrics = ctx.results.get("export", {}).get("metrics", {})
    deployed: dict[str, dict[str, Any]] = {}
    for name in ("baseline", "slim"):
        if f"{name}_fp32_onnx" in exported:
            engines[f"{name}/onnxruntime"] = onnxruntime_engine(exported[f"{name}_fp32_onnx"], hw)
        for precision in ("fp32", "fp16", "int8"):
            xml = exported.get(f"{name}_{precision}_xml")
            if not xml:
                continue
            quality = {k: metrics.get(f"{name}_{precision}/{precision}_{k}") for k in ("precision", "recall", "mAP50")}
            if precision == "fp32" and default != "f32":
                engines[f"{name}/openvino_fp32"] = openvino_engine(xml, hw, device, compute="f32")
                deployed[f"{name}/openvino_fp32"] = {"compute": "f32", "quality_from": "pytorch"}  # export measured the default
                engines[f"{name}/openvino_fp32_{default}"] = openvino_engine(xml, hw, device)
                deployed[f"{name}/openvino_fp32_{default}"] = {**quality, "compute": default}
                continue
            engines[f"{name}/openvino_{precision}"] = openvino_engine(xml, hw, device)
            compute = default if precision != "int8" else f"int8, else {default}"
            deployed[f"{name}/openvino_{precision}"] = {**quality, "compute": compute}
    return deployed


def _sample(xml: str, datamodule, path: Path, device: str) -> Path:
    from yolo_slim.io.atomic import write_atomic
    from yolo_slim.deploy.detector import OpenVINODetector
    from yolo_slim.deploy.writers import draw_detections

    image = cv2.imread(str(datamodule.val_dataloader().dataset.images[0]), cv2.IMREAD_COLOR)
    detector = OpenVINODetector(xml, device=device, conf_thres=0.25, iou_thres=0.45)
    drawn = draw_detections(image, detector.detect(image), datamodule.class_names)
    ok, encoded = cv2.imencode(".jpg", drawn)
    return write_atomic(path, encoded.tobytes())
