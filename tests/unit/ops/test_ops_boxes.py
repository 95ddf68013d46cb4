"""Box conversions and the IoU family against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from yolo_slim.errors import YoloSlimError
from yolo_slim.ops.boxes import bbox_iou, box_area, box_iou, xywh_to_xyxy, xyxy_to_xywh


def test_conversions_round_trip_and_values() -> None:
    xywh = torch.tensor([[10.0, 20.0, 4.0, 6.0], [0.0, 0.0, 2.0, 2.0]])
    xyxy = xywh_to_xyxy(xywh)
    assert torch.equal(xyxy, torch.tensor([[8.0, 17.0, 12.0, 23.0], [-1.0, -1.0, 1.0, 1.0]]))
    assert torch.equal(xyxy_to_xywh(xyxy), xywh)
    batch = torch.rand(2, 3, 5, 4) * 100
    assert torch.allclose(xyxy_to_xywh(xywh_to_xyxy(batch)), batch, atol=1e-4)
    assert torch.equal(box_area(xyxy), torch.tensor([24.0, 4.0]))


def test_conversions_reject_wrong_last_dim() -> None:
    with pytest.raises(YoloSlimError, match=r"\[\.\.\., 4\]"):
        xywh_to_xyxy(torch.zeros(3, 5))


def test_box_iou_hand_values() -> None:
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 6.0, 6.0]])
    expected = torch.tensor([[1 / 7, 1.0, 0.0], [0.0, 0.25, 0.0]])
    assert torch.allclose(box_iou(a, b), expected)
    assert box_iou(a, torch.zeros(0, 4)).shape == (2, 0)
    # Degenerate boxes give 0, not nan.
    assert box_iou(torch.zeros(1, 4), torch.zeros(1, 4)).item() == 0.0


def test_bbox_iou_kinds_hand_values() -> None:
    a = torch.tensor([0.0, 0.0, 2.0, 2.0])
    b = torch.tensor([1.0, 1.0, 3.0, 3.0])
    iou = 1 / 7
    assert bbox_iou(a, b, "iou", xywh=False).item() == pytest.approx(iou, abs=1e-6)
    assert bbox_iou(a, b, "giou", xywh=False).item() == pytest.approx(iou - 2 / 9, abs=1e-6)
    # centre distance^2 = 2, enclosing diagonal^2 = 18
    assert bbox_iou(a, b, "diou", xywh=False).item() == pytest.approx(iou - 2 / 18, abs=1e-6)
    # same aspect ratio: CIoU == DIoU
    assert bbox_iou(a, b, "ciou", xywh=False).item() == pytest.approx(iou - 2 / 18, abs=1e-6)


def test_ciou_aspect_term() -> None:
    a = torch.tensor([0.0, 0.0, 4.0, 2.0])  # 4 x 2
    b = torch.tensor([1.0, 0.0, 3.0, 2.0])  # 2 x 2, same centre, inside a
    v = 4 / math.pi**2 * (math.atan(1.0) - math.atan(2.0)) ** 2
    alpha = v / (1 - 0.5 + v)
    assert bbox_iou(a, b, "ciou", xywh=False).item() == pytest.approx(0.5 - alpha * v, abs=1e-5)
    # xywh input gives the same as xyxy input
    assert bbox_iou(xyxy_to_xywh(a), xyxy_to_xywh(b), "ciou").item() == pytest.approx(0.5 - alpha * v, abs=1e-5)


def test_bbox_iou_broadcasts_matches_box_iou_and_is_differentiable() -> None:
    torch.manual_seed(0)
    xy = torch.rand(6, 2) * 50
    a = torch.cat((xy, xy + torch.rand(6, 2) * 30 + 1), 1)
    xy = torch.rand(4, 2) * 50
    b = torch.cat((xy, xy + torch.rand(4, 2) * 30 + 1), 1)
    pairwise = bbox_iou(a[:, None], b[None], "iou", xywh=False)
    assert pairwise.shape == (6, 4)
    assert torch.allclose(pairwise, box_iou(a, b), atol=1e-5)

    pred = torch.tensor([[10.0, 10.0, 4.0, 3.0]], requires_grad=True)
    target = torch.tensor([[11.0, 9.0, 5.0, 5.0]])
    for kind in ("iou", "giou", "diou", "ciou"):
        (1 - bbox_iou(pred, target, kind)).sum().backward()
        assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
        pred.grad = None


def test_giou_limits() -> None:
    a = torch.tensor([0.0, 0.0, 1.0, 1.0])
    assert bbox_iou(a, a, "giou", xywh=False).item() == pytest.approx(1.0, abs=1e-6)
    far = torch.tensor([1000.0, 1000.0, 1001.0, 1001.0])
    assert bbox_iou(a, far, "giou", xywh=False).item() == pytest.approx(-1.0, abs=1e-5)


def test_bbox_iou_rejects_unknown_kind() -> None:
    with pytest.raises(YoloSlimError, match="kind must be one of"):
        bbox_iou(torch.zeros(4), torch.zeros(4), "siou")  # type: ignore[arg-type]
