"""yolo_slim.pipeline: the whole slimming process as one resumable command.

baseline -> sparsity -> latency sweep (or channel sweep -> layer sweep) -> fine-tune
-> export -> benchmark, each stage a call of the project's own task with its own
config, and `REPORT.md` with the original tutorial's tables from what the run measured.

Names are imported lazily, so the config checks can read the stage list
(`yolo_slim.pipeline.context`) without importing the tasks the runner calls.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"run_pipeline": "runner", "STAGES": "context"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'yolo_slim.pipeline' has no attribute {name!r}")
    return getattr(importlib.import_module(f"yolo_slim.pipeline.{_EXPORTS[name]}"), name)
