"""The `[yolo]` head: reshaping a head map and decoding it as darknet does.

Decoding (darknet `yolo_layer.c`), for grid cell (gx, gy), stride s (input pixels per
cell, from feature-map sizes) and anchor (aw, ah) in input pixels:

- classic:    x = (sigmoid(tx) * k - (k - 1) / 2 + gx) * s,  w = exp(tw) * aw,
              objectness and classes = sigmoid
- new_coords: x = (tx * k - (k - 1) / 2 + gx) * s,           w = 4 * tw**2 * aw,
              the conv's own logistic activation already squashed every value

with k = scale_x_y. The grid is built from the input tensor's shape on every call,
never cached, so exported graphs keep a free height and width.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from yolo_slim.darknet.sections import YoloSection


class YoloHead(nn.Module):
    """`[yolo]`: no parameters; holds anchors and decodes a head map."""

    def __init__(self, section: YoloSection) -> None:
        super().__init__()
        self.num_anchors = len(section.mask)
        self.num_classes = section.classes
        self.scale_x_y = section.scale_x_y
        self.new_coords = bool(section.new_coords)
        anchors = torch.tensor(section.head_anchors, dtype=torch.float32)
        self.register_buffer("anchors", anchors, persistent=False)  # (A, 2) pixels

    def reshape(self, x: Tensor) -> Tensor:
        """(B, A*(5+C), H, W) -> (B, A, H, W, 5+C) raw values."""
        b, _, h, w = x.shape
        return x.view(b, self.num_anchors, self.num_classes + 5, h, w).permute(0, 1, 3, 4, 2).contiguous()

    def decode(self, x: Tensor, input_hw: tuple[int, int]) -> Tensor:
        """Decode a raw head map.

        Args:
            x: Tensor[B, A*(5+C), H, W], the head's input.
            input_hw: network input (height, width) in pixels.

        Returns:
            Tensor[B, A*H*W, 5+C]: cx, cy, w, h in input pixels, objectness, class
            probabilities.
        """
        p = self.reshape(x)
        _, _, h, w, _ = p.shape
        stride_y = input_hw[0] / h
        stride_x = input_hw[1] / w
        gy, gx = torch.meshgrid(
            torch.arange(h, device=x.device, dtype=p.dtype),
            torch.arange(w, device=x.device, dtype=p.dtype),
            indexing="ij",
        )
        grid = torch.stack((gx, gy), -1)  # (H, W, 2)
        anchors = self.anchors.to(p.dtype).view(1, self.num_anchors, 1, 1, 2)
        k = self.scale_x_y
        if self.new_coords:
            xy, wh, rest = p[..., :2], 4.0 * p[..., 2:4] ** 2 * anchors, p[..., 4:]
        else:
            xy, wh, rest = p[..., :2].sigmoid(), torch.exp(p[..., 2:4]) * anchors, p[..., 4:].sigmoid()
        xy = xy * k - (k - 1.0) / 2.0 + grid
        xy = xy * torch.tensor([stride_x, stride_y], dtype=p.dtype, device=p.device)
        out = torch.cat((xy, wh, rest), -1)
        return out.view(out.shape[0], -1, out.shape[-1])
