"""`RunPlots`: the plots of a training run, in its run dir.

Every epoch it records the run's logged losses, P, R and mAP (from the trainer's
metrics, so no logger needs to be configured) and redraws ``results.png``. At the
end of fit it evaluates the best checkpoint's EMA weights once more on the
validation set with the validation settings of the module (NMS, the score at which
P and R are read) and draws, from those predictions:

* ``PR_curve.png`` and ``F1_curve.png``: per class and all classes at IoU 0.5, from
  `DetectionMetrics` (so mAP@0.5, P and R match what validation logs);
* ``confusion_matrix.png`` (rows normalised per true class) and
  ``confusion_matrix.json`` (the counts), at the validation score and IoU 0.5;
* ``val_batch0_pred.jpg`` and ``val_batch0_labels.jpg``: the first validation batch
  with predicted boxes (class, score) and with ground truth, in the original
  image pixels.

Drawing never stops training: a file that cannot be drawn logs one warning and the
run goes on. The per-epoch record is callback state, so a resumed run's
``results.png`` continues the earlier epochs.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytorch_lightning as pl
from torch import Tensor

from yolo_slim.errors import ConfigError, DataError
from yolo_slim.io.atomic import write_json_atomic
from yolo_slim.lit.callbacks import best_checkpoint, ema_model_from_checkpoint
from yolo_slim.metrics.confusion import ConfusionMatrix
from yolo_slim.metrics.detection import DetectionCurves, DetectionMetrics
from yolo_slim.metrics.evaluate import predict_batches
from yolo_slim.metrics.plots import RESULT_PANELS, image_grid, plot_confusion_matrix, plot_f1_curves, plot_pr_curves, plot_results, write_image
from yolo_slim.ops.letterbox import LetterboxInfo, boxes_to_original

__all__ = ["RunPlots", "boxes_in_original"]

log = logging.getLogger(__name__)

_TRAIN_KEYS = tuple(k for k, _, _ in RESULT_PANELS if k.startswith("train/"))
_VAL_KEYS = tuple(k for k, _, _ in RESULT_PANELS if not k.startswith("train/"))


def boxes_in_original(batch: Mapping[str, Any], boxes: Sequence[Tensor], index: int) -> np.ndarray:
    """Map one image's boxes from network-input pixels to its original pixels.

    Args:
        batch: A batch of `collate_detection` (``images``, ``shapes``, ``letterbox``).
        boxes: Per image Tensor[K, 6] of (x1, y1, x2, y2, score, class) or
            Tensor[M, 5] of (class, x1, y1, x2, y2), network-input pixels.
        index: The image in the batch.

    Returns:
        np.ndarray[K, 6] of (x1, y1, x2, y2, score, class) in original pixels,
        clipped to the image; score nan for ground truth (Tensor[M, 5] input).
    """
    b = boxes[index].detach().cpu().double().numpy()
    if b.ndim != 2 or b.shape[1] not in (5, 6):
        raise DataError(f"boxes_in_original: expected [K, 6] predictions or [M, 5] targets, got {b.shape}")
    if b.shape[1] == 5:
        b = np.column_stack((b[:, 1:5], np.full(len(b), np.nan), b[:, 0]))
    scale, pad_x, pad_y = (float(v) for v in batch["letterbox"][index])
    h0, w0 = (int(v) for v in batch["shapes"][index])
    side = tuple(batch["images"].shape[2:4])
    info = LetterboxInfo(scale=scale, pad_x=pad_x, pad_y=pad_y, new_shape=side)
    return np.column_stack((boxes_to_original(np.ascontiguousarray(b[:, :4]), info, (h0, w0)), b[:, 4:6]))


class RunPlots(pl.Callback):
    """Writes ``results.png`` as epochs end and the curves, confusion matrix and image grids at fit end.

    Args:
        dirpath: Folder of the plots (the run dir); default the trainer's
            ``log_dir`` (or ``default_root_dir``).
        max_images: Images of the first validation batch drawn in each grid.
        cell: Side in pixels of one image in the grids.
        iou_threshold: IoU at which the confusion matrix matches boxes.
        results_every_s: ``results.png`` is redrawn after an epoch when this many seconds
            passed since it was last drawn (always after the first epoch and at fit end; 0:
            every epoch). Drawing it took 8% of a run on a hundred images, whose epochs are
            7 steps long.

    Attributes:
        history: One dict per finished training epoch: ``epoch`` (1-based) and
            each metric of ``RESULT_PANELS`` that was logged in it.
        written: File name -> path of every plot written so far.
        curves: The end-of-run `DetectionCurves` (None before the end of fit).
        confusion: The end-of-run `ConfusionMatrix` (None before the end of fit).
    """

    def __init__(self, dirpath: str | Path | None = None, max_images: int = 16, cell: int = 320, iou_threshold: float = 0.5,
                 results_every_s: float = 30.0) -> None:
        if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1:
            raise ConfigError(f"callbacks.run_plots.max_images must be a positive integer, got {max_images!r}")
        if isinstance(cell, bool) or not isinstance(cell, int) or cell < 32:
            raise ConfigError(f"callbacks.run_plots.cell must be an integer >= 32 (pixels), got {cell!r}")
        if not 0.0 < iou_threshold <= 1.0:
            raise ConfigError(f"callbacks.run_plots.iou_threshold must be in (0, 1], got {iou_threshold!r}")
        if isinstance(results_every_s, bool) or not isinstance(results_every_s, (int, float)) or not results_every_s >= 0:
            raise ConfigError(f"callbacks.run_plots.results_every_s must be a number of seconds >= 0, got {results_every_s!r}")
        self.dirpath = Path(dirpath) if dirpath else None
        self.max_images = max_images
        self.cell = cell
        self.iou_threshold = float(iou_threshold)
        self.results_every_s = float(results_every_s)
        self._results_drawn_at: float | None = None
        self.history: list[dict[str, float]] = []
        self.written: dict[str, Path] = {}
        self.curves: DetectionCurves | None = None
        self.confusion: ConfusionMatrix | None = None
        self._val: dict[str, float] = {}
        self._val_epoch = -1
        self._warned: set[str] = set()
        self._dir: Path | None = self.dirpath

    # ------------------------------------------------------------------ hooks

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.dirpath is None:
            # trainer.log_dir is a collective under DDP: every rank asks for it here
            self._dir = Path(trainer.log_dir or trainer.default_root_dir)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        self._val = _read(trainer.callback_metrics, _VAL_KEYS)
        self._val_epoch = trainer.current_epoch

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        row = {"epoch": float(trainer.current_epoch + 1), **_read(trainer.callback_metrics, _TRAIN_KEYS)}
        if self._val_epoch == trainer.current_epoch:
            row.update(self._val)
        self.history = [r for r in self.history if r["epoch"] < row["epoch"]] + [row]
        now = time.monotonic()
        due = self._results_drawn_at is None or now - self._results_drawn_at >= self.results_every_s
        if trainer.is_global_zero and due:
            self._draw_results()
            self._results_drawn_at = now

    def _draw_results(self) -> None:
        if self.history:
            self._draw("results.png", lambda path: plot_results(self.history, path))

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        self._draw_results()  # the epochs since the last redraw
        try:
            evaluation = self._evaluate(trainer, pl_module)
        except Exception as exc:  # a plot never ends a run; the reason is logged
            log.warning("RunPlots: no curves, confusion matrix or image grids: evaluating the best model failed (%s: %s)", type(exc).__name__, exc)
            return
        curves, confusion, names, first = evaluation
        self.curves, self.confusion = curves, confusion
        best_f1, best_score = curves.best_f1()
        log.info("RunPlots: mAP@0.5 %.4f, best F1 %.4f at score %.3f", curves.map50, best_f1, best_score)
        self._draw("PR_curve.png", lambda path: plot_pr_curves({"": (curves.recall_grid, curves.pr_precision)}, names, path))
        self._draw("F1_curve.png", lambda path: plot_f1_curves(curves, names, path))
        self._draw("confusion_matrix.png", lambda path: plot_confusion_matrix(confusion, names, path))
        self._draw("confusion_matrix.json", lambda path: write_json_atomic(path, confusion.to_dict(names)))
        if first is not None:
            batch, detections, targets = first
            score = confusion.score_threshold
            self._draw("val_batch0_pred.jpg", lambda path: self._grid(batch, [d[d[:, 4] >= score] for d in detections], names, path))
            self._draw("val_batch0_labels.jpg", lambda path: self._grid(batch, targets, names, path))

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        return {"history": [dict(r) for r in self.history]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = [{str(k): float(v) for k, v in r.items()} for r in state_dict.get("history", [])]

    # ------------------------------------------------------------------ work

    def _draw(self, name: str, draw: Callable[[Path], Path]) -> None:
        """Write one file, or log one warning per file name and carry on."""
        if self._dir is None:
            return
        try:
            self.written[name] = draw(self._dir / name)
        except Exception as exc:  # a plot never ends a run; the reason is logged
            if name not in self._warned:
                self._warned.add(name)
                log.warning("RunPlots: %s not written (%s: %s)", self._dir / name, type(exc).__name__, exc)

    def _evaluate(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule
    ) -> tuple[DetectionCurves, ConfusionMatrix, list[str], tuple[Mapping[str, Any], list[Tensor], list[Tensor]] | None]:
        """The best model's validation predictions: curves, confusion matrix, first batch."""
        current = pl_module.eval_model
        device = next(current.parameters()).device
        best = best_checkpoint(trainer)
        model = ema_model_from_checkpoint(best, current).to(device) if best is not None else current
        log.info("RunPlots: curves and images from %s", best if best is not None else "the final EMA weights (no best checkpoint)")
        datamodule = trainer.datamodule
        loader = datamodule.val_dataloader() if datamodule is not None else trainer.val_dataloaders
        if loader is None:
            raise DataError("the run has no validation data")
        num_classes = model.num_classes
        names = list(getattr(datamodule, "class_names", None) or [str(k) for k in range(num_classes)])
        v = pl_module.hparams.val
        metrics = DetectionMetrics(num_classes, score_threshold=float(v["score_threshold"]))
        confusion = ConfusionMatrix(num_classes, float(v["score_threshold"]), self.iou_threshold)
        first = None
        for batch, detections, targets in predict_batches(model, loader, float(v["conf_thres"]), float(v["iou_thres"]), int(v["max_det"])):
            metrics.update(detections, targets)
            confusion.update(detections, targets)
            if first is None:
                first = (batch, detections, targets)
        return metrics.curves(), confusion, names, first

    def _grid(self, batch: Mapping[str, Any], boxes: Sequence[Tensor], names: Sequence[str], path: Path) -> Path:
        n = min(self.max_images, len(batch["paths"]))
        images = []
        for i in range(n):
            image = cv2.imread(str(batch["paths"][i]), cv2.IMREAD_COLOR)
            if image is None:
                raise DataError(f"{batch['paths'][i]}: image unreadable")
            images.append(image)
        drawn = [boxes_in_original(batch, boxes, i) for i in range(n)]
        titles = [Path(p).name for p in batch["paths"][:n]]
        return write_image(path, image_grid(images, drawn, names, self.cell, titles))


def _read(metrics: Mapping[str, Any], keys: Sequence[str]) -> dict[str, float]:
    """The finite scalar values of ``keys`` in a trainer's metrics."""
    out = {}
    for key in keys:
        value = metrics.get(key)
        if value is not None and getattr(value, "numel", lambda: 1)() == 1 and math.isfinite(float(value)):
            out[key] = float(value)
    return out
