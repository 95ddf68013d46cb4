"""The YOLO box decode (darknet `yolo_layer.c`), the one place it is written.

For a raw prediction (tx, ty, tw, th, to, tc...) at grid cell (gx, gy) of a head with
stride s (input pixels per cell) and anchor (aw, ah), with k = ``scale_x_y``:

- classic:    x = (sigmoid(tx) * k - (k - 1) / 2 + gx) * s,  w = exp(tw) * aw,
              objectness and classes = sigmoid
- new_coords: x = (tx * k - (k - 1) / 2 + gx) * s,           w = 4 * tw**2 * aw,
              the conv's own logistic activation already squashed every value

`decode_cell_boxes` is the part the loss needs (boxes relative to their cell, in the
anchors' units); `decode_head` adds the grid and the stride for a whole head map and is
what the model's eval-mode forward (and so validation, export and detection) returns.
The grid is built from the map's shape on every call, never cached, so exported graphs
keep a free height and width.
"""

from __future__ import annotations

import torch
from torch import Tensor


def decode_cell_boxes(
    raw: Tensor, anchors: Tensor, scale_x_y: float, new_coords: bool, *, max_log_wh: float | None = None
) -> tuple[Tensor, Tensor]:
    """Decode raw box values relative to their grid cell.

    Args:
        raw: Tensor[..., >= 4] whose first four values are tx, ty, tw, th.
        anchors: Tensor broadcastable to ``raw[..., :2]``: anchor (w, h), in the unit
            the widths should come out in (grid cells for the loss, pixels for a head).
        scale_x_y: darknet's ``scale_x_y`` (k).
        new_coords: the head's ``new_coords`` (values already passed a logistic).
        max_log_wh: clamp ``tw, th`` from above before ``exp`` (classic heads only); None
            leaves them as they are.

    Returns:
        ``(xy, wh)``, each Tensor[..., 2]: the centre in cells from the cell's corner,
        and the width and height in the anchors' unit.
    """
    k = scale_x_y
    if new_coords:
        xy = raw[..., :2]
        wh = 4.0 * raw[..., 2:4] ** 2 * anchors
    else:
        xy = raw[..., :2].sigmoid()
        twh = raw[..., 2:4] if max_log_wh is None else raw[..., 2:4].clamp(max=max_log_wh)
        wh = torch.exp(twh) * anchors
    return xy * k - (k - 1.0) / 2.0, wh


def decode_head(p: Tensor, anchors: Tensor, input_hw: tuple[int, int], scale_x_y: float, new_coords: bool) -> Tensor:
    """Decode one head's reshaped map into boxes in input pixels.

    Args:
        p: Tensor[B, A, H, W, 5+C] raw values (`YoloHead.reshape`'s layout).
        anchors: Tensor[A, 2] anchor (w, h) in input pixels.
        input_hw: network input (height, width) in pixels; the strides are
            ``input_hw / (H, W)``.
        scale_x_y: darknet's ``scale_x_y``.
        new_coords: the head's ``new_coords``.

    Returns:
        Tensor[B, A*H*W, 5+C]: cx, cy, w, h in input pixels, objectness, class
        probabilities; same dtype and device as ``p``.
    """
    _, na, h, w, _ = p.shape
    stride_y = input_hw[0] / h
    stride_x = input_hw[1] / w
    gy, gx = torch.meshgrid(
        torch.arange(h, device=p.device, dtype=p.dtype),
        torch.arange(w, device=p.device, dtype=p.dtype),
        indexing="ij",
    )
    grid = torch.stack((gx, gy), -1)  # (H, W, 2)
    xy, wh = decode_cell_boxes(p, anchors.to(p.dtype).view(1, na, 1, 1, 2), scale_x_y, new_coords)
    rest = p[..., 4:] if new_coords else p[..., 4:].sigmoid()
    xy = (xy + grid) * torch.tensor([stride_x, stride_y], dtype=p.dtype, device=p.device)
    out = torch.cat((xy, wh, rest), -1)
    return out.view(out.shape[0], -1, out.shape[-1])
