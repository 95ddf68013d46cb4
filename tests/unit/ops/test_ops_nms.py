"""NMS: hand cases, class awareness, and a brute-force greedy reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from yolo_slim.errors import YoloSlimError
from yolo_slim.ops.boxes import box_iou, xywh_to_xyxy
from yolo_slim.ops.nms import nms_numpy, non_max_suppression


def _row(cx: float, cy: float, w: float, h: float, obj: float, *cls: float) -> list[float]:
    return [cx, cy, w, h, obj, *cls]


def test_hand_case_scores_suppression_and_order() -> None:
    pred = torch.tensor(
        [
            [
                _row(50, 50, 20, 20, 0.9, 0.2, 0.8),  # class 1, score 0.72
                _row(52, 50, 20, 20, 0.8, 0.1, 0.9),  # class 1, score 0.72*... overlaps the first
                _row(150, 150, 10, 10, 0.5, 1.0, 0.0),  # class 0, score 0.5, alone
                _row(300, 300, 10, 10, 0.0005, 1.0, 0.0),  # objectness below conf_thres
            ]
        ]
    )
    (out,) = non_max_suppression(pred, conf_thres=0.001, iou_thres=0.5)
    assert out.shape == (2, 6)
    expected = torch.tensor([[40.0, 40.0, 60.0, 60.0, 0.72, 1.0], [145.0, 145.0, 155.0, 155.0, 0.5, 0.0]])
    assert torch.allclose(out, expected, atol=1e-5)
    # max_det and conf_thres
    assert non_max_suppression(pred, iou_thres=0.5, max_det=1)[0].shape == (1, 6)
    assert non_max_suppression(pred, conf_thres=0.6)[0][:, 4].tolist() == pytest.approx([0.72])


def test_class_aware_versus_agnostic() -> None:
    # Same box, two classes: both survive class-aware NMS, one survives agnostic NMS.
    pred = torch.tensor([[_row(50, 50, 40, 40, 0.9, 0.9, 0.1), _row(50, 50, 40, 40, 0.8, 0.1, 0.9)]])
    aware = non_max_suppression(pred, iou_thres=0.3)[0]
    assert aware[:, 5].tolist() == [0.0, 1.0] and aware[:, 4].tolist() == pytest.approx([0.81, 0.72])
    agnostic = non_max_suppression(pred, iou_thres=0.3, agnostic=True)[0]
    assert agnostic[:, 5].tolist() == [0.0]

    # A box sticking out past the top-left corner: OpenCV's batched NMS alone
    # would shift classes into each other here.
    corner = torch.tensor([[_row(0, 0, 200, 200, 0.9, 0.0, 1.0), _row(50, 50, 100, 100, 0.8, 1.0, 0.0)]])
    assert non_max_suppression(corner, iou_thres=0.1)[0].shape[0] == 2
    assert non_max_suppression(corner, iou_thres=0.1, agnostic=True)[0].shape[0] == 1


def test_multi_label_emits_one_row_per_passing_class() -> None:
    pred = torch.tensor([[_row(50, 50, 20, 20, 1.0, 0.6, 0.5, 0.0005)]])
    assert non_max_suppression(pred, conf_thres=0.001)[0][:, 5].tolist() == [0.0]
    out = non_max_suppression(pred, conf_thres=0.001, multi_label=True)[0]
    assert out[:, 5].tolist() == [0.0, 1.0] and out[:, 4].tolist() == pytest.approx([0.6, 0.5])


def _greedy_reference(boxes: torch.Tensor, scores: torch.Tensor, iou_thres: float) -> list[int]:
    order = scores.argsort(descending=True).tolist()
    iou = box_iou(boxes, boxes)
    keep: list[int] = []
    for i in order:
        if all(iou[i, j] <= iou_thres for j in keep):
            keep.append(i)
    return keep


def test_random_against_greedy_reference_batch_and_numpy() -> None:
    gen = torch.Generator().manual_seed(0)
    n, c = 300, 3
    pred = torch.cat(
        (
            torch.rand(2, n, 2, generator=gen) * 400,
            torch.rand(2, n, 2, generator=gen) * 80 + 5,
            torch.rand(2, n, 1, generator=gen),
            torch.rand(2, n, c, generator=gen),
        ),
        dim=2,
    )
    outs = non_max_suppression(pred, conf_thres=0.05, iou_thres=0.45, max_det=1000)
    assert len(outs) == 2
    for image_pred, out in zip(pred, outs):
        scores, cls = (image_pred[:, 4:5] * image_pred[:, 5:]).max(1)
        expected_rows = []
        for k in range(c):
            idx = ((cls == k) & (scores > 0.05) & (image_pred[:, 4] > 0.05)).nonzero().flatten()
            keep = _greedy_reference(xywh_to_xyxy(image_pred[idx, :4]), scores[idx], 0.45)
            expected_rows += idx[keep].tolist()
        expected = sorted(scores[expected_rows].tolist(), reverse=True)
        assert out[:, 4].tolist() == pytest.approx(expected)
        assert (out[:-1, 4] >= out[1:, 4]).all()
    np_out = nms_numpy(pred[1].numpy(), conf_thres=0.05, iou_thres=0.45, max_det=1000)
    assert isinstance(np_out, np.ndarray) and np.allclose(np_out, outs[1].numpy())


def test_empty_and_bad_inputs() -> None:
    assert [o.shape for o in non_max_suppression(torch.zeros(2, 0, 7))] == [(0, 6), (0, 6)]
    assert non_max_suppression(torch.zeros(1, 5, 7))[0].shape == (0, 6)
    assert nms_numpy(np.zeros((0, 6), dtype=np.float32)).shape == (0, 6)
    with pytest.raises(YoloSlimError, match=r"Tensor\[B, N, 5 \+ C\]"):
        non_max_suppression(torch.zeros(5, 7))
    with pytest.raises(YoloSlimError, match="iou_thres"):
        non_max_suppression(torch.zeros(1, 5, 7), iou_thres=1.5)
