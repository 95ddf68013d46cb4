"""`train(cfg)`: the training task behind `train.py` (lightning-hydra-template's pattern).

It instantiates the datamodule, the `YoloLitModule`, callbacks, loggers and the
Trainer from a composed Hydra config, fits, and returns the final metrics and the
paths of what it wrote, so tests and `pipeline.py` call it directly instead of
spawning processes.

The config is validated first (`yolo_slim.config.validate_config`: types, required
values, the device). The shared values are resolved here, once: the input size
(`img_size`, else the model's own, `yolo_slim.config.sizes`) for the loader and the
model, the dataset (`data` with the `loader` and `builtin` blocks), the evaluation
thresholds (`eval`) and the accelerator (`device`). Two trainer values are computed
from the rest: ``accumulate_grad_batches: null`` becomes ``max(round(nominal_batch /
(batch * world)), 1)`` (darknet's nominal batch of 64), and ``precision: auto`` becomes
AMP (``16-mixed``) on a GPU, ``bf16-mixed`` on a CPU that computes bf16 natively (AMX or
AVX-512 BF16, `yolo_slim.config.devices.cpu_has_native_bf16`; measured on AMX: the same
demo mAP@0.5 in 0.79x the time) and ``32-true`` on other CPUs. ``resume: auto`` finds the
newest ``last.ckpt`` of the same ``run_name`` under the outputs root.

Then what follows the data set: the budget (`yolo_slim.lit.budget`: ``budget.*`` in
optimizer steps, resolved for the training set's size, batch and accumulation into
the trainer's ``max_epochs`` (whole epochs), the warm-up and Lightning's `EarlyStopping`
on val mAP@0.5), and the anchors (`yolo_slim.lit.anchors`, ``model.fit_anchors``). At
the end the run's ``summary.json`` holds the budget, the anchors and the convergence
verdict (`yolo_slim.lit.convergence`), which the last lines printed also state.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import EarlyStopping, ProgressBar
from pytorch_lightning.utilities import rank_zero_only

from yolo_slim.config import devices, validate_config
from yolo_slim.config.datasets import build_datamodule
from yolo_slim.config.location import output_dir
from yolo_slim.config.sizes import resolve_img_size
from yolo_slim.data.synthetic import builtin_preset_of
from yolo_slim.errors import ConfigError
from yolo_slim.io.atomic import write_json_atomic
from yolo_slim.io.checkpoint import CFG_KEY, read_checkpoint
from yolo_slim.lit.anchors import AnchorChoice, choose_anchors, fit_mode
from yolo_slim.lit.budget import Budget, BudgetSpec, TrainingData
from yolo_slim.lit.callbacks import DarknetExport
from yolo_slim.lit.convergence import ConvergenceMonitor, EarlyStoppingFrom
from yolo_slim.lit.plots import RunPlots

log = logging.getLogger(__name__)

SUMMARY_NAME = "summary.json"
ANCHORS_NAME = "anchors.json"


def find_last_checkpoint(runs_root: Path, exclude: Path | None = None) -> Path | None:
    """The newest ``checkpoints/last.ckpt`` under ``runs_root/*/`` (not inside ``exclude``)."""
    found = [p for p in runs_root.glob("*/checkpoints/last.ckpt") if exclude is None or exclude.resolve() not in p.resolve().parents]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def resolve_ckpt_path(cfg: DictConfig, run_dir: Path) -> Path | None:
    """The checkpoint to resume from: ``ckpt_path``, or with ``resume=auto`` the newest ``last.ckpt``."""
    resume = cfg.get("resume")
    if cfg.get("ckpt_path"):
        path = Path(str(cfg.ckpt_path)).expanduser()
        read_checkpoint(path)  # clear WeightsError for a missing or unreadable file
        return path
    if resume is None:
        return None
    if resume != "auto":
        raise ConfigError(f"resume must be 'auto' or null, got {resume!r} (to resume from a file use ckpt_path=PATH)")
    runs_root = Path(str(cfg.paths.log_dir)) / str(cfg.task_name) / str(cfg.run_name) / "runs"
    found = find_last_checkpoint(runs_root, exclude=run_dir)
    if found is None:
        _info(f"resume=auto: no last.ckpt under {runs_root}; starting a new run")
    else:
        _info(f"resume=auto: resuming from {found}")
    return found


