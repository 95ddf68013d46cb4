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
AMP (``16-mixed``) on a GPU and ``32-true`` elsewhere. ``resume: auto`` finds the
newest ``last.ckpt`` of the same ``run_name`` under the outputs root.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pytorch_lightning.callbacks import ProgressBar
from pytorch_lightning.utilities import rank_zero_only

from yolo_slim.config import validate_config
from yolo_slim.config.datasets import build_datamodule
from yolo_slim.config.sizes import resolve_img_size
from yolo_slim.errors import ConfigError
from yolo_slim.io.checkpoint import CFG_KEY, read_checkpoint
from yolo_slim.lit.callbacks import DarknetExport
from yolo_slim.lit.plots import RunPlots

log = logging.getLogger(__name__)


def output_dir(cfg: DictConfig) -> Path:
    """The run dir, ``cfg.paths.output_dir`` (by default Hydra's runtime output dir).

    Callbacks and loggers interpolate the same key, so every output lands in one
    folder, also when another Hydra app (``pipeline.py``) composes this config.
    """
    try:
        return Path(str(cfg.paths.output_dir))
    except (OmegaConfBaseException, ValueError) as exc:
        raise ConfigError(f"paths.output_dir cannot be resolved outside a Hydra run; set it ({exc})") from None


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


def trainer_overrides(cfg: DictConfig) -> dict[str, Any]:
    """The trainer values computed from the rest of the config (see the module docstring)."""
    out: dict[str, Any] = {"accelerator": str(cfg.device)}  # auto | cpu | gpu, Lightning's own words
    if cfg.trainer.get("accumulate_grad_batches") is None:
        nominal = int(cfg.model.get("nominal_batch_size", 64))
        per_update = int(cfg.loader.batch_size) * _world_size(cfg.trainer)
        out["accumulate_grad_batches"] = max(round(nominal / per_update), 1)
    if cfg.trainer.get("precision") == "auto":
        gpu = cfg.device == "gpu" or (cfg.device == "auto" and torch.cuda.is_available())
        out["precision"] = "16-mixed" if gpu else "32-true"
    return out


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
        ``last_weights``, ``best_weights``, ``metrics_csv`` and the plots by file
        name (``results.png``, ``PR_curve.png``, ...; those that exist).

    Raises:
        YoloSlimError: bad config, data, cfg or weights.
    """
    cfg = validate_config(cfg, "train")
    run_dir = output_dir(cfg)
    # The EMA copy is meant to stay in eval mode; Lightning would warn about it.
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
    if cfg.get("seed") is not None:
        pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    ckpt_path = resolve_ckpt_path(cfg, run_dir)
    img_size = resolve_img_size(cfg.img_size, cfg.model.cfg, cfg.weights, resume=str(ckpt_path) if ckpt_path else None)

    datamodule: pl.LightningDataModule = build_datamodule(cfg, img_size)
    model_kwargs: dict[str, Any] = {"img_size": img_size, "weights": cfg.weights, "val": OmegaConf.to_container(cfg.eval)}
    if ckpt_path is not None:
        # Resuming continues the checkpoint's architecture (e.g. a pruned model).
        model_kwargs["cfg_text"] = read_checkpoint(ckpt_path).get(CFG_KEY)
    model: pl.LightningModule = hydra.utils.instantiate(cfg.model, **model_kwargs)
    callbacks = _instantiate_all(cfg.get("callbacks"))
    if cfg.trainer.get("enable_progress_bar") is False:
        # trainer.enable_progress_bar=false also turns off the configured Rich bar
        callbacks = [cb for cb in callbacks if not isinstance(cb, ProgressBar)]
    loggers = _instantiate_all(cfg.get("logger"))
    trainer: pl.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, **trainer_overrides(cfg))

    _info(f"run dir: {run_dir}  (data={cfg.data}, img_size={img_size}, device={cfg.device})")
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
    _report(metrics, artifacts)
    return metrics, artifacts


@rank_zero_only
def _report(metrics: dict[str, float], artifacts: dict[str, Path]) -> None:
    keys = ("val/precision", "val/recall", "val/mAP50", "val/mAP50_95")
    summary = "  ".join(f"{k.split('/')[1]} {metrics[k]:.4f}" for k in keys if k in metrics)
    lines = [f"results: {artifacts['run_dir']}", f"  final: {summary}" if summary else "  final: no validation metrics"]
    lines += [f"  {name:13s} {path}" for name, path in artifacts.items() if name != "run_dir"]
    log.info("\n".join(lines))
