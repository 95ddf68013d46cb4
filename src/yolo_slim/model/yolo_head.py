"""The `[yolo]` head: reshaping a head map and decoding it as darknet does.

The decode itself (darknet `yolo_layer.c`'s formulas) is `yolo_slim.ops.decode`; the
head holds a layer's anchors (input pixels), ``scale_x_y`` and ``new_coords``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from yolo_slim.darknet.sections import YoloSection
from yolo_slim.ops.decode import decode_head


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
        """Decode a raw head map (`yolo_slim.ops.decode.decode_head`).

        Args:
            x: Tensor[B, A*(5+C), H, W], the head's input.
            input_hw: network input (height, width) in pixels.

        Returns:
            Tensor[B, A*H*W, 5+C], float32 whatever `x`'s dtype (under bf16 autocast
            the head map is bf16, whose 8-bit mantissa would put a box centre 1 px off
            at 256 px): cx, cy, w, h in input pixels, objectness, class probabilities.
        """
        return decode_head(self.reshape(x).float(), self.anchors, input_hw, self.scale_x_y, self.new_coords)