@rank_zero_only
def _info(message: str) -> None:
    log.info(message)


def _world_size(trainer_cfg: DictConfig) -> int:
    devices = trainer_cfg.get("devices", 1)
    per_node = devices if isinstance(devices, int) and devices > 0 else (len(devices) if isinstance(devices, (list, tuple)) else 1)
    return per_node * int(trainer_cfg.get("num_nodes", 1) or 1)


def auto_precision(device: str) -> str:
    """``precision: auto``: AMP (``16-mixed``) on a GPU, ``bf16-mixed`` on a CPU with native
    bf16 (AMX or AVX-512 BF16), ``32-true`` on any other CPU."""
    if devices.torch_device(device) == "cuda":
        return "16-mixed"
    return "bf16-mixed" if devices.cpu_has_native_bf16() else "32-true"


def trainer_overrides(cfg: DictConfig) -> dict[str, Any]:
    """The trainer values computed from the rest of the config (see the module docstring)."""
    out: dict[str, Any] = {"accelerator": str(cfg.device)}  # auto | cpu | gpu, Lightning's own words
    if cfg.trainer.get("accumulate_grad_batches") is None:
        nominal = int(cfg.model.get("nominal_batch_size", 64))
        per_update = int(cfg.loader.batch_size) * _world_size(cfg.trainer)
        out["accumulate_grad_batches"] = max(round(nominal / per_update), 1)
    if cfg.trainer.get("precision") == "auto":
        out["precision"] = auto_precision(str(cfg.device))
    return out


def plan_run_budget(cfg: DictConfig, datamodule: Any, accumulate: int) -> tuple[Budget, bool]:
    """The run's budget for its training set, and whether that set is the built-in demo data.

    Args:
        cfg: the validated train config.
        datamodule: the run's `YoloDataModule`, set up for fit (its training set counted).
        accumulate: the batches accumulated into one optimizer step.
    """
    train_set = datamodule.train_set
    data = TrainingData(images=len(train_set), boxes=int(train_set.report.boxes), classes=int(datamodule.num_classes),
                        batch_size=int(cfg.loader.batch_size), accumulate=int(accumulate), world_size=_world_size(cfg.trainer))
    demo = builtin_preset_of(datamodule.spec.source) == "demo"
    spec = BudgetSpec.from_config(OmegaConf.to_container(cfg.budget, resolve=True))
    budget = spec.resolve(data, demo_data=demo, max_epochs=cfg.trainer.get("max_epochs"),
                          val_every=cfg.trainer.get("check_val_every_n_epoch", 1))
    return budget, demo


def budget_callbacks(budget: Budget, run_dir: Path, configured: list[Any] = ()) -> list[pl.Callback]:
    """Lightning's `EarlyStopping` on val mAP@0.5 (when the budget has a patience) and the convergence record.

    An `EarlyStopping` on val/mAP50 among the `configured` callbacks (the user's own,
    ``+callbacks.x._target_=...EarlyStopping``) replaces the budget's: Lightning
    allows one per monitored key.
    """
    callbacks: list[pl.Callback] = []
    own = [cb for cb in configured if isinstance(cb, EarlyStopping) and cb.monitor == "val/mAP50"]
    if own and budget.patience_checks is not None:
        log.info("budget: the configured EarlyStopping on val/mAP50 replaces the budget's patience of %d steps",
                 budget.patience_steps)
    if budget.patience_checks is not None and not own:
        callbacks.append(EarlyStoppingFrom(monitor="val/mAP50", mode="max", patience=budget.patience_checks,
                                           min_delta=budget.min_delta, first_epoch=budget.watch_from_epoch))
    callbacks.append(ConvergenceMonitor(budget.verdict_window, budget.min_delta, run_dir / "convergence.json",
                                        watch_from_epoch=budget.watch_from_epoch if not own else 1))
    return callbacks


