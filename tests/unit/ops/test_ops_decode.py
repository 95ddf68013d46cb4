"""The one YOLO decode: darknet's formulas, checked cell by cell with plain Python floats."""

from __future__ import annotations

import math

import pytest
import torch

from yolo_slim.ops.decode import decode_cell_boxes, decode_head


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


@pytest.mark.parametrize("new_coords", [False, True])
def test_decode_head_matches_darknet_formula_per_cell(new_coords):
    torch.manual_seed(0)
    b, a, h, w, c = 2, 2, 3, 4, 3
    p = torch.randn(b, a, h, w, 5 + c, dtype=torch.float64)
    if new_coords:
        p = p.sigmoid()
    anchors = torch.tensor([[10.0, 14.0], [23.0, 27.0]], dtype=torch.float64)
    k = 1.05
    out = decode_head(p, anchors, (96, 128), k, new_coords)
    assert out.shape == (b, a * h * w, 5 + c)
    grid = out.view(b, a, h, w, 5 + c)
    stride_y, stride_x = 96 / h, 128 / w
    for bi, ai, gy, gx in [(0, 0, 0, 0), (1, 1, 2, 3), (0, 1, 1, 2)]:
        t = p[bi, ai, gy, gx].tolist()
        aw, ah = anchors[ai].tolist()
        if new_coords:
            x = (t[0] * k - (k - 1) / 2 + gx) * stride_x
            bw, rest = 4 * t[2] ** 2 * aw, t[4:]
        else:
            x = (_sigmoid(t[0]) * k - (k - 1) / 2 + gx) * stride_x
            bw, rest = math.exp(t[2]) * aw, [_sigmoid(v) for v in t[4:]]
        y_raw = t[1] if new_coords else _sigmoid(t[1])
        bh = 4 * t[3] ** 2 * ah if new_coords else math.exp(t[3]) * ah
        expected = [x, (y_raw * k - (k - 1) / 2 + gy) * stride_y, bw, bh, *rest]
        assert grid[bi, ai, gy, gx].tolist() == pytest.approx(expected, rel=1e-12)


def test_cell_boxes_clamp_only_the_exponent_of_classic_heads():
    raw = torch.tensor([[0.0, 0.0, 50.0, -1.0]])
    anchors = torch.tensor([[2.0, 3.0]])
    xy, wh = decode_cell_boxes(raw, anchors, 2.0, False, max_log_wh=6.0)
    assert xy.tolist() == [[0.5, 0.5]]  # sigmoid(0) * 2 - 0.5
    assert wh[0].tolist() == pytest.approx([2.0 * math.exp(6.0), 3.0 * math.exp(-1.0)])
    _, wh_free = decode_cell_boxes(raw, anchors, 2.0, True, max_log_wh=6.0)
    assert wh_free[0].tolist() == pytest.approx([4 * 50.0**2 * 2.0, 4 * 1.0 * 3.0])
