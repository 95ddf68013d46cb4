"""When a pruned setting loses little: the acceptance rule of sweeps and searches.

The original tutorial picks its "optimal pruning point" by eye: the strongest
`global_percent` before the cliff where "P rises sharply, and R and mAP@0.5 drop
sharply". `Acceptance` writes that reading down, and the sweep's optimal point
(`yolo_slim.prune.sweep.choose_optimal`) and the search (`prune.search=true`) both use
it. Against the unpruned model (the reference), a pruned point is accepted when

- mAP@0.5 >= reference mAP@0.5 - `tolerance` (absolute: 0.01 = 1 point), and
- mAP@0.5 >= `keep_map` x reference mAP@0.5 (relative: a kept fraction), and
- recall >= `keep_recall` x reference recall (the recall has not collapsed; a point
  whose precision jumps while its recall falls is past the cliff), and
- the reference itself learned something: its mAP@0.5 >= `min_map`. Below that floor
  no point is accepted, because "within tolerance of a model that detects nothing"
  says nothing about the pruning. `learned_nothing` is that floor; the pipeline's gate
  (`yolo_slim.pipeline.gate`, `baseline.min_map`) applies the same one to the baseline.

All bounds are inclusive. The verdict of a point is "ok" or the failed conditions in
words, e.g. "mAP 0.310 < 0.95 x 0.360" or "recall collapsed 0.050 < 0.8 x 0.620".
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from yolo_slim.errors import ConfigError

EPS = 1e-12  # bounds are inclusive: a point exactly on a floor is accepted
OK = "ok"


def learned_nothing(map50: Any, min_map: float) -> bool:
    """Whether a model whose mAP@0.5 is `map50` learned (almost) nothing.

    True when there is no figure (None, or not a real number), it is not finite, or it
    is below `min_map` (the floor itself passes). The acceptance rule's reference check
    and the pipeline gate's baseline check both use this one floor.

    Args:
        map50: the model's mAP@0.5 in [0, 1], or None when it was not measured.
        min_map: the floor, in [0, 1].
    """
    if isinstance(map50, bool) or not isinstance(map50, numbers.Real):
        return True
    return not math.isfinite(float(map50)) or float(map50) < min_map - EPS


@dataclass(frozen=True)
class Acceptance:
    """The rule a pruned point must satisfy to be called optimal (see the module doc).

    Attributes:
        tolerance: accepted absolute mAP@0.5 loss, >= 0 (0.01 = 1 point).
        keep_map: kept fraction of the reference mAP@0.5, in [0, 1].
        keep_recall: kept fraction of the reference recall, in [0, 1].
        min_map: the reference mAP@0.5 below which nothing is accepted, in [0, 1].
        prefix: where the values came from (`prune`, `channel_sweep`), for messages.

    Raises:
        ConfigError: a value that is not a number or is out of its range, naming
            `<prefix>.<key>`.
    """

    tolerance: float = 0.01
    keep_map: float = 0.95
    keep_recall: float = 0.8
    min_map: float = 0.1
    prefix: str = field(default="prune", compare=False)

    def __post_init__(self) -> None:
        limits = {
            "tolerance": (0.0, math.inf, "absolute mAP@0.5 loss, 0.01 = 1 point"),
            "keep_map": (0.0, 1.0, "kept fraction of the unpruned mAP@0.5"),
            "keep_recall": (0.0, 1.0, "kept fraction of the unpruned recall"),
            "min_map": (0.0, 1.0, "the unpruned mAP@0.5 below which no point is optimal"),
        }
        problems = []
        for key, (low, high, meaning) in limits.items():
            value = getattr(self, key)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or not low <= float(value) <= high:
                bounds = f">= {low:g}" if high == math.inf else f"in [{low:g}, {high:g}]"
                shown = f"{value:g}" if number else repr(value)
                problems.append(f"{self.prefix}.{key}={shown} must be a number {bounds} ({meaning})")
            else:
                object.__setattr__(self, key, float(value))
        if problems:
            raise ConfigError("; ".join(problems))

    @classmethod
    def from_config(cls, config: Mapping[str, Any], prefix: str = "prune") -> "Acceptance":
        """The rule from a config section holding some of `tolerance`, `keep_map`,
        `keep_recall`, `min_map` (missing keys take the defaults)."""
        keys = ("tolerance", "keep_map", "keep_recall", "min_map")
        return cls(**{k: config[k] for k in keys if k in config}, prefix=prefix)

    def map_floor(self, reference_map: float) -> float:
        """The lowest accepted mAP@0.5: max(reference - tolerance, keep_map x reference)."""
        return max(reference_map - self.tolerance, self.keep_map * reference_map)

    def reference_problem(self, reference: Mapping[str, Any]) -> str | None:
        """Why no point can be accepted against `reference` (None when one can)."""
        ref_map = reference.get("mAP50")
        if ref_map is None:
            return "the unpruned model has no mAP@0.5"
        if learned_nothing(ref_map, self.min_map):
            shown = f"{float(ref_map):.3f}" if isinstance(ref_map, numbers.Real) else repr(ref_map)
            return f"unpruned mAP {shown} < min_map {self.min_map:g}"
        return None

    def verdict(self, point: Mapping[str, Any], reference: Mapping[str, Any]) -> str:
        """"ok", or every failed condition of `point` against `reference`, joined by "; ".

        Args:
            point: the pruned point's metrics (`mAP50`, `recall`).
            reference: the unpruned model's metrics (`mAP50`, and `recall` for the
                recall rule, which is not checked when the reference has none).
        """
        problem = self.reference_problem(reference)
        problems = [problem] if problem else []
        ref_map = reference.get("mAP50")
        value = point.get("mAP50")
        if value is None:
            problems.append("no mAP@0.5")
        elif ref_map is not None:
            ref_map, value = float(ref_map), float(value)
            if value < self.map_floor(ref_map) - EPS:
                relative = self.keep_map * ref_map > ref_map - self.tolerance
                bound = f"{self.keep_map:g} x {ref_map:.3f}" if relative else f"{ref_map:.3f} - {self.tolerance:g}"
                problems.append(f"mAP {value:.3f} < {bound}")
        ref_recall = reference.get("recall")
        if ref_recall is not None:
            recall = point.get("recall")
            if recall is None:
                problems.append("no recall")
            elif float(recall) < self.keep_recall * float(ref_recall) - EPS:
                problems.append(f"recall collapsed {float(recall):.3f} < {self.keep_recall:g} x {float(ref_recall):.3f}")
        return "; ".join(problems) if problems else OK

    def accepts(self, point: Mapping[str, Any], reference: Mapping[str, Any]) -> bool:
        """Whether `verdict(point, reference)` is "ok"."""
        return self.verdict(point, reference) == OK

    def describe(self) -> str:
        """The rule in one line, e.g. for a table's notes."""
        return (
            f"accepted: mAP@0.5 >= max(unpruned - {self.tolerance:g}, {self.keep_map:g} x unpruned) and "
            f"recall >= {self.keep_recall:g} x unpruned, if the unpruned mAP@0.5 >= {self.min_map:g}"
        )

    def to_dict(self) -> dict[str, float]:
        """The four values (for report.json and optimal.json)."""
        d = asdict(self)
        d.pop("prefix")
        return d
