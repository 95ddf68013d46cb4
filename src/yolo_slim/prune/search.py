"""Search for the optimal pruning point: coarse grid, then bisection.

The optimal point is the strongest setting (largest `global_percent`, or most removed
residual units) whose mAP@0.5 stays within `tolerance` of the unpruned model. mAP falls
roughly monotonically as the strength grows, so the search walks a coarse grid upwards
until the first point that loses too much, then bisects between the last acceptable
point and that one until the interval is no wider than `resolution`. The function to
evaluate is passed in (in `prune(cfg)` it scores the gamma-masked network, which needs
no surgery), so the search itself is pure and testable with a synthetic curve.

The number of evaluations is bounded by `max_evaluations(...)`: `coarse` grid points
plus `ceil(log2(grid step / resolution))` bisection steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from yolo_slim.errors import ConfigError, PruneError

Metrics = Mapping[str, float]


@dataclass(frozen=True)
class SearchPoint:
    """One evaluated setting.

    Attributes:
        value: the searched parameter (`global_percent` in [0, 1), or `shortcuts`).
        mAP50: its mAP@0.5 (None when the setting could not be planned).
        ok: mAP50 >= reference - tolerance.
        stage: `coarse` (grid) or `bisect`.
        metrics: everything the evaluation returned (precision, recall, bflops, ...).
        note: why a point failed without a score (the planner's message).
    """

    value: float
    mAP50: float | None
    ok: bool
    stage: Literal["coarse", "bisect"]
    metrics: Mapping[str, float] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class SearchResult:
    """The outcome of `search_strongest`.

    Attributes:
        axis: name of the searched parameter.
        best: the strongest acceptable evaluated value, or None when none was.
        reference_map: the unpruned model's mAP@0.5.
        tolerance: the accepted mAP@0.5 loss (absolute, 0.01 = 1 point).
        points: every evaluation, in order.
        bound: the most evaluations this search could have used.
    """

    axis: str
    best: float | None
    reference_map: float
    tolerance: float
    points: tuple[SearchPoint, ...]
    bound: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (for report.json)."""
        return {
            "axis": self.axis,
            "best": self.best,
            "reference_mAP50": self.reference_map,
            "tolerance": self.tolerance,
            "evaluations": len(self.points),
            "bound": self.bound,
            "points": [{**asdict(p), "metrics": dict(p.metrics)} for p in self.points],
        }


def coarse_grid(low: float, high: float, coarse: int, integer: bool) -> list[float]:
    """The `coarse` grid points in (low, high], ascending (`low` itself is not evaluated:
    it is the weakest setting, assumed acceptable)."""
    if integer:
        return sorted({int(round(low + (high - low) * k / coarse)) for k in range(1, coarse + 1)} - {int(low)})
    return [round(low + (high - low) * k / coarse, 10) for k in range(1, coarse + 1)]


def max_evaluations(low: float, high: float, coarse: int, resolution: float, integer: bool = False) -> int:
    """The most evaluations `search_strongest` makes for these bounds."""
    grid = coarse_grid(low, high, coarse, integer)
    widest = max(b - a for a, b in zip([low, *grid[:-1]], grid))
    units = math.ceil(widest / resolution - 1e-9)  # bisection brackets snap to the resolution grid
    return len(grid) + (math.ceil(math.log2(units + 1)) if units > 1 else 0)


def _check(low: float, high: float, coarse: int, resolution: float, tolerance: float, integer: bool) -> None:
    problems = []
    if not high > low:
        problems.append(f"search range low={low} .. high={high} is empty (need low < high)")
    if isinstance(coarse, bool) or int(coarse) != coarse or coarse < 1:
        problems.append(f"coarse={coarse!r} must be an integer >= 1")
    if not resolution > 0 or (integer and int(resolution) != resolution):
        problems.append(f"resolution={resolution!r} must be > 0" + (" and an integer" if integer else ""))
    if not tolerance >= 0:
        problems.append(f"tolerance={tolerance!r} must be >= 0 (absolute mAP@0.5, 0.01 = 1 point)")
    if problems:
        raise ConfigError("; ".join(problems))


def _midpoint(good: float, bad: float, resolution: float, integer: bool) -> float | None:
    """A point strictly between good and bad, on the resolution grid where possible."""
    if integer:
        mid = (int(good) + int(bad)) // 2
        return mid if good < mid < bad else None
    exact = (good + bad) / 2
    snapped = round(round(exact / resolution) * resolution, 10)
    mid = snapped if good < snapped < bad else exact
    return mid if good < mid < bad else None


def search_strongest(
    evaluate: Callable[[float], Metrics | float],
    reference_map: float,
    *,
    tolerance: float = 0.01,
    low: float = 0.0,
    high: float = 0.95,
    coarse: int = 5,
    resolution: float = 0.01,
    integer: bool = False,
    axis: str = "global_percent",
) -> SearchResult:
    """Find the strongest setting in (low, high] whose mAP@0.5 stays within tolerance.

    Args:
        evaluate: maps a setting to its metrics (a mapping with `mAP50`) or directly to
            its mAP@0.5. A `PruneError` from it (a setting that cannot be planned)
            counts as a failed point.
        reference_map: the unpruned model's mAP@0.5.
        tolerance: accepted absolute loss (0.01 = 1 mAP point).
        low: the weakest setting (not evaluated; 0 = unpruned).
        high: the strongest setting tried.
        coarse: grid points in (low, high].
        resolution: bisection stops when the bracket is this narrow (1 for integers).
        integer: the setting is an integer (`shortcuts`).
        axis: the parameter's name, for the trace.

    Returns:
        The result; `best` is None when even the weakest evaluated point loses more
        than `tolerance`.

    Raises:
        ConfigError: bad bounds, grid, resolution or tolerance.
    """
    _check(low, high, coarse, resolution, tolerance, integer)
    points: list[SearchPoint] = []
    threshold = reference_map - tolerance - 1e-12

    def run(value: float, stage: Literal["coarse", "bisect"]) -> bool:
        value = int(value) if integer else float(value)
        try:
            result = evaluate(value)
        except PruneError as exc:
            points.append(SearchPoint(value, None, False, stage, {}, str(exc)))
            return False
        metrics = dict(result) if isinstance(result, Mapping) else {"mAP50": float(result)}
        score = float(metrics["mAP50"])
        ok = score >= threshold
        points.append(SearchPoint(value, score, ok, stage, metrics))
        return ok

    good, bad, best = low, None, None
    for value in coarse_grid(low, high, int(coarse), integer):
        if run(value, "coarse"):
            good = best = value
        else:
            bad = value
            break
    bound = max_evaluations(low, high, int(coarse), resolution, integer)
    if bad is not None:
        while bad - good > resolution + 1e-9 and len(points) < bound:
            mid = _midpoint(good, bad, resolution, integer)
            if mid is None:
                break
            if run(mid, "bisect"):
                good = best = mid
            else:
                bad = mid
    return SearchResult(axis, best, float(reference_map), float(tolerance), tuple(points), bound)