def run_anchors(cfg: DictConfig, run_dir: Path, ckpt_path: Path | None, datamodule: Any, img_size: int,
                demo: bool) -> tuple[AnchorChoice | None, dict[str, Any]]:
    """The run's anchors (`yolo_slim.lit.anchors`) and the model arguments that carry them.

    A new run decides (`AnchorRecord` writes the decision to ``anchors.json`` when fitting
    starts); a resumed run keeps the checkpoint's cfg, and its record when the checkpoint
    sits in a run dir that has one.
    """
    if ckpt_path is not None:
        # Resuming continues the checkpoint's architecture (e.g. a pruned model) and anchors.
        record = ckpt_path.parent.parent / ANCHORS_NAME
        choice = AnchorChoice.from_dict(json.loads(record.read_text(encoding="utf-8"))) if record.is_file() else None
        return choice, {"cfg_text": read_checkpoint(ckpt_path).get(CFG_KEY)}
    choice = choose_anchors(fit_mode(cfg.model.fit_anchors), model_cfg=str(cfg.model.cfg), weights=cfg.weights, demo_data=demo,
                            spec=datamodule.spec, img_size=img_size, out=run_dir / "model.cfg", seed=int(cfg.seed or 0))
    return choice, {"cfg": choice.cfg}


class AnchorRecord(pl.Callback):
    """Writes a new run's anchor decision to ``anchors.json`` (a resumed run reads it back).

    It writes when fitting starts, after the model's initial weights loaded (the module's
    ``setup``), so a run that stops on a bad weights file leaves no record behind.
    """

    def __init__(self, path: Path, choice: AnchorChoice) -> None:
        self.path = path
        self.choice = choice

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            write_json_atomic(self.path, self.choice.to_dict())


def _instantiate_all(group: DictConfig | None) -> list[Any]:
    if not group:
        return []
    return [hydra.utils.instantiate(c) for c in group.values() if isinstance(c, DictConfig) and "_target_" in c]


