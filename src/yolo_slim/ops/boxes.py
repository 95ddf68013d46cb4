"""Box format conversions and IoU variants as pure tensor functions.

All boxes are in pixels. ``xyxy`` is (x1, y1, x2, y2) with x2 >= x1 and
y2 >= y1; ``xywh`` is (centre x, centre y, width, height), the layout a YOLO
head decodes to. The IoU family follows Rezatofighi et al. 2019 (GIoU) and
Zheng et al. 2020 (DIoU, CIoU).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from yolo_slim.errors import YoloSlimError

IoUKind = Literal["iou", "giou", "diou", "ciou"]
_KINDS = ("iou", "giou", "diou", "ciou")


def _check_last_dim(boxes: Tensor, name: str) -> None:
    if boxes.ndim == 0 or boxes.shape[-1] != 4:
        raise YoloSlimError(f"{name}: expected a tensor of shape [..., 4], got {tuple(boxes.shape)}")


def xywh_to_xyxy(boxes: Tensor) -> Tensor:
    """Convert centre boxes to corner boxes.

    Args:
        boxes: Tensor[..., 4] of (cx, cy, w, h) in pixels.

    Returns:
        A new Tensor[..., 4] of (x1, y1, x2, y2), same dtype and device.
    """
    _check_last_dim(boxes, "xywh_to_xyxy")
    centre, size = boxes[..., :2], boxes[..., 2:]
    half = size / 2
    return torch.cat((centre - half, centre + half), dim=-1)


def xyxy_to_xywh(boxes: Tensor) -> Tensor:
    """Convert corner boxes to centre boxes.

    Args:
        boxes: Tensor[..., 4] of (x1, y1, x2, y2) in pixels.

    Returns:
        A new Tensor[..., 4] of (cx, cy, w, h), same dtype and device.
    """
    _check_last_dim(boxes, "xyxy_to_xywh")
    top_left, bottom_right = boxes[..., :2], boxes[..., 2:]
    return torch.cat(((top_left + bottom_right) / 2, bottom_right - top_left), dim=-1)


def box_area(boxes: Tensor) -> Tensor:
    """Area of corner boxes.

    Args:
        boxes: Tensor[..., 4] of (x1, y1, x2, y2) in pixels.

    Returns:
        Tensor[...] of areas in square pixels (0 for inverted boxes).
    """
    _check_last_dim(boxes, "box_area")
    wh = (boxes[..., 2:] - boxes[..., :2]).clamp(min=0)
    return wh[..., 0] * wh[..., 1]


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise IoU of two sets of corner boxes.

    Args:
        a: Tensor[N, 4] of (x1, y1, x2, y2).
        b: Tensor[M, 4] of (x1, y1, x2, y2).

    Returns:
        Tensor[N, M] of IoU in [0, 1]; 0 where the union is empty.
    """
    if a.ndim != 2 or b.ndim != 2:
        raise YoloSlimError(
            f"box_iou: expected Tensor[N, 4] and Tensor[M, 4], got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    _check_last_dim(a, "box_iou")
    _check_last_dim(b, "box_iou")
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (bottom_right - top_left).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(union.dtype).tiny), torch.zeros_like(union))


def bbox_iou(
    a: Tensor,
    b: Tensor,
    kind: IoUKind = "ciou",
    xywh: bool = True,
    eps: float = 1e-7,
) -> Tensor:
    """Elementwise IoU, GIoU, DIoU or CIoU of two broadcastable box tensors.

    Differentiable; used as the box regression term of the YOLO loss
    (loss = 1 - value). For CIoU the trade-off weight ``alpha`` is treated as a
    constant (no gradient), as in Zheng et al.'s reference implementation.

    Args:
        a: Tensor[..., 4] of boxes, broadcastable with ``b``.
        b: Tensor[..., 4] of boxes.
        kind: "iou" (in [0, 1]), "giou" (in [-1, 1]), "diou" or "ciou"
            (in [-1, 1]).
        xywh: True if boxes are (cx, cy, w, h), False if (x1, y1, x2, y2).
        eps: Small constant that keeps divisions finite, in the boxes' units.

    Returns:
        Tensor[...] (the broadcast shape without the last dim).
    """
    if kind not in _KINDS:
        raise YoloSlimError(f"bbox_iou: kind must be one of {_KINDS}, got {kind!r}")
    _check_last_dim(a, "bbox_iou")
    _check_last_dim(b, "bbox_iou")
    if xywh:
        a, b = xywh_to_xyxy(a), xywh_to_xyxy(b)
    ax1, ay1, ax2, ay2 = a.unbind(-1)
    bx1, by1, bx2, by2 = b.unbind(-1)
    aw, ah = ax2 - ax1, ay2 - ay1 + eps
    bw, bh = bx2 - bx1, by2 - by1 + eps

    inter = (torch.minimum(ax2, bx2) - torch.maximum(ax1, bx1)).clamp(min=0) * (
        torch.minimum(ay2, by2) - torch.maximum(ay1, by1)
    ).clamp(min=0)
    union = aw * ah + bw * bh - inter + eps
    iou = inter / union
    if kind == "iou":
        return iou

    # Smallest enclosing box.
    cw = torch.maximum(ax2, bx2) - torch.minimum(ax1, bx1)
    ch = torch.maximum(ay2, by2) - torch.minimum(ay1, by1)
    if kind == "giou":
        c_area = cw * ch + eps
        return iou - (c_area - union) / c_area

    c_diag2 = cw**2 + ch**2 + eps
    centre_dist2 = ((bx1 + bx2 - ax1 - ax2) ** 2 + (by1 + by2 - ay1 - ay2) ** 2) / 4
    diou = iou - centre_dist2 / c_diag2
    if kind == "diou":
        return diou

    v = (4 / math.pi**2) * (torch.atan(bw / bh) - torch.atan(aw / ah)) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return diou - alpha * v


def targets_to_pixels(targets: Tensor, batch_size: int, input_hw: tuple[int, int]) -> list[Tensor]:
    """Split normalised batch targets per image, as pixel corner boxes.

    Args:
        targets: Tensor[M, 6]: image index, class, cx, cy, w, h (normalised).
        batch_size: B.
        input_hw: network input (height, width), pixels.

    Returns:
        B tensors [M_i, 5]: class, x1, y1, x2, y2 in input pixels.
    """
    h, w = input_hw
    scale = torch.tensor([w, h, w, h], dtype=torch.float32, device=targets.device)
    boxes = xywh_to_xyxy(targets[:, 2:6].float() * scale)
    rows = torch.cat((targets[:, 1:2].float(), boxes), 1)
    return [rows[targets[:, 0] == i] for i in range(batch_size)]
