"""Layer costs at any channel count from a coarse grid of measured ones.

A planner asks for the cost of a layer at many widths; measuring each would take
hours on a large network. Each channel axis therefore has a grid (`axis_grid`): all
multiples of the device's channel quantum q up to 8 q, then about 1.25x apart, plus
the full width (and 1 on a conv's input-channel axis). A query is answered from the
grid points around it, measured on first use:

- on a "stair" axis (output channels) a count c costs like the next quantum
  multiple, ceil(c / q) * q, capped at the full width: within a step the staircase
  is flat;
- between two grid points the cost is interpolated linearly (bilinearly over a
  conv's input and output channels), where consecutive steps rise evenly.

`GridCost.prefetch(queries)` measures every grid point a batch of queries needs in
one table call, so a planner iteration costs at most one measuring session.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence

from yolo_slim.latency.specs import Spec
from yolo_slim.latency.table import LatencySource

_SCALES = (1.0, 1.25, 1.5, 1.75)


def axis_grid(cmax: int, quantum: int, linear: bool = False) -> tuple[int, ...]:
    """Grid points of one channel axis whose full width is `cmax`.

    Multiples k * quantum for k = 1..8, then for k = 8 * 2**n the multiples
    k, 1.25 k, 1.5 k, 1.75 k; all up to `cmax`, plus `cmax` and, on a linear axis, 1.
    """
    q = max(int(quantum), 1)
    ks = set(range(1, 9))
    p = 8
    while p * q <= cmax:
        ks.update(int(p * s) for s in _SCALES)
        p *= 2
    points = {k * q for k in ks if k * q <= cmax} | {int(cmax)}
    if linear:
        points.add(1)
    return tuple(sorted(points))


def _bracket(grid: Sequence[int], value: float) -> list[tuple[int, float]]:
    """(grid point, weight) pairs interpolating `value` linearly (clamped to the grid)."""
    if value <= grid[0]:
        return [(grid[0], 1.0)]
    if value >= grid[-1]:
        return [(grid[-1], 1.0)]
    i = bisect.bisect_left(grid, value)
    hi = grid[i]
    if hi == value:
        return [(hi, 1.0)]
    lo = grid[i - 1]
    t = (value - lo) / (hi - lo)
    return [(lo, 1.0 - t), (hi, t)]


class GridCost:
    """Costs of layer specs at any channel counts, from a table's grid-point entries.

    Args:
        table: the latency source (measures missing grid points).
        quantum: the channel quantum; default the table's.
    """

    def __init__(self, table: LatencySource, quantum: int | None = None) -> None:
        self.table = table
        self.quantum = int(quantum) if quantum is not None else int(table.quantum())
        self._known: dict[Spec, float] = {}
        self._grids: dict[tuple[int, bool], tuple[int, ...]] = {}

    def _grid(self, cmax: int, linear: bool) -> tuple[int, ...]:
        key = (cmax, linear)
        if key not in self._grids:
            self._grids[key] = axis_grid(cmax, self.quantum, linear)
        return self._grids[key]

    def corners(self, base: Spec, channels: Mapping[str, int]) -> list[tuple[Spec, float]]:
        """The grid specs and weights whose weighted cost answers a query.

        Args:
            base: the layer at full width (its channel fields give each axis' grid).
            channels: axis name -> channel count asked for (axes not given keep base's).
        """
        axes = base.channel_axes()
        per_axis = []
        for name, kind in axes.items():
            cmax = int(getattr(base, name))
            value = int(channels.get(name, cmax))
            linear = kind == "linear"
            if not linear:
                value = min(math.ceil(value / self.quantum) * self.quantum, cmax)
            per_axis.append([(name, g, w) for g, w in _bracket(self._grid(cmax, linear), value)])
        if not per_axis:
            return [(base, 1.0)]
        out = []
        for combo in itertools.product(*per_axis):
            weight = 1.0
            for _, _, w in combo:
                weight *= w
            out.append((base.with_channels(**{name: g for name, g, _ in combo}), weight))
        return out

    def prefetch(self, queries: Iterable[tuple[Spec, Mapping[str, int]]]) -> None:
        """Measure (through the table) every grid spec the queries need."""
        missing = {}
        for base, channels in queries:
            for spec, _ in self.corners(base, channels):
                if spec not in self._known:
                    missing[spec] = None
        if missing:
            for spec, entry in self.table.entries(missing).items():
                self._known[spec] = entry.us

    def cost(self, base: Spec, channels: Mapping[str, int]) -> float:
        """The interpolated cost in microseconds (measuring what is missing)."""
        corners = self.corners(base, channels)
        if any(spec not in self._known for spec, _ in corners):
            self.prefetch([(base, channels)])
        return sum(self._known[spec] * w for spec, w in corners)
