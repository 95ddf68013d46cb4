"""Helpers of the latency tests: a formula latency table and sparse-looking models.

`FormulaTable` gives costs shaped like a measured table, so planner tests time
nothing: a conv costs a fixed 2 us plus work proportional to its multiply-adds with
output channels padded to a block of `quantum` (the staircase), other ops 1 us plus
their size; 20 us per inference.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch

from yolo_slim.darknet.cfg import DarknetCfg, load_cfg
from yolo_slim.latency.specs import ConcatSpec, ConvSpec, Spec
from yolo_slim.latency.table import Entry, FixedCost
from yolo_slim.model import Darknet


def formula_us(spec: Spec, quantum: int) -> float:
    if isinstance(spec, ConvSpec):
        out_h = (spec.h + 2 * spec.padding - spec.size) // spec.stride + 1
        out_w = (spec.w + 2 * spec.padding - spec.size) // spec.stride + 1
        padded = math.ceil(spec.cout / quantum) * quantum
        macs = out_h * out_w * padded * (spec.cin // spec.groups) * spec.size**2
        return 2.0 + macs / 5e3
    channels = getattr(spec, "c", None)
    if isinstance(spec, ConcatSpec):
        channels = spec.c
    if channels is None:
        return 3.0
    return 1.0 + channels * spec.h * spec.w / 2e4


class FormulaTable:
    """A `LatencySource` whose entries come from `formula_us`; counts what it was asked."""

    def __init__(self, quantum: int = 16, inference_us: float = 20.0) -> None:
        self._quantum = quantum
        self._fixed = FixedCost(inference_us, 2.0)
        self.asked: set[Spec] = set()

    def entries(self, specs: Iterable[Spec]) -> dict[Spec, Entry]:
        out = {}
        for s in specs:
            self.asked.add(s)
            out[s] = Entry(formula_us(s, self._quantum), 1)
        return out

    def fixed(self) -> FixedCost:
        return self._fixed

    def quantum(self) -> int:
        return self._quantum


def sparse_model(cfg: DarknetCfg | str, img_size: int | None = None, seed: int = 0, dead: float = 0.6) -> Darknet:
    """A network whose BN gammas look sparsity-trained: per conv a fraction `dead`
    (on average) of channels near zero, the rest log-normal; eval mode."""
    model = Darknet(load_cfg(cfg, classes=2, img_size=img_size) if isinstance(cfg, str) else cfg).eval()
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for block in model.conv_blocks().values():
            if block.bn is None:
                continue
            c = block.bn.num_features
            alive = rng.random(c) >= dead
            gamma = np.where(alive, rng.lognormal(-0.5, 0.5, c), np.abs(rng.normal(0, 1e-3, c)))
            block.bn.weight.copy_(torch.from_numpy(gamma.astype(np.float32)))
    return model
