"""YoloLoss against hand-computed values on one-head models with exact raw outputs."""

from __future__ import annotations

import math

import pytest
import torch
from fixtures.cfg_texts import cfg_text, conv, net, yolo

from yolo_slim.darknet.cfg import parse_cfg_text
from yolo_slim.errors import ConfigError
from yolo_slim.lit.loss import YoloLoss
from yolo_slim.model import Darknet
from yolo_slim.model.yolo_head import YoloHead


def one_head(scale_x_y: float = 1.0, new_coords: int = 0, anchors: str = "16,16, 32,64", classes: int = 2) -> YoloHead:
    """A 64 px net with a single stride-8 head of two anchors."""
    activation = "logistic" if new_coords else "linear"
    text = cfg_text(
        net(64),
        conv(8, stride=8),
        conv(2 * (5 + classes), 1, activation=activation, bn=False),
        yolo("0,1", anchors, classes, 2, scale_x_y=scale_x_y, new_coords=new_coords),
    )
    return Darknet(parse_cfg_text(text)).heads[0]


def raw(fill: float, classes: int = 2) -> torch.Tensor:
    return torch.full((1, 2, 8, 8, 5 + classes), fill, requires_grad=True)


# a target the size of anchor 0 (16 x 16 px) centred in cell (gx=3, gy=4) of the 8 x 8 grid
CENTRED = torch.tensor([[0.0, 1.0, 3.5 / 8, 4.5 / 8, 16 / 64, 16 / 64]])


def test_exact_prediction_has_zero_box_loss_and_ln2_objectness() -> None:
    head = one_head()
    loss = YoloLoss([head], box_gain=1.0, obj_gain=1.0, cls_gain=1.0, balance=[1.0])
    # raw 0 decodes to the cell centre and the anchor's size: the exact target box
    total, parts = loss([raw(0.0)], CENTRED, (64, 64))
    assert parts.box.item() == pytest.approx(0.0, abs=1e-6)
    assert parts.obj.item() == pytest.approx(math.log(2), abs=1e-6)  # BCE(logit 0, any target) = ln 2
    assert parts.cls.item() == pytest.approx(math.log(2), abs=1e-6)
    assert total.item() == pytest.approx(2 * math.log(2), abs=1e-6)


@pytest.mark.parametrize("scale", [1.05, 2.0])
def test_scale_x_y_decoding_matches_the_head(scale: float) -> None:
    # with k = scale_x_y the centre offset is sigmoid(t) * k - (k - 1) / 2; t = 0 still gives 0.5
    loss = YoloLoss([one_head(scale_x_y=scale)], balance=[1.0])
    _, parts = loss([raw(0.0)], CENTRED, (64, 64))
    assert parts.box.item() == pytest.approx(0.0, abs=1e-6)
    # offset 0.25 of a cell: sigmoid(t) = (0.25 + (k - 1) / 2) / k
    t = torch.tensor((0.25 + (scale - 1) / 2) / scale)
    p = raw(0.0).detach().clone()
    p[0, 0, 4, 3, 0] = torch.log(t / (1 - t))
    p[0, 0, 4, 3, 1] = torch.log(t / (1 - t))
    target = torch.tensor([[0.0, 1.0, 3.25 / 8, 4.25 / 8, 16 / 64, 16 / 64]])
    _, parts = loss([p], target, (64, 64))
    assert parts.box.item() == pytest.approx(0.0, abs=1e-5)


def test_new_coords_heads_take_probabilities() -> None:
    head = one_head(scale_x_y=2.0, new_coords=1)
    loss = YoloLoss([head], box_gain=1.0, obj_gain=1.0, cls_gain=1.0, balance=[1.0])
    # new_coords: xy = 0.5 * 2 - 0.5 = 0.5, wh = 4 * 0.5^2 * anchor = anchor; probabilities 0.5
    _, parts = loss([raw(0.5)], CENTRED, (64, 64))
    assert parts.box.item() == pytest.approx(0.0, abs=1e-6)
    assert parts.obj.item() == pytest.approx(math.log(2), abs=1e-5)


def test_ratio_assignment_rejects_far_shapes_and_iou_mode_keeps_the_best_anchor() -> None:
    head = one_head(anchors="16,16, 20,20")
    huge = torch.tensor([[0.0, 0.0, 0.5, 0.5, 1.0, 1.0]])  # 64 px: 4x the largest anchor -> ratio 3.2 < 4
    tiny = torch.tensor([[0.0, 0.0, 0.5, 0.5, 2 / 64, 2 / 64]])  # 2 px: 8x smaller than 16
    ratio = YoloLoss([head], balance=[1.0])
    assert ratio([raw(0.0)], huge, (64, 64))[1].box.item() > 0
    assert ratio([raw(0.0)], tiny, (64, 64))[1].box.item() == 0.0  # no positive
    iou = YoloLoss([head], assign="iou", iou_t=0.5, balance=[1.0])
    assert iou([raw(0.0)], tiny, (64, 64))[1].box.item() > 0  # the best anchor is always assigned


def test_neighbour_cells_add_the_two_nearest_cells() -> None:
    head = one_head()
    target = torch.tensor([[0.0, 1.0, 3.3 / 8, 4.8 / 8, 16 / 64, 16 / 64]])
    plain = YoloLoss([head], balance=[1.0])
    near = YoloLoss([head], balance=[1.0], neighbour_cells=True)
    (b1, *_), = plain._assign([raw(0.0)], target, [8.0], (64, 64))
    (b3, _, gj, gi, tbox, *_), = near._assign([raw(0.0)], target, [8.0], (64, 64))
    assert len(b1) == 1 and len(b3) == 3
    assert sorted(zip(gi.tolist(), gj.tolist())) == [(2, 4), (3, 4), (3, 5)]
    assert tbox[:, 0].min().item() == pytest.approx(0.3, abs=1e-5) and tbox[:, 0].max().item() == pytest.approx(1.3, abs=1e-5)


def test_balance_follows_stride_order_and_gradients_are_finite() -> None:
    model = Darknet.from_cfg("yolov4-tiny", classes=2, img_size=96).train()
    outputs = model(torch.rand(2, 3, 96, 96))  # head order: stride 32 first, then stride 16
    loss = YoloLoss(model.heads)
    assert loss._balance([32.0, 16.0]) == [1.0, 4.0]
    targets = torch.tensor([[0, 0, 0.5, 0.5, 0.3, 0.4], [1, 1, 0.2, 0.7, 0.1, 0.05]])
    total, parts = loss(outputs, targets, (96, 96))
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    empty, _ = loss([o.detach() for o in outputs], torch.zeros(0, 6), (96, 96))
    assert torch.isfinite(empty)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"iou_kind": "diou"}, "iou_kind"),
        ({"assign": "nearest"}, "assign"),
        ({"anchor_t": 1.0}, "anchor_t"),
        ({"iou_t": 1.5}, "iou_t"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"balance": [1.0, 2.0]}, "balance has 2 values for 1 heads"),
    ],
)
def test_bad_options_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        YoloLoss([one_head()], **kwargs)
