"""`prune(cfg)`: the pruning task behind `prune.py`.

Loads the model (zoo name or `.cfg`, weights `.weights` or `.ckpt`), plans
(`prune.mode`: channel | layer | layer_channel | latency, or re-applies `prune.plan`), evaluates
the masked network (fast, no surgery) and then the compact one when a dataset is
configured, optionally re-calibrates BatchNorm, and writes into the run dir:
`pruned.cfg`, `pruned.weights`, `pruned.ckpt` (a Lightning checkpoint that
`train.py experiment=*_finetune weights=...` loads), `plan.json`, `report.json` and
`report.md` (one row before, one after: P, R, mAP@0.5, params, .weights size,
latency, BFLOPs; with `prune.latency.report` also the OpenVINO FP32 batch-1 latency on
`prune.latency.device`, measured and predicted by the latency table). `data=none` gives
a cost-only report.

The config is validated first (`yolo_slim.config.validate_config`). The model is
evaluated at one size: `img_size` when given, else the model's own (the cfg's `[net]`
size, or the size a `.ckpt` was trained at; `yolo_slim.config.sizes`), and the
evaluation images are loaded at that size; `pruned.cfg` keeps it.

`prune.search=true` first finds the optimal pruning point itself (the strongest
`global_percent`, or `shortcuts` for `prune=layer`, whose masked model the sweep's
acceptance rule accepts: `prune.tolerance`, `keep_map`, `keep_recall`, `min_map`; see
`yolo_slim.prune.search` and `yolo_slim.prune.accept`), then prunes at that setting as
usual; the report lists every evaluated point and why it was accepted or rejected.

Evaluation data is built once per run: the validation batches are decoded,
letterboxed and kept in RAM as a list (reused by the original, masked, every search
point and the compact model), and the training set is only loaded when
`recalibrate_bn` needs it. Across the processes of a multirun the on-disk dataset is
reused (the built-in one is generated once, keyed by its parameters).

`prune()` is the composition of named steps: `check_run` (validation, a `PruneRun`),
`load_data`, `load_original`, `evaluation_data`, `plan_and_cut` (evaluations, search,
plan, surgery, re-calibration: a `Pruned`), `measure_rows`, `report_json`,
`report_markdown`, `write_outputs` and `prune_metrics` (`report_markdown`, `prune_metrics`
and `result_row` live in `yolo_slim.prune.report`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from yolo_slim.config import validate_config
from yolo_slim.config.datasets import build_datamodule, has_data
from yolo_slim.config.devices import torch_device
from yolo_slim.config.location import output_dir
from yolo_slim.config.sizes import resolve_img_size
from yolo_slim.darknet.cfg import write_cfg_text
from yolo_slim.io.atomic import write_atomic
from yolo_slim.io.checkpoint import write_model_checkpoint
from yolo_slim.io.staging import staged_outputs
from yolo_slim.errors import ConfigError, PruneError
from yolo_slim.graph import ChannelGraph, build_graph
from yolo_slim.metrics.cost import count_cost
from yolo_slim.metrics.evaluate import evaluate_model
from yolo_slim.model import Darknet, load_model
from yolo_slim.progress import progress_task, track
from yolo_slim.prune.accept import Acceptance
from yolo_slim.prune.mask import mask_model
from yolo_slim.latency import network_latency, table_from_config
from yolo_slim.prune.latency_plan import plan_latency_pruning
from yolo_slim.prune.plan import PrunePlan, load_plan, plan_channel_pruning, plan_layer_channel_pruning, plan_layer_pruning, save_plan
from yolo_slim.prune.latency_measured import plan_to_measured_budget
from yolo_slim.prune.recalibrate import recalibrate_bn
from yolo_slim.prune.report import Rows, prune_metrics, report_markdown, result_row
from yolo_slim.prune.search import SearchResult, search_strongest
from yolo_slim.prune.surgery import apply_plan, compact_cfg
from yolo_slim.prune.sweep import setting_label

_log = logging.getLogger(__name__)

MODES = ("channel", "layer", "layer_channel", "latency")
OUTPUT_NAMES = ("pruned.cfg", "pruned.weights", "pruned.ckpt", "plan.json", "report.json", "report.md")


def channel_multiple(p: DictConfig) -> int:
    """`prune.channel_multiple`: the integer given, or for `auto` the channel quantum that the
    latency table measures on `prune.latency.device` in `prune.latency.precision` (a
    conv's time steps up after multiples of it; on the AMX Xeon 16 or 32 in bf16, 16 in
    f32; probed once and cached with the table)."""
    value = p.channel_multiple
    if str(value) == "auto":
        quantum = int(table_from_config(p.latency).quantum())
        _log.info("prune: channel_multiple=auto: kept counts rounded up to %d, the channel quantum measured on %s", quantum, p.latency.device)
        return quantum
    return int(value)


def make_plan(model: Darknet, p: DictConfig, graph: ChannelGraph | None = None) -> PrunePlan:
    """The plan `prune.*` asks for (or the plan file `prune.plan`)."""
    if p.get("plan"):
        return load_plan(p.plan)
    mode = p.get("mode")
    if mode not in MODES:
        raise ConfigError(f"prune.mode={mode!r}; expected one of {', '.join(MODES)}")
    graph = graph if graph is not None else build_graph(model.cfg)
    if mode == "layer":
        return plan_layer_pruning(model, int(p.shortcuts), graph)
    if mode == "latency":
        return latency_plan(model, p, graph)
    kw = dict(
        global_percent=float(p.global_percent),
        layer_keep=float(p.layer_keep),
        channel_multiple=channel_multiple(p),
        importance=str(p.importance),
        aggregate=str(p.aggregate),
        cut_by=str(p.cut_by),
    )
    if mode == "channel":
        return plan_channel_pruning(model, graph, **kw)
    return plan_layer_channel_pruning(model, int(p.shortcuts), graph, **kw)


def latency_plan(model: Darknet, p: DictConfig, graph: ChannelGraph) -> PrunePlan:
    """`prune.mode=latency`: the table's plan, held to measured latency by `prune.latency_measured_rounds`
    plan-and-measure rounds (`yolo_slim.prune.latency_measured`; 0: the table's prediction alone)."""
    ms = p.latency_budget_ms
    budget = dict(budget=None if ms is not None else float(p.latency_budget), budget_ms=None if ms is None else float(ms))
    planner = dict(layer_keep=float(p.layer_keep), importance=str(p.importance), aggregate=str(p.aggregate),
                   units=bool(p.latency_units))
    table = table_from_config(p.latency)
    measured = int(p.latency_measured_rounds)
    if measured == 0:
        return plan_latency_pruning(model, graph, table=table, rounds=int(p.latency_rounds), **budget, **planner)
    plan, _ = plan_to_measured_budget(
        model, graph, table=table, rounds=measured, tolerance=float(p.latency_tolerance), runs=int(p.latency.report_runs),
        table_rounds=int(p.latency_rounds), **budget, **planner,
    )
    return plan


def add_openvino_latency(rows: dict[str, dict[str, Any]], models: dict[str, Darknet], p: DictConfig) -> dict[str, Any]:
    """Measure the OpenVINO batch-1 latency of `models` (name -> model, keys of `rows`)
    on `prune.latency.device` and add `ov_latency_ms` (measured: the lower quartile of
    `prune.latency.report_runs` round-robin inferences) and
    `ov_latency_pred_ms` (the latency table's prediction) to their rows.

    Returns:
        What was measured on (the table's device identity and file).
    """
    table = table_from_config(p.latency)
    results = network_latency({k: m.cpu() for k, m in models.items()}, table, runs=int(p.latency.report_runs))
    for name, result in results.items():
        rows[name]["ov_latency_ms"] = result.measured_ms
        rows[name]["ov_latency_pred_ms"] = result.predicted_ms
    return {**table.identity, "table": str(table.path)}


def evaluate(model: Darknet, loader: Any, num_classes: int, e: DictConfig, progress: str | None = None) -> dict[str, float]:
    """P, R (at `e.score_threshold`), mAP@0.5 and mAP@0.5:0.95 of `model` on `loader`
    (a DataLoader or any iterable of its batches, e.g. a cached list); `progress` names
    the evaluation in a progress bar and the log (`yolo_slim.progress`)."""
    batches = track(loader, progress) if progress else loader
    result = evaluate_model(model, batches, num_classes, float(e.score_threshold), float(e.conf_thres), float(e.iou_thres), int(e.max_det))
    return {k: result[k] for k in ("precision", "recall", "mAP50", "mAP50_95")}


def search_axis(p: DictConfig) -> str:
    """The parameter `prune.search` varies: `shortcuts` for layer pruning, else `global_percent`."""
    return "shortcuts" if p.get("mode") == "layer" else "global_percent"


def run_search(
    model: Darknet, graph: ChannelGraph, p: DictConfig, batches: list[Any], reference: dict[str, float], e: DictConfig
) -> SearchResult:
    """Coarse-then-fine search of the optimal pruning point on the masked model.

    Every point plans with `prune.*` (the searched axis replaced), masks the model's
    gammas (no surgery) and evaluates it on `batches`; its BFLOPs and params come
    from the compact cfg the plan leads to.

    Raises:
        ConfigError: `prune.plan` is set, or bad search options.
    """
    if p.get("plan"):
        raise ConfigError("prune.search=true plans by itself; drop prune.plan=...")
    axis = search_axis(p)
    o = p.get("search_options") or {}
    integer = axis == "shortcuts"
    cast = int if integer else float
    low = o.get("low")
    high = o.get("high")
    resolution = o.get("resolution")
    low = 0 if low is None else cast(low)
    high = (len(graph.units) if integer else 0.95) if high is None else cast(high)
    resolution = (1 if integer else 0.01) if resolution is None else cast(resolution)
    hw = model.cfg.input_hw

    def point(value: float) -> dict[str, float]:
        plan = make_plan(model, OmegaConf.merge(p, {axis: value}), graph)
        quality = evaluate(mask_model(model, plan, graph=graph), batches, model.num_classes, e, f"prune: evaluate {axis}={value:g}")
        cost = count_cost(compact_cfg(graph, plan), hw)
        points.advance(detail=f"{axis}={value:g}: mAP@0.5 {quality['mAP50']:.4f}")
        return {**quality, "bflops": cost.bflops, "params": float(cost.params)}

    with progress_task(f"prune: search {axis}") as points:
        result = search_strongest(
            point, reference, acceptance=Acceptance.from_config(p, "prune"), low=low, high=high,
            coarse=int(o.get("coarse", 5)), resolution=resolution, integer=integer, axis=axis,
        )
    for pt in result.points:
        _log.info("search %s=%s: mAP@0.5 %s %s", axis, pt.value, "-" if pt.mAP50 is None else f"{pt.mAP50:.4f}", "ok" if pt.ok else pt.note)
    return result


def _overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


@dataclass(frozen=True)
class PruneRun:
    """The validated settings of one prune run.

    Attributes:
        cfg: the validated task config.
        out: the run dir the outputs go to.
        acceptance: the sweep's acceptance rule (`prune.tolerance`, `keep_map`, ...).
        img_size: the one input size of the model and its evaluation images.
        device: the torch device the model runs on.
        recalibrate: BatchNorm re-calibration batches (`prune.recalibrate_bn`, 0 = none).
        latency_runs: timed runs of the PyTorch latency (`latency_runs`).
    """

    cfg: DictConfig
    out: Path
    acceptance: Acceptance
    img_size: int
    device: str
    recalibrate: int
    latency_runs: int

    @property
    def p(self) -> DictConfig:
        return self.cfg.prune


@dataclass(frozen=True)
class EvalData:
    """What the run evaluates on: the datamodule (None for a cost-only run, `data=none`)
    and its validation batches, decoded and letterboxed once and kept in RAM."""

    datamodule: Any = None
    val: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class Pruned:
    """A plan and what it made: the compact model and the quality of each model by name
    (``original``, ``masked``, ``pruned``; empty in cost-only runs)."""

    plan: PrunePlan
    compact: Darknet
    quality: dict[str, dict[str, float]]
    search: SearchResult | None


def check_run(cfg: DictConfig) -> PruneRun:
    """Validate `cfg` (one line per mistake, before any work) and seed the run.

    Raises:
        PruneError: an output would overwrite an input.
        ConfigError: a bad config, or `prune.search` with `prune=latency` or without data.
    """
    cfg = validate_config(cfg, "prune")
    out = output_dir(cfg)
    inputs = [Path(str(x)).resolve() for x in (cfg.model.cfg, cfg.get("weights"), cfg.prune.get("plan")) if x and Path(str(x)).exists()]
    for name in OUTPUT_NAMES:
        if (out / name).resolve() in inputs:
            raise PruneError(f"output {out / name} is an input of this run; choose another output directory (hydra.run.dir=...)")
    pl.seed_everything(int(cfg.seed), verbose=False)
    p = cfg.prune
    acceptance = Acceptance.from_config(p, "prune")  # checked before any work
    if p.search and p.mode == "latency":
        raise ConfigError("prune.search=true searches global_percent or shortcuts; prune=latency plans to prune.latency_budget "
                          "(sweep budgets with -m prune.latency_budget=0.4,0.5,...)")
    if p.search and not has_data(cfg.data):
        raise ConfigError("prune.search=true needs a dataset to score settings on (data is none)")
    img_size = resolve_img_size(cfg.img_size, cfg.model.cfg, cfg.weights)  # one size for the model and its images
    return PruneRun(cfg, out, acceptance, img_size, torch_device(cfg.device), int(p.recalibrate_bn), int(cfg.latency_runs))


def load_data(run: PruneRun) -> Any:
    """The datamodule, set up for validation (and for training when BatchNorm is
    re-calibrated), or None for `data=none`."""
    if not has_data(run.cfg.data):
        return None
    datamodule = build_datamodule(run.cfg, run.img_size)
    datamodule.prepare_data()
    datamodule.setup("fit" if run.recalibrate else "validate")  # the training set only for BN re-calibration
    return datamodule


def load_original(run: PruneRun, datamodule: Any) -> Darknet:
    """The model to prune, on the run's device, with the data's classes unless the model names them."""
    classes = run.cfg.model.classes or (datamodule.num_classes if datamodule is not None else None)
    model = load_model(run.cfg.model.cfg, run.cfg.weights, classes, run.img_size)
    model.to(run.device)
    return model


def evaluation_data(datamodule: Any) -> EvalData:
    """The validation batches, decoded and letterboxed once and reused by every evaluation."""
    if datamodule is None:
        return EvalData()
    return EvalData(datamodule, list(track(datamodule.val_dataloader(), "prune: load validation images")))


def searched_settings(run: PruneRun, model: Darknet, graph: ChannelGraph, data: EvalData,
                      reference: dict[str, float]) -> tuple[DictConfig, SearchResult | None]:
    """`prune.*` with the searched axis set to the optimal point (`prune.search=true`),
    and the search; else `prune.*` unchanged and None.

    Raises:
        PruneError: no optimal point (an unpruned model below `min_map`, or no setting accepted).
    """
    if not run.p.get("search"):
        return run.p, None
    search = run_search(model, graph, run.p, data.val, reference, run.cfg.eval)
    if search.reason:
        raise PruneError(
            f"prune.search: no optimal point: {search.reason}, so the unpruned model learned (almost) nothing; "
            "train longer or check the labels, or set prune.min_map lower to prune it anyway"
        )
    if search.best is None:
        raise PruneError(
            f"prune.search: no {search.axis} in the searched range is accepted ({search.acceptance.describe()}; tried "
            f"{', '.join(f'{pt.value:g}: {pt.note}' for pt in search.points)}); "
            "relax prune.tolerance / keep_map / keep_recall or lower prune.search_options.low"
        )
    return OmegaConf.merge(run.p, {search.axis: search.best}), search


def plan_and_cut(run: PruneRun, model: Darknet, data: EvalData) -> Pruned:
    """Evaluate the original, search (when asked), plan, evaluate the masked model, cut
    (surgery), re-calibrate BatchNorm (when asked) and evaluate the compact model."""
    e = run.cfg.eval
    graph = build_graph(model.cfg)
    quality: dict[str, dict[str, float]] = {}
    if data.datamodule is not None:
        quality["original"] = evaluate(model, data.val, model.num_classes, e, "prune: evaluate original")
    p, search = searched_settings(run, model, graph, data, quality.get("original", {}))
    plan = make_plan(model, p, graph)
    if data.datamodule is not None:
        quality["masked"] = evaluate(mask_model(model, plan, graph=graph), data.val, model.num_classes, e, "prune: evaluate masked")
    compact = apply_plan(model.cpu(), plan, graph=graph).to(run.device)
    model.to(run.device)
    if run.recalibrate and data.datamodule is not None:
        recalibrate_bn(compact, data.datamodule.train_dataloader(), run.recalibrate)
    if data.datamodule is not None:
        quality["pruned"] = evaluate(compact, data.val, compact.num_classes, e, "prune: evaluate pruned")
    return Pruned(plan, compact, quality, search)


def measure_rows(run: PruneRun, model: Darknet, pruned: Pruned) -> tuple[Rows, dict[str, Any] | None]:
    """The report's rows (cost, PyTorch latency, quality; with `prune.latency.report` the
    OpenVINO latencies) and what OpenVINO measured on (None without it)."""
    hw, compact, quality = model.cfg.input_hw, pruned.compact, pruned.quality
    rows = {"original": result_row(model, hw, run.device, run.latency_runs, quality.get("original")),
            "pruned": result_row(compact, hw, run.device, run.latency_runs, quality.get("pruned"))}
    ov_device = add_openvino_latency(rows, {"original": model, "pruned": compact}, run.p) if run.p.latency.report else None
    model.to(run.device)
    compact.to(run.device)
    if "masked" in quality:
        rows["masked (gamma=0, no surgery)"] = {**rows["original"], **quality["masked"]}
    compact.cpu()
    return rows, ov_device


def report_json(run: PruneRun, pruned: Pruned, rows: Rows, hw: tuple[int, int], ov_device: dict[str, Any] | None) -> dict[str, Any]:
    """The content of `report.json` (what `yolo_slim.prune.sweep` reads back)."""
    plan, search = pruned.plan, pruned.search
    mode = "plan" if run.p.get("plan") else str(run.p.get("mode"))
    return {
        "setting": setting_label(plan.to_dict(), mode), "mode": mode, "overrides": _overrides(), "acceptance": run.acceptance.to_dict(),
        "plan": plan.to_dict(), "rows": rows, "input_hw": list(hw), "device": run.device, "recalibrate_bn": run.recalibrate,
        "search": search.to_dict() if search is not None else None, "openvino": ov_device,
    }


def write_outputs(out: Path, pruned: Pruned, report: dict[str, Any], md: str) -> dict[str, Path]:
    """Write every output through a staging folder that moves into `out` at once, so an
    error or an interrupt (Ctrl-C, SIGTERM) leaves no partial set (`yolo_slim.io.staging`).

    Returns:
        The final paths by name (`plan`, `cfg`, `weights`, `ckpt`, `report_json`, `report_md`).
    """
    compact = pruned.compact
    with staged_outputs(out) as stage:
        staged = {
            "plan": save_plan(pruned.plan, stage.path / "plan.json"),
            "cfg": compact.to_cfg(stage.path / "pruned.cfg"),
            "weights": compact.save_darknet_weights(stage.path / "pruned.weights"),
            "ckpt": write_model_checkpoint(stage.path / "pruned.ckpt", compact.state_dict(), write_cfg_text(compact.cfg)),
            "report_json": write_atomic(stage.path / "report.json", json.dumps(report, indent=1) + "\n"),
            "report_md": write_atomic(stage.path / "report.md", md),
        }
        stage.commit()
    return {name: stage.final(path) for name, path in staged.items()}


def prune(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Path]]:
    """Run the pruning task; returns stage-prefixed metrics and the written paths.

    Raises:
        PruneError, ConfigError, CfgError, WeightsError: bad requests, one message each.
    """
    run = check_run(cfg)
    datamodule = load_data(run)
    model = load_original(run, datamodule)
    data = evaluation_data(datamodule)
    pruned = plan_and_cut(run, model, data)
    rows, ov_device = measure_rows(run, model, pruned)
    hw = model.cfg.input_hw
    report = report_json(run, pruned, rows, hw, ov_device)
    md = report_markdown(rows, hw, run.device, pruned.plan, ov_device, pruned.search)
    artifacts = write_outputs(run.out, pruned, report, md)
    return prune_metrics(rows, pruned.plan, pruned.search, pruned.quality.get("masked")), artifacts
