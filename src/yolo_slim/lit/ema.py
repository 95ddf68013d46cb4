"""Exponential moving average of model weights, as a module with its own state.

The average lives in ``ema.module`` (a frozen copy of the model) and its update count
in the ``updates`` buffer, so both are part of a Lightning checkpoint's state dict and
a resumed run continues the decay ramp instead of restarting it. The decay ramps up
with the update count, ``decay * (1 - exp(-updates / tau))``, so early averages
follow the fast-changing weights (the warm-up idea of Polyak averaging in
modern detector trainers). BatchNorm running statistics are averaged the same way.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from yolo_slim.errors import ConfigError


class ModelEMA(nn.Module):
    """EMA of a model's parameters and floating buffers.

    Args:
        model: the model being trained; copied once.
        decay: the asymptotic decay, in [0, 1).
        tau: update count (optimizer steps) at which the decay reaches
            ``decay * (1 - 1/e)``.
    """

    def __init__(self, model: nn.Module, decay: float = 0.9999, tau: float = 2000.0) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ConfigError(f"ema.decay must be in [0, 1), got {decay}")
        if tau <= 0:
            raise ConfigError(f"ema.tau must be > 0, got {tau}")
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = float(decay)
        self.tau = float(tau)
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def current_decay(self) -> float:
        """The decay the next update uses."""
        return self.decay * (1.0 - math.exp(-(int(self.updates) + 1) / self.tau))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Blend ``model``'s current weights into the average (call once per optimizer step)."""
        d = self.current_decay()
        self.updates += 1
        source = model.state_dict()
        for name, value in self.module.state_dict().items():
            if value.dtype.is_floating_point:
                value.mul_(d).add_(source[name].detach().to(value.dtype), alpha=1.0 - d)
            else:
                value.copy_(source[name])

    def train(self, mode: bool = True) -> "ModelEMA":
        """The averaged copy always stays in eval mode."""
        super().train(mode)
        self.module.eval()
        return self
