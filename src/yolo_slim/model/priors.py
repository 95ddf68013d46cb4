"""Prior-probability initialisation of the head convolutions for training from scratch.

A freshly initialised head predicts objectness and class logits near 0, i.e.
probability 0.5 in every cell. With thousands of cells and a few objects per image
the first few hundred optimizer steps then go into pushing the objectness of the
background down, and the box and class terms barely move. Starting the biases at
the expected frequencies (the focal-loss paper's prior initialisation, also used by
the YOLOv5-era trainers) removes that phase.

The priors: objectness ``p = objects_per_image / cells_of_the_head`` per anchor;
class ``p = 0.6 / (classes - 0.99)``. Darknet ``.weights`` or a checkpoint loaded
afterwards overwrite them.
"""

from __future__ import annotations

import math

import torch

from yolo_slim.darknet.shapes import infer_shapes
from yolo_slim.model.darknet import Darknet
from yolo_slim.model.layers import ConvBlock

__all__ = ["init_head_priors"]


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1.0 - 1e-6)
    return math.log(p / (1.0 - p))


@torch.no_grad()
def init_head_priors(model: Darknet, img_size: int, objects_per_image: float = 8.0) -> int:
    """Sets the bias of the convolution feeding each ``[yolo]`` head to the priors.

    Args:
        model: the network; heads whose input layer is not a biased
            ``[convolutional]`` with ``A * (5 + C)`` filters are left alone.
        img_size: training input side (pixels); sets the cell count of each head.
        objects_per_image: expected labelled objects per training image.

    Returns:
        The number of heads initialised.
    """
    shapes = infer_shapes(model.cfg, img_size)
    done = 0
    for head_id in model.head_ids:
        head = model.layers[head_id]
        conv_block = model.layers[head_id - 1]
        if not isinstance(conv_block, ConvBlock) or conv_block.conv.bias is None:
            continue
        fields = 5 + head.num_classes
        bias = conv_block.conv.bias
        if bias.numel() != head.num_anchors * fields:
            continue
        cells = shapes[head_id].h * shapes[head_id].w
        per_anchor = bias.view(head.num_anchors, fields)
        per_anchor[:, 4] = _logit(objects_per_image / cells)
        if head.num_classes > 1:
            per_anchor[:, 5:] = _logit(0.6 / (head.num_classes - 0.99))
        done += 1
    return done
