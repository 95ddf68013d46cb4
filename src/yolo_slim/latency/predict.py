"""Whole-network latency from the table: the sum over layers plus the fixed costs.

    predicted = inference_us + sum over timed ops of entry.us

where the timed ops are `layer_specs(cfg)`: every conv (with the image's reorder for
the first), maxpool, upsample, shortcut, split or multi-input route, `[yolo]` decode
and the heads' concatenation. `tests/unit/latency` holds this within 20 % of the
measured latency of the exported network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from yolo_slim.darknet.cfg import DarknetCfg
from yolo_slim.latency.specs import Spec, layer_specs
from yolo_slim.latency.table import FixedCost, LatencySource


@dataclass(frozen=True)
class OpLatency:
    """One timed op of a network.

    Attributes:
        layer: darknet layer id (`HEADS_LAYER` for the heads' concatenation).
        kind: the spec kind (`conv`, `maxpool`, ...).
        us: its cost, microseconds.
    """

    layer: int
    kind: str
    us: float


@dataclass(frozen=True)
class Prediction:
    """A network's predicted batch-1 latency on the table's device.

    Attributes:
        ops: per timed op, in layer order.
        fixed: the table's fixed costs.
    """

    ops: tuple[OpLatency, ...]
    fixed: FixedCost

    @property
    def total_us(self) -> float:
        return self.fixed.inference_us + sum(op.us for op in self.ops)

    @property
    def total_ms(self) -> float:
        return self.total_us / 1000.0

    def by_kind(self) -> dict[str, float]:
        """Microseconds per op kind, plus `fixed` (the per-inference cost)."""
        out: dict[str, float] = {"fixed": self.fixed.inference_us}
        for op in self.ops:
            out[op.kind] = out.get(op.kind, 0.0) + op.us
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"total_ms": self.total_ms, "by_kind_us": self.by_kind(), "inference_us": self.fixed.inference_us}


def predict_specs(specs: list[tuple[int, Spec]], table: LatencySource) -> Prediction:
    """The prediction for an explicit list of (layer id, spec)."""
    entries = table.entries(s for _, s in specs)
    fixed = table.fixed()
    ops = tuple(OpLatency(layer, s.kind, entries[s].us) for layer, s in specs)
    return Prediction(ops, fixed)


def predict_latency(cfg: DarknetCfg, table: LatencySource, hw: tuple[int, int] | int | None = None) -> Prediction:
    """Predict `cfg`'s batch-1 latency at input `hw` (default its `[net]` size),
    measuring the table entries it lacks.

    Raises:
        CfgError: the network cannot be built at that size.
        LatencyError: measuring failed or passed the table's time bound.
    """
    return predict_specs(layer_specs(cfg, hw), table)