def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Path]]:
    """Train (or fine-tune, or resume) a model as ``cfg`` describes.

    Args:
        cfg: the composed `conf/train.yaml` (validated here first).

    Returns:
        ``(metrics, artifacts)``: the last logged metrics (``val/mAP50``, ...) as
        floats, and paths: ``run_dir``, ``last_ckpt``, ``best_ckpt``, ``cfg``,
        ``last_weights``, ``best_weights``, ``metrics_csv``, ``summary``
        (`read_summary` reads it) and the plots by file name (``results.png``,
        ``PR_curve.png``, ...); those that exist.

    Raises:
        YoloSlimError: bad config, data, cfg or weights.
    """
    cfg = validate_config(cfg, "train")
    run_dir = output_dir(cfg)
    # The EMA copy is meant to stay in eval mode; Lightning would warn about it.
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
    # Lightning's own internals, nothing a user can change: its pytree use of torch 2.13, and
    # the model summary's size estimate under bf16-mixed (the summary prints the parameters anyway)
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    warnings.filterwarnings("ignore", message=r"Precision bf16-mixed is not supported by the model summary")
    if cfg.get("seed") is not None:
        pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    ckpt_path = resolve_ckpt_path(cfg, run_dir)
    img_size = resolve_img_size(cfg.img_size, cfg.model.cfg, cfg.weights, resume=str(ckpt_path) if ckpt_path else None)

    datamodule: pl.LightningDataModule = build_datamodule(cfg, img_size)
    datamodule.setup("fit")  # the budget follows the training set's size
    computed = trainer_overrides(cfg)
    budget, demo = plan_run_budget(cfg, datamodule, computed.get("accumulate_grad_batches") or cfg.trainer.accumulate_grad_batches)
    scheduler = {**OmegaConf.to_container(cfg.optim.scheduler, resolve=True), "warmup_steps": budget.warmup_steps}
    model_kwargs: dict[str, Any] = {"img_size": img_size, "weights": cfg.weights, "val": OmegaConf.to_container(cfg.eval),
                                    "scheduler": scheduler}
    anchors, carried = run_anchors(cfg, run_dir, ckpt_path, datamodule, img_size, demo)
    model_kwargs.update(carried)
    module_args = {k: v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items() if k != "fit_anchors"}
    model: pl.LightningModule = hydra.utils.instantiate(module_args, **model_kwargs)
    configured = _instantiate_all(cfg.get("callbacks"))
    callbacks = configured + budget_callbacks(budget, run_dir, configured)
    if anchors is not None and ckpt_path is None:
        callbacks.append(AnchorRecord(run_dir / ANCHORS_NAME, anchors))
    if cfg.trainer.get("enable_progress_bar") is False:
        # trainer.enable_progress_bar=false also turns off the configured Rich bar
        callbacks = [cb for cb in callbacks if not isinstance(cb, ProgressBar)]
    loggers = _instantiate_all(cfg.get("logger"))
    # The budget is whole epochs: max_epochs alone ends the run at budget.steps (a max_steps would make
    # Lightning treat the run as iteration-based and replay a finished epoch, empty, on resume).
    trainer: pl.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False,
                                                  max_epochs=budget.epochs, **computed)

    _info(f"run dir: {run_dir}  (data={cfg.data}, img_size={img_size}, device={cfg.device})")
    _info(budget.describe(str(cfg.run_name)))
    if anchors is not None and ckpt_path is None:
        _info(anchors.describe())
    trainer.fit(model, datamodule=datamodule, ckpt_path=str(ckpt_path) if ckpt_path else None)

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}
    artifacts: dict[str, Path] = {"run_dir": run_dir}
    for cb in trainer.checkpoint_callbacks:
        if cb.monitor is None and cb.best_model_path:
            artifacts["last_ckpt"] = Path(cb.best_model_path)  # unmonitored: the newest save
        elif cb.monitor is not None and cb.best_model_path:
            artifacts["best_ckpt"] = Path(cb.best_model_path)
    for cb in callbacks:
        if isinstance(cb, (DarknetExport, RunPlots)):
            artifacts.update(cb.written)
    csv = run_dir / "csv" / "metrics.csv"
    if csv.is_file():
        artifacts["metrics_csv"] = csv
    monitor = next(cb for cb in callbacks if isinstance(cb, ConvergenceMonitor))
    summary = {
        "budget": {**budget.to_dict(), "line": budget.describe(str(cfg.run_name))},
        "steps_done": int(trainer.global_step),
        "epochs_done": int(trainer.current_epoch),
        "convergence": monitor.result.to_dict() if monitor.result is not None else None,
        "anchors": anchors.to_dict() if anchors is not None else None,
        "metrics": metrics,
    }
    if trainer.is_global_zero:
        artifacts["summary"] = write_json_atomic(run_dir / SUMMARY_NAME, summary, default=str)
    _report(metrics, artifacts, summary)
    return metrics, artifacts


def read_summary(run_dir: str | Path) -> dict[str, Any] | None:
    """A run's ``summary.json`` (budget, anchors, convergence verdict, metrics), or None when it has none."""
    path = Path(run_dir) / SUMMARY_NAME
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


@rank_zero_only
def _report(metrics: dict[str, float], artifacts: dict[str, Path], summary: dict[str, Any]) -> None:
    keys = ("val/precision", "val/recall", "val/mAP50", "val/mAP50_95")
    final = "  ".join(f"{k.split('/')[1]} {metrics[k]:.4f}" for k in keys if k in metrics)
    lines = [f"results: {artifacts['run_dir']}", f"  final: {final}" if final else "  final: no validation metrics"]
    if summary.get("convergence"):
        lines.append(f"  {summary['convergence']['verdict']}")
    lines.append(f"  {summary['steps_done']} optimizer steps in {summary['epochs_done']} epochs (budget {summary['budget']['steps']})")
    lines += [f"  {name:13s} {path}" for name, path in artifacts.items() if name != "run_dir"]
    log.info("\n".join(lines))
