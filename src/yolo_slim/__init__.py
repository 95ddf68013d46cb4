"""yolo_slim: make darknet YOLO detectors slim and fast.

Sparsity training, channel and layer pruning, fine-tuning and OpenVINO deployment
for darknet-cfg YOLO models, as a PyTorch Lightning plugin configured with Hydra.

The Python API (docs/api.md), imported on first use so that ``import yolo_slim`` stays
cheap: `compose` builds a validated config as a command line would; `train`, `val`,
`predict`, `prune`, `export`, `detect` and `run_pipeline` run a command and return its
metrics and artefact paths; `load_model`, `open_detector`, `OpenVINODetector` and
`TorchDetector` load models for your own code.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "compose": "yolo_slim.api",
    "train": "yolo_slim.api",
    "val": "yolo_slim.api",
    "predict": "yolo_slim.api",
    "detect": "yolo_slim.api",
    "run_pipeline": "yolo_slim.api",
    "load_model": "yolo_slim.model.loading",
    "open_detector": "yolo_slim.deploy.models",
    "OpenVINODetector": "yolo_slim.deploy.detector",
    "TorchDetector": "yolo_slim.deploy.torch_detector",
    "YoloSlimError": "yolo_slim.errors",
}
# packages that are also their task functions (`yolo_slim.api.callable_package`)
_TASK_PACKAGES = ("prune", "export")

__all__ = sorted([*_EXPORTS, *_TASK_PACKAGES])


def __getattr__(name: str) -> Any:
    if name in _TASK_PACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
