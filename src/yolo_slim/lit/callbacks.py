"""Training callbacks: the per-epoch summary line and the darknet files of a run.

`EpochSummary` logs one line per validated epoch (P, R, mAP@0.5, mAP@0.5:0.95 and
the losses), on rank 0 only. `DarknetExport` writes, at the end of fit, the EMA
weights of the last and of the best checkpoint as darknet ``last.weights`` /
``best.weights`` next to the model's ``.cfg``, so every stage's output loads
wherever darknet files load. `best_checkpoint` and `ema_model_from_checkpoint` find
and load that best model for every callback that needs it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_only

from yolo_slim.model import Darknet

log = logging.getLogger(__name__)


class EpochSummary(pl.Callback):
    """One line per epoch: ``epoch 3/10  train loss .. (box .. obj .. cls ..)  val loss ..  P .. R .. mAP@0.5 ..``.

    Train losses are this epoch's batch-weighted means of the logged step values
    (rank 0's batches); validation values are the synced epoch metrics.

    Args:
        printer: called with each line; default: logged (INFO) under this module's logger,
            so the run's log file and a pipeline stage's `stage.log` keep it too.
    """

    _PARTS = ("loss", "box", "obj", "cls")

    def __init__(self, printer: Any = None) -> None:
        self.printer = printer if printer is not None else log.info
        self._sums: dict[str, float] = {}
        self._count = 0
        self._printed_epoch = -1

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._sums = {k: 0.0 for k in self._PARTS}
        self._count = 0

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        m = trainer.callback_metrics
        n = len(batch["images"]) if isinstance(batch, dict) and "images" in batch else 1
        if all(f"train/{k}_step" in m for k in self._PARTS):
            for k in self._PARTS:
                self._sums[k] += float(m[f"train/{k}_step"]) * n
            self._count += n

    def _line(self, trainer: pl.Trainer) -> str:
        m = trainer.callback_metrics
        train = {k: (self._sums.get(k, 0.0) / self._count if self._count else None) for k in self._PARTS}

        def fmt(v: Any) -> str:
            return "-" if v is None else f"{float(v):.4f}"

        return (
            f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}  "
            f"train loss {fmt(train['loss'])} (box {fmt(train['box'])} obj {fmt(train['obj'])} cls {fmt(train['cls'])})  "
            f"val loss {fmt(m.get('val/loss'))}  P {fmt(m.get('val/precision'))}  R {fmt(m.get('val/recall'))}  "
            f"mAP@0.5 {fmt(m.get('val/mAP50'))}  mAP@0.5:0.95 {fmt(m.get('val/mAP50_95'))}"
        )

    @rank_zero_only
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        self.printer(self._line(trainer))
        self._printed_epoch = trainer.current_epoch

    @rank_zero_only
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._printed_epoch != trainer.current_epoch:  # an epoch without validation
            self.printer(self._line(trainer))
            self._printed_epoch = trainer.current_epoch


class DarknetExport(pl.Callback):
    """Write ``<name>.cfg``, ``last.weights`` and ``best.weights`` (EMA) into ``dirpath`` at fit end.

    Args:
        dirpath: output folder (the run dir).
        cfg_name: file name of the cfg written.
    """

    def __init__(self, dirpath: str | Path, cfg_name: str = "model.cfg") -> None:
        self.dirpath = Path(dirpath)
        self.cfg_name = cfg_name
        self.written: dict[str, Path] = {}

    @rank_zero_only
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        model: Darknet = pl_module.eval_model
        self.written["cfg"] = model.to_cfg(self.dirpath / self.cfg_name)
        self.written["last_weights"] = model.save_darknet_weights(self.dirpath / "last.weights")
        best = best_checkpoint(trainer)
        if best is not None:
            copy = ema_model_from_checkpoint(best, model)
            copy.header = model.header
            self.written["best_weights"] = copy.save_darknet_weights(self.dirpath / "best.weights")


def best_checkpoint(trainer: pl.Trainer) -> Path | None:
    """The best checkpoint the first monitored ``ModelCheckpoint`` wrote, if it exists."""
    monitored = [cb for cb in trainer.checkpoint_callbacks if getattr(cb, "monitor", None)]
    best = monitored[0].best_model_path if monitored else ""
    return Path(best) if best and Path(best).is_file() else None


def ema_model_from_checkpoint(path: str | Path, like: Darknet) -> Darknet:
    """A `Darknet` of ``like``'s cfg holding the EMA weights of the checkpoint at ``path`` (CPU)."""
    from yolo_slim.io.checkpoint import ema_state_dict, read_checkpoint

    model = Darknet(like.cfg)
    model.load_state_dict(ema_state_dict(read_checkpoint(path)["state_dict"]))
    return model
