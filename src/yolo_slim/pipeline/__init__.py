"""yolo_slim.pipeline: the whole slimming process as one resumable command.

baseline -> sparsity -> channel sweep -> layer sweep -> fine-tune -> export ->
benchmark, each stage a call of the project's own task with its own config, and
`REPORT.md` with the original tutorial's tables from what the run measured.
"""

from __future__ import annotations

from yolo_slim.pipeline.runner import run_pipeline
from yolo_slim.pipeline.context import STAGES

__all__ = ["STAGES", "run_pipeline"]
