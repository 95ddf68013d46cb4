"""Grid interpolation of layer costs: the staircase rule, interpolation, lazy measuring."""

from __future__ import annotations

import math

import pytest

from latency_fixtures import FormulaTable, formula_us
from yolo_slim.latency.grid import GridCost, axis_grid
from yolo_slim.latency.specs import AddSpec, ConvSpec, DecodeSpec


def test_axis_grid():
    assert axis_grid(64, 16) == (16, 32, 48, 64)
    assert axis_grid(64, 16, linear=True) == (1, 16, 32, 48, 64)
    g = axis_grid(1024, 16)
    assert g[:8] == tuple(16 * k for k in range(1, 9)) and g[-1] == 1024
    assert all(v % 16 == 0 for v in g)
    assert all(b / a <= 1.34 for a, b in zip(g[7:], g[8:]))  # about 1.25x apart past 8 quanta
    assert axis_grid(21, 16) == (16, 21) and axis_grid(8, 16) == (8,)
    assert axis_grid(100, 1)[:8] == tuple(range(1, 9))


def test_grid_points_are_exact_and_counts_cost_like_the_next_quantum_multiple():
    table = FormulaTable(quantum=16)
    grid = GridCost(table)
    base = ConvSpec(64, 128, 3, 1, 1, 1, 20, 20, "leaky")
    at = lambda cin, cout: grid.cost(base, {"cin": cin, "cout": cout})  # noqa: E731
    assert at(64, 128) == pytest.approx(formula_us(base, 16))
    assert at(32, 48) == pytest.approx(formula_us(base.with_channels(cin=32, cout=48), 16))
    # output channels: a count in (32, 48] costs like 48, the step's fast side
    assert at(32, 33) == pytest.approx(at(32, 48))
    assert at(32, 47) == pytest.approx(at(32, 48)) and at(32, 49) > at(32, 48)
    # input channels interpolate linearly between grid points (the formula is linear there)
    assert at(40, 48) == pytest.approx((at(32, 48) + at(48, 48)) / 2)
    # past 8 quanta the grid is coarser: 160 and 192 are grid points, 176 is interpolated
    wide = ConvSpec(256, 256, 1, 1, 0, 1, 10, 10, "leaky")
    mid = grid.cost(wide, {"cin": 256, "cout": 176})
    assert mid == pytest.approx((grid.cost(wide, {"cin": 256, "cout": 160}) + grid.cost(wide, {"cin": 256, "cout": 192})) / 2)


def test_corner_weights_sum_to_one_and_only_needed_points_are_measured():
    table = FormulaTable(quantum=8)
    grid = GridCost(table)
    base = ConvSpec(96, 96, 3, 1, 1, 1, 12, 12, "mish")
    corners = grid.corners(base, {"cin": 50, "cout": 70})
    assert len(corners) == 4 and math.isclose(sum(w for _, w in corners), 1.0)
    grid.prefetch([(base, {"cin": 50, "cout": 70})])
    assert table.asked == {s for s, _ in corners}
    grid.cost(base, {"cin": 50, "cout": 70})
    assert len(table.asked) == 4  # answered from what prefetch measured
    add = AddSpec(64, 10, 10, 2, "linear")
    assert grid.corners(add, {"c": 64}) == [(add, 1.0)]
    decode = DecodeSpec(3, 7, 5, 5, False)
    assert grid.corners(decode, {}) == [(decode, 1.0)]


def test_depthwise_convs_resize_both_sides():
    grid = GridCost(FormulaTable(quantum=16))
    dw = ConvSpec(64, 64, 3, 1, 1, 64, 10, 10, "leaky")
    ((spec, weight),) = grid.corners(dw, {"cout": 30})
    assert weight == 1.0 and (spec.cin, spec.cout, spec.groups) == (32, 32, 32)
