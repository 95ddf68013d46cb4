"""What every pipeline stage shares: the stage names and `StageContext`.

`StageContext` carries the pipeline config, the run dir, the one data set and input
size, and the results of the stages that ran. Its own module so that the job planning
(`yolo_slim.pipeline.jobs`), the stage runners (`yolo_slim.pipeline.stages`) and the
benchmark (`yolo_slim.pipeline.benchmark`) all read it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from yolo_slim.errors import PipelineError

STAGES: tuple[str, ...] = ("baseline", "sparsity", "channel_sweep", "layer_sweep", "latency_sweep", "finetune", "export", "benchmark")
# the pruned model the fine-tuning starts from: the optimal point of the last of these the run has
PRUNE_STAGES: tuple[str, ...] = ("latency_sweep", "layer_sweep", "channel_sweep")
# keys every stage gets from the pipeline; a stage's own overrides may not set them
OWNED_KEYS: tuple[str, ...] = ("paths", "seed", "data", "img_size", "device", "eval")



@dataclass
class StageContext:
    """What a stage needs: the pipeline config, its folder, the shared values, earlier results.

    Attributes:
        data: the data set every stage uses (the generated `.data` file for builtin).
        img_size: the input size every stage uses.
        planned: the stages this run will still run; while `preflight`, their
            outputs are placeholders such as ``<baseline.best_weights>``.
        gate: the gate's checks (`yolo_slim.pipeline.gate`) by the stage checked.
        stages: this run's stage list (`stages=`); empty: not known (a bare context).
    """

    cfg: DictConfig
    run_dir: Path
    data: str = "<data>"
    img_size: int | None = None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    planned: frozenset[str] = frozenset()
    preflight: bool = False
    composed: dict[tuple[str, ...], DictConfig] = field(default_factory=dict, repr=False)
    gate: dict[str, dict[str, Any]] = field(default_factory=dict)
    stages: tuple[str, ...] = ()

    def stage_dir(self, name: str) -> Path:
        return self.run_dir / f"{STAGES.index(name) + 1:02d}_{name}"

    def need(self, stage: str, key: str) -> Any:
        """An output of an earlier stage, or a clear error naming what to run first."""
        result = self.results.get(stage)
        if result is not None and key in result.get("artifacts", {}):
            return result["artifacts"][key]
        if result is not None and key in result:
            return result[key]
        if self.preflight and stage in self.planned:
            return f"<{stage}.{key}>"
        raise PipelineError(f"this stage needs the {stage!r} stage's {key!r}; run it first (stages=[{stage},...])")


def _checked_names(cfg: DictConfig, key: str) -> list[str]:
    """The stage names under ``cfg[key]``; an unknown name is a `PipelineError`."""
    names = list(OmegaConf.to_container(cfg[key], resolve=True)) if cfg.get(key) else []
    unknown = [s for s in names if s not in STAGES]
    if unknown:
        raise PipelineError(f"{key}={names}: unknown {unknown}; expected a subset of {list(STAGES)}")
    return names


def stage_list(cfg: DictConfig) -> list[str]:
    """The configured stages, checked, in process order."""
    wanted = _checked_names(cfg, "stages") or list(STAGES)
    return [s for s in STAGES if s in wanted]


def forced_stages(cfg: DictConfig) -> set[str]:
    """The stages ``cfg.force`` names and every stage after the first of them (their inputs change)."""
    forced = _checked_names(cfg, "force")
    if not forced:
        return set()
    return set(STAGES[min(STAGES.index(name) for name in forced):])
