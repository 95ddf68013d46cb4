"""Search for the optimal pruning point: coarse grid, then bisection.

The optimal point is the strongest setting (largest `global_percent`, or most removed
residual units) that the sweep's acceptance rule accepts (`yolo_slim.prune.accept`:
mAP@0.5 within the absolute and the relative tolerance, recall not collapsed, and an
unpruned model that learned something). Quality falls roughly monotonically as the
strength grows, so the search walks a coarse grid upwards until the first point that
is rejected, then bisects between the last accepted point and that one until the
interval is no wider than `resolution`. The function to
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
from yolo_slim.prune.accept import Acceptance

Metrics = Mapping[str, float]


@dataclass(frozen=True)
class SearchPoint:
    """One evaluated setting.

    Attributes:
        value: the searched parameter (`global_percent` in [0, 1), or `shortcuts`).
        mAP50: its mAP@0.5 (None when the setting could not be planned).
        ok: whether the acceptance rule accepts it.
        stage: `coarse` (grid) or `bisect`.
        metrics: everything the evaluation returned (precision, recall, bflops, ...).
        note: why it was rejected (the rule's verdict, or the planner's message).
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
        best: the strongest accepted evaluated value, or None when none was.
        reference: the unpruned model's metrics (`mAP50`, `recall`).
        acceptance: the rule the points were judged by.
        points: every evaluation, in order.
        bound: the most evaluations this search could have used.
        reason: why nothing was searched (an unpruned model below `min_map`), else "".
    """

    axis: str
    best: float | None
    reference: Mapping[str, float]
    acceptance: Acceptance
    points: tuple[SearchPoint, ...]
    bound: int
    reason: str = ""

    @property
    def reference_map(self) -> float:
        return float(self.reference["mAP50"])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (for report.json)."""
        return {
            "axis": self.axis,
            "best": self.best,
            "reference_mAP50": self.reference_map,
            "reference_recall": self.reference.get("recall"),
            "acceptance": self.acceptance.to_dict(),
            "reason": self.reason,
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


def _check(low: float, high: float, coarse: int, resolution: float, integer: bool) -> None:
    problems = []
    if not high > low:
        problems.append(f"search range low={low} .. high={high} is empty (need low < high)")
    if isinstance(coarse, bool) or int(coarse) != coarse or coarse < 1:
        problems.append(f"coarse={coarse!r} must be an integer >= 1")
    if not resolution > 0 or (integer and int(resolution) != resolution):
        problems.append(f"resolution={resolution!r} must be > 0" + (" and an integer" if integer else ""))
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
    reference: Metrics | float,
    *,
    acceptance: Acceptance | None = None,
    low: float = 0.0,
    high: float = 0.95,
    coarse: int = 5,
    resolution: float = 0.01,
    integer: bool = False,
    axis: str = "global_percent",
) -> SearchResult:
    """Find the strongest setting in (low, high] that `acceptance` accepts.

    Args:
        evaluate: maps a setting to its metrics (a mapping with `mAP50` and `recall`)
            or directly to its mAP@0.5. A `PruneError` from it (a setting that cannot
            be planned) counts as a rejected point.
        reference: the unpruned model's metrics (`mAP50`, `recall`), or its mAP@0.5
            alone (then the recall rule is not applied).
        acceptance: the rule (default `Acceptance()`).
        low: the weakest setting (not evaluated; 0 = unpruned).
        high: the strongest setting tried.
        coarse: grid points in (low, high].
        resolution: bisection stops when the bracket is this narrow (1 for integers).
        integer: the setting is an integer (`shortcuts`).
        axis: the parameter's name, for the trace.

    Returns:
        The result; `best` is None when even the weakest evaluated point is rejected,
        or (with `reason`, nothing evaluated) when the unpruned model is below
        `acceptance.min_map`.

    Raises:
        ConfigError: bad bounds, grid or resolution.
    """
    _check(low, high, coarse, resolution, integer)
    acceptance = acceptance if acceptance is not None else Acceptance()
    reference = dict(reference) if isinstance(reference, Mapping) else {"mAP50": float(reference)}
    bound = max_evaluations(low, high, int(coarse), resolution, integer)
    problem = acceptance.reference_problem(reference)
    if problem is not None:
        return SearchResult(axis, None, reference, acceptance, (), bound, problem)
    points: list[SearchPoint] = []

    def run(value: float, stage: Literal["coarse", "bisect"]) -> bool:
        value = int(value) if integer else float(value)
        try:
            result = evaluate(value)
        except PruneError as exc:
            points.append(SearchPoint(value, None, False, stage, {}, str(exc)))
            return False
        metrics = dict(result) if isinstance(result, Mapping) else {"mAP50": float(result)}
        verdict = acceptance.verdict(metrics, reference)
        ok = verdict == "ok"
        points.append(SearchPoint(value, float(metrics["mAP50"]), ok, stage, metrics, "" if ok else verdict))
        return ok

    good, bad, best = low, None, None
    for value in coarse_grid(low, high, int(coarse), integer):
        if run(value, "coarse"):
            good = best = value
        else:
            bad = value
            break
    if bad is not None:
        while bad - good > resolution + 1e-9 and len(points) < bound:
            mid = _midpoint(good, bad, resolution, integer)
            if mid is None:
                break
            if run(mid, "bisect"):
                good = best = mid
            else:
                bad = mid
    return SearchResult(axis, best, reference, acceptance, tuple(points), bound)
