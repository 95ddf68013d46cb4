"""Learning-rate schedule: linear warm-up that ends exactly at lr0, then cosine or steps.

The schedule is a pure function of the optimizer step, applied through
`torch.optim.lr_scheduler.LambdaLR` with one multiplier per parameter group, so a
checkpoint's scheduler state (its step count) restores it exactly.

Warm-up runs over ``warmup_steps`` optimizer steps: weights and BatchNorm groups go
linearly from 0 to lr0, the bias group from ``warmup_bias_lr`` down to lr0; at step
``warmup_steps`` every group is at lr0 (factor 1.0, never above). After it the factor
follows a half cosine from 1 to ``lrf`` or drops by ``gamma`` at each milestone
(fractions of the post-warm-up steps).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from yolo_slim.errors import ConfigError


@dataclass
class WarmupSchedule:
    """LR multiplier of one parameter group as a function of the optimizer step.

    A callable object (not a closure) so `LambdaLR.state_dict` stores its fields.

    Args:
        total_steps: optimizer steps of the whole run.
        warmup_steps: steps of linear warm-up (0 = none).
        kind: ``"cosine"`` or ``"step"``.
        lrf: final factor of the cosine schedule.
        milestones: for ``"step"``, fractions in (0, 1) of the post-warm-up steps.
        gamma: for ``"step"``, the factor applied at each milestone.
        start_factor: the factor at step 0 (0 for weights, warmup_bias_lr / lr0 for biases).
    """

    total_steps: int
    warmup_steps: int = 0
    kind: Literal["cosine", "step"] = "cosine"
    lrf: float = 0.01
    milestones: Sequence[float] = field(default_factory=lambda: (0.8, 0.9))
    gamma: float = 0.1
    start_factor: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("cosine", "step"):
            raise ConfigError(f"scheduler.kind must be 'cosine' or 'step', got {self.kind!r}")
        if self.total_steps < 1:
            raise ConfigError(f"the run has {self.total_steps} optimizer steps; it needs at least 1")
        if self.warmup_steps < 0:
            raise ConfigError(f"warm-up steps must be >= 0, got {self.warmup_steps}")
        if not 0.0 <= self.lrf <= 1.0:
            raise ConfigError(f"scheduler.lrf must be in [0, 1], got {self.lrf}")
        if any(not 0.0 < m < 1.0 for m in self.milestones):
            raise ConfigError(f"scheduler.milestones must be fractions in (0, 1), got {list(self.milestones)}")
        self.milestones = tuple(float(m) for m in self.milestones)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            t = step / self.warmup_steps
            return self.start_factor + t * (1.0 - self.start_factor)
        span = max(self.total_steps - self.warmup_steps, 1)
        t = min((step - self.warmup_steps) / span, 1.0)
        if self.kind == "cosine":
            # Written so that t = 0 gives exactly 1.0 (no rounding above or below lr0).
            return 1.0 - (1.0 - self.lrf) * 0.5 * (1.0 - math.cos(math.pi * t))
        return self.gamma ** sum(t >= m for m in self.milestones)
