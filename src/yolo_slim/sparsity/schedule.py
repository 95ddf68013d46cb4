"""Schedules for the sparsity strength `s` of the BatchNorm-gamma L1 penalty.

A schedule maps training progress (a fraction in [0, 1] of the planned epochs) to a
multiplier of the base strength `s`:

- `constant`: 1 throughout;
- `step`: 1, then `factor` from `start` on (the reference's "global decay" used
  factor 0.01 at start 0.5);
- `cosine` / `linear`: decay from 1 to `final` between `start` and the end;
- `keep_top`: 1 for every channel, then, from `start` on, the channels that would
  survive a `keep_percent` global cut get `factor` (the reference's "local decay":
  survivors keep their size while the rest keeps shrinking).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from yolo_slim.errors import ConfigError

ScheduleKind = Literal["constant", "step", "cosine", "linear", "keep_top"]
SCHEDULES: tuple[str, ...] = ("constant", "step", "cosine", "linear", "keep_top")


@dataclass(frozen=True)
class SparsitySchedule:
    """How the penalty strength changes over training.

    Attributes:
        kind: one of `SCHEDULES`.
        start: progress fraction in [0, 1) where the change begins.
        factor: multiplier after `start` (`step`) or for surviving channels (`keep_top`).
        final: multiplier reached at the end (`cosine`, `linear`).
        keep_percent: the global percent whose survivors are protected (`keep_top`).
    """

    kind: ScheduleKind = "constant"
    start: float = 0.5
    factor: float = 0.01
    final: float = 0.0
    keep_percent: float = 0.85

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ConfigError(f"sparsity schedule {self.kind!r} is not supported; expected one of {', '.join(SCHEDULES)}")
        if not 0.0 <= self.start < 1.0:
            raise ConfigError(f"sparsity schedule start={self.start} must be a progress fraction in [0, 1)")
        if self.factor < 0 or self.final < 0:
            raise ConfigError(f"sparsity schedule factor={self.factor} and final={self.final} must be >= 0")
        if not 0.0 <= self.keep_percent < 1.0:
            raise ConfigError(f"sparsity schedule keep_percent={self.keep_percent} must be in [0, 1)")

    def multiplier(self, progress: float) -> float:
        """The multiplier of `s` for all channels at `progress` (fraction of training)."""
        progress = min(max(progress, 0.0), 1.0)
        if self.kind in ("constant", "keep_top") or progress < self.start:
            return 1.0
        if self.kind == "step":
            return self.factor
        t = (progress - self.start) / (1.0 - self.start)
        if self.kind == "linear":
            return 1.0 + (self.final - 1.0) * t
        return self.final + (1.0 - self.final) * 0.5 * (1.0 + math.cos(math.pi * t))

    def protects_survivors(self, progress: float) -> bool:
        """Whether `keep_top` protection is active at `progress`."""
        return self.kind == "keep_top" and progress >= self.start
