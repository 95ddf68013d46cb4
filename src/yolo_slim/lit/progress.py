"""`ProgressLog`: training progress as plain-text log records, beside Lightning's Rich bar.

Lightning's `RichProgressBar` draws on the terminal only; this callback logs where a fit
is (`yolo_slim.progress.log_progress`) so the run's log file and a pipeline stage's
`stage.log` say it too: a record when each epoch starts, at most every `interval`
seconds during training and validation batches, with the running train loss. On a
terminal the console handler leaves these records out (the bar shows them).
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_only

from yolo_slim.progress import Throttle, log_progress


def _count(value: Any) -> str:
    return "?" if value in (None, float("inf")) else str(int(value))


class ProgressLog(pl.Callback):
    """Plain-text records of a fit's progress (rank 0 only).

    Args:
        interval: seconds between two batch records; None: `yolo_slim.progress.LOG_INTERVAL_S`.
    """

    def __init__(self, interval: float | None = None) -> None:
        self.interval = interval
        self._throttle = Throttle(interval)

    def _epoch(self, trainer: pl.Trainer) -> str:
        return f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"

    @rank_zero_only
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        log_progress("train: %s started (%s batches)", self._epoch(trainer), _count(trainer.num_training_batches))
        self._throttle = Throttle(self.interval)
        self._throttle.due()

    @rank_zero_only
    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if not self._throttle.due():
            return
        loss = trainer.callback_metrics.get("train/loss_step")
        note = f", train loss {float(loss):.4f}" if loss is not None else ""
        log_progress("train: %s batch %d/%s%s", self._epoch(trainer), batch_idx + 1, _count(trainer.num_training_batches), note)

    @rank_zero_only
    def on_validation_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        if trainer.sanity_checking or not self._throttle.due():
            return
        total = trainer.num_val_batches[dataloader_idx] if trainer.num_val_batches else None
        log_progress("val: %s batch %d/%s", self._epoch(trainer), batch_idx + 1, _count(total))
