"""`prune(cfg)`: the pruning task behind `prune.py`.

Loads the model (zoo name or `.cfg`, weights `.weights` or `.ckpt`), plans
(`prune.mode`: channel | layer | layer_channel, or re-applies `prune.plan`), evaluates
the masked network (fast, no surgery) and then the compact one when a dataset is
configured, optionally re-calibrates BatchNorm, and writes into the run dir:
`pruned.cfg`, `pruned.weights`, `pruned.ckpt` (a Lightning checkpoint that
`train.py experiment=*_finetune weights=...` loads), `plan.json`, `report.json` and
`report.md` (one row before, one after: P, R, mAP@0.5, params, .weights size,
latency, BFLOPs). `data.data=none` (or `~data`) gives a cost-only report.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import hydra.utils
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig

from yolo_slim.darknet.cfg import load_cfg, write_atomic, write_cfg_text
from yolo_slim.errors import ConfigError, PruneError
from yolo_slim.graph import build_graph
from yolo_slim.metrics.cost import count_cost, measure_latency
from yolo_slim.model import Darknet
from yolo_slim.prune.mask import mask_model
from yolo_slim.prune.plan import PrunePlan, load_plan, plan_channel_pruning, plan_layer_channel_pruning, plan_layer_pruning, save_plan
from yolo_slim.prune.recalibrate import recalibrate_bn
from yolo_slim.prune.surgery import apply_plan

_log = logging.getLogger(__name__)

MODES = ("channel", "layer", "layer_channel")
OUTPUT_NAMES = ("pruned.cfg", "pruned.weights", "pruned.ckpt", "plan.json", "report.json", "report.md")


def _output_dir(cfg: DictConfig) -> Path:
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path(str(cfg.paths.output_dir))


def load_model(cfg_or_name: str, weights: str | None, classes: int | None, img_size: int | None) -> Darknet:
    """A `Darknet` from a zoo name or `.cfg`, with `.weights` or `.ckpt` (EMA) weights."""
    model = Darknet(load_cfg(cfg_or_name, classes=classes, img_size=img_size))
    if weights:
        path = Path(weights)
        if path.suffix == ".ckpt":
            from yolo_slim.lit.module import ema_state_dict, load_matching_state, read_checkpoint

            load_matching_state(model, ema_state_dict(read_checkpoint(path)["state_dict"]), str(path))
        else:
            model.load_darknet_weights(path)
    return model.eval()


def make_plan(model: Darknet, p: DictConfig) -> PrunePlan:
    """The plan `prune.*` asks for (or the plan file `prune.plan`)."""
    if p.get("plan"):
        return load_plan(p.plan)
    mode = p.get("mode")
    if mode not in MODES:
        raise ConfigError(f"prune.mode={mode!r}; expected one of {', '.join(MODES)}")
    graph = build_graph(model.cfg)
    kw = dict(
        global_percent=float(p.global_percent),
        layer_keep=float(p.layer_keep),
        channel_multiple=int(p.channel_multiple),
        importance=str(p.importance),
        aggregate=str(p.aggregate),
    )
    if mode == "channel":
        return plan_channel_pruning(model, graph, **kw)
    if mode == "layer":
        return plan_layer_pruning(model, int(p.shortcuts), graph)
    return plan_layer_channel_pruning(model, int(p.shortcuts), graph, **kw)


def evaluate(model: Darknet, loader: Any, num_classes: int, e: DictConfig) -> dict[str, float]:
    """P, R (at `e.score_threshold`), mAP@0.5 and mAP@0.5:0.95 of `model` on `loader`."""
    from yolo_slim.lit.module import targets_to_pixels
    from yolo_slim.metrics.detection import DetectionMetrics
    from yolo_slim.ops.nms import non_max_suppression

    metric = DetectionMetrics(num_classes, score_threshold=float(e.score_threshold))
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        for batch in loader:
            images, targets = batch["images"].to(device), batch["targets"]
            hw = (images.shape[2], images.shape[3])
            detections = non_max_suppression(model(images), float(e.conf_thres), float(e.iou_thres), max_det=int(e.max_det))
            metric.update([d.cpu() for d in detections], targets_to_pixels(targets, images.shape[0], hw))
    result = metric.compute()
    return {k: float(result[k]) for k in ("precision", "recall", "mAP50", "mAP50_95")}


def _row(model: Darknet, hw: tuple[int, int], device: str, runs: int, quality: dict[str, float] | None) -> dict[str, Any]:
    cost = count_cost(model.cfg, hw)
    latency = measure_latency(model, (1, model.cfg.net.channels, *hw), runs=runs, warmup=min(3, runs), device=device)
    row = {"params": cost.params, "weights_mib": cost.weights_bytes / 2**20, "bflops": cost.bflops, "latency_ms": latency.median_ms}
    row.update(quality or {})
    return row


def _markdown(rows: dict[str, dict[str, Any]], hw: tuple[int, int], device: str, plan: PrunePlan) -> str:
    head = "| model | P | R | mAP@0.5 | Params | .weights (MiB) | latency (ms) | BFLOPs |"
    lines = [
        f"# Pruning report ({hw[0]}x{hw[1]}, batch 1, {device})",
        "",
        f"plan: global_percent={plan.global_percent}, layer_keep={plan.layer_keep}, channel_multiple={plan.channel_multiple}, "
        f"shortcuts={plan.shortcuts}, removed units={len(plan.removed_units)}",
        "",
        head,
        "|---|---|---|---|---|---|---|---|",
    ]

    def f(row: dict[str, Any], key: str) -> str:
        return f"{row[key]:.4f}" if key in row else "-"

    for name, row in rows.items():
        lines.append(
            f"| {name} | {f(row, 'precision')} | {f(row, 'recall')} | {f(row, 'mAP50')} | {row['params']:,} | "
            f"{row['weights_mib']:.2f} | {row['latency_ms']:.2f} | {row['bflops']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def _checkpoint(model: Darknet) -> dict[str, Any]:
    from yolo_slim.lit.module import CFG_KEY

    return {
        "state_dict": {f"model.{k}": v.detach().cpu() for k, v in model.state_dict().items()},
        CFG_KEY: write_cfg_text(model.cfg),
        "epoch": 0,
        "global_step": 0,
        "pytorch-lightning_version": pl.__version__,
    }


def prune(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Path]]:
    """Run the pruning task; returns stage-prefixed metrics and the written paths.

    Raises:
        PruneError, ConfigError, CfgError, WeightsError: bad requests, one message each.
    """
    out = _output_dir(cfg)
    inputs = [Path(str(x)).resolve() for x in (cfg.model.cfg, cfg.get("weights"), cfg.prune.get("plan")) if x and Path(str(x)).exists()]
    for name in OUTPUT_NAMES:
        if (out / name).resolve() in inputs:
            raise PruneError(f"output {out / name} is an input of this run; choose another output directory (hydra.run.dir=...)")
    pl.seed_everything(int(cfg.get("seed", 0)), verbose=False)
    data_cfg = cfg.get("data")
    if data_cfg is not None and str(data_cfg.get("data", "")).lower() in ("none", "null", ""):
        data_cfg = None  # data.data=none: cost-only report
    datamodule = None
    img_size = cfg.get("img_size")
    if data_cfg is not None:
        datamodule = hydra.utils.instantiate(data_cfg)
        datamodule.prepare_data()
        datamodule.setup("fit")
        img_size = img_size or int(data_cfg.img_size)
    classes = cfg.model.get("classes") or (datamodule.num_classes if datamodule is not None else None)
    model = load_model(str(cfg.model.cfg), cfg.get("weights"), classes, img_size)
    device = str(cfg.get("device", "cpu"))
    model.to(device)
    hw = model.cfg.input_hw
    runs = int(cfg.get("latency_runs", 20))

    plan = make_plan(model, cfg.prune)
    artifacts = {"plan": save_plan(plan, out / "plan.json")}
    e = cfg.get("eval", {})
    quality = {}
    if datamodule is not None:
        val = datamodule.val_dataloader()
        quality["original"] = evaluate(model, val, model.num_classes, e)
        quality["masked"] = evaluate(mask_model(model, plan), val, model.num_classes, e)
    compact = apply_plan(model.cpu(), plan).to(device)
    model.to(device)
    n_recal = int(cfg.prune.get("recalibrate_bn", 0) or 0)
    if n_recal and datamodule is not None:
        recalibrate_bn(compact, datamodule.train_dataloader(), n_recal)
    if datamodule is not None:
        quality["pruned"] = evaluate(compact, datamodule.val_dataloader(), compact.num_classes, e)

    rows = {"original": _row(model, hw, device, runs, quality.get("original")), "pruned": _row(compact, hw, device, runs, quality.get("pruned"))}
    if "masked" in quality:
        rows["masked (gamma=0, no surgery)"] = {**rows["original"], **quality["masked"]}

    compact.cpu()
    artifacts["cfg"] = compact.to_cfg(out / "pruned.cfg")
    artifacts["weights"] = compact.save_darknet_weights(out / "pruned.weights")
    ckpt = out / "pruned.ckpt"
    tmp = out / ".pruned.ckpt.tmp"
    torch.save(_checkpoint(compact), tmp)
    tmp.replace(ckpt)
    artifacts["ckpt"] = ckpt
    report = {"plan": plan.to_dict(), "rows": rows, "input_hw": list(hw), "device": device, "recalibrate_bn": n_recal}
    artifacts["report_json"] = write_atomic(out / "report.json", json.dumps(report, indent=1) + "\n")
    artifacts["report_md"] = write_atomic(out / "report.md", _markdown(rows, hw, device, plan))

    before, after = rows["original"], rows["pruned"]
    metrics = {
        "prune/params": float(after["params"]),
        "prune/params_ratio": after["params"] / before["params"],
        "prune/bflops": after["bflops"],
        "prune/bflops_ratio": after["bflops"] / before["bflops"],
        "prune/latency_ms": after["latency_ms"],
        "prune/removed_units": float(len(plan.removed_units)),
    }
    for key in ("precision", "recall", "mAP50"):
        if key in after:
            metrics[f"prune/{key}"] = after[key]
            metrics[f"prune/{key}_before"] = before[key]
            metrics[f"prune/masked_{key}"] = quality["masked"][key]
    return metrics, artifacts
