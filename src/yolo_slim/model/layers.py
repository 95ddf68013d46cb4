"""PyTorch modules for the six darknet layer types.

Attribute names are stable (`conv`, `bn`, `act`) so state dicts stay compatible
across versions. Every module follows darknet's arithmetic: "same" padding of
`size // 2`, leaky slope 0.1, -inf padded max pooling split `padding // 2` before
and the rest after, nearest upsampling. Mish is `torch.nn.Mish` (no CUDA extension).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from yolo_slim.darknet.sections import ConvSection, MaxPoolSection, RouteSection, ShortcutSection, UpsampleSection

BN_EPS = 1e-5  # darknet's and torch's BatchNorm epsilon
BN_MOMENTUM = 0.03


def make_activation(name: str) -> nn.Module:
    """The torch module for a darknet activation name."""
    if name == "leaky":
        return nn.LeakyReLU(0.1)
    if name == "relu":
        return nn.ReLU()
    if name == "mish":
        return nn.Mish()
    if name == "swish":
        return nn.SiLU()
    if name == "logistic":
        return nn.Sigmoid()
    if name == "linear":
        return nn.Identity()
    raise ValueError(f"unsupported activation {name!r}")


class ConvBlock(nn.Module):
    """`[convolutional]`: Conv2d (bias only without BN), optional BatchNorm2d, activation."""

    def __init__(self, section: ConvSection, in_channels: int) -> None:
        super().__init__()
        bn = bool(section.batch_normalize)
        self.conv = nn.Conv2d(
            in_channels,
            section.filters,
            section.size,
            section.stride,
            section.padding_px,
            groups=section.groups,
            bias=not bn,
        )
        self.bn = nn.BatchNorm2d(section.filters, eps=BN_EPS, momentum=BN_MOMENTUM) if bn else None
        self.act = make_activation(section.activation)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x)


class MaxPool(nn.Module):
    """`[maxpool]` with darknet's asymmetric -inf padding."""

    def __init__(self, section: MaxPoolSection) -> None:
        super().__init__()
        self.size, self.stride = section.size, section.stride
        before = section.padding // 2
        self.pad = (before, section.padding - before, before, section.padding - before)

    def forward(self, x: Tensor) -> Tensor:
        if any(self.pad):
            x = F.pad(x, self.pad, value=float("-inf"))
        return F.max_pool2d(x, self.size, self.stride)


class Upsample(nn.Module):
    """`[upsample]`: nearest-neighbour by an integer factor."""

    def __init__(self, section: UpsampleSection) -> None:
        super().__init__()
        self.stride = section.stride

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            return x
        return F.interpolate(x, scale_factor=float(self.stride), mode="nearest")


class Route(nn.Module):
    """`[route]`: concatenate inputs along channels, each sliced to its group."""

    def __init__(self, section: RouteSection) -> None:
        super().__init__()
        self.sources = section.sources
        self.groups, self.group_id = section.groups, section.group_id

    def forward(self, inputs: list[Tensor]) -> Tensor:
        if self.groups > 1:
            parts = []
            for x in inputs:
                size = x.shape[1] // self.groups
                parts.append(x[:, self.group_id * size : (self.group_id + 1) * size])
            inputs = parts
        return inputs[0] if len(inputs) == 1 else torch.cat(inputs, 1)


class Shortcut(nn.Module):
    """`[shortcut]`: sum of the previous layer and the `from` layers, then activation."""

    def __init__(self, section: ShortcutSection) -> None:
        super().__init__()
        self.sources = section.sources
        self.act = make_activation(section.activation)

    def forward(self, inputs: list[Tensor]) -> Tensor:
        out = inputs[0]
        for x in inputs[1:]:
            out = out + x
        return self.act(out)
