"""Lightning training of darknet-cfg YOLO models.

* :mod:`~yolo_slim.lit.loss`: the YOLOv3/v4 loss (CIoU/GIoU, IoU-target objectness, class BCE);
* :mod:`~yolo_slim.lit.ema`: the EMA of weights, with its update count as state;
* :mod:`~yolo_slim.lit.schedule`: warm-up ending exactly at lr0, then cosine or steps;
* :mod:`~yolo_slim.lit.module`: the LightningModule;
* :mod:`~yolo_slim.lit.callbacks`: the per-epoch summary line and the darknet files of a run;
* :mod:`~yolo_slim.lit.loggers`: the CSV logger that appends to its file on resume;
* :mod:`~yolo_slim.lit.progress`: training progress as plain-text log records;
* :mod:`~yolo_slim.lit.plots`: the plots of a run (``results.png``, PR/F1 curves, confusion matrix, image grids).

Names are imported lazily, so importing the loss does not import Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "YoloLoss": "loss",
    "LossComponents": "loss",
    "ModelEMA": "ema",
    "WarmupSchedule": "schedule",
    "YoloLitModule": "module",
    "EpochSummary": "callbacks",
    "DarknetExport": "callbacks",
    "AppendingCSVLogger": "loggers",
    "RunPlots": "plots",
    "ProgressLog": "progress",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
