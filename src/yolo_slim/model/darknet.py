"""`Darknet`: an `nn.Module` built from a parsed darknet cfg and nothing else.

`model.layers[i]` is the module of darknet layer i, so forward hooks can read any
layer. In train mode `forward` returns the raw head maps for the loss; in eval mode
it returns decoded detections `(B, N, 5 + C)`: cx, cy, w, h in input pixels,
objectness and class probabilities.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from yolo_slim.darknet.cfg import DarknetCfg, load_cfg, write_cfg
from yolo_slim.darknet.sections import (
    ConvSection,
    LayerSection,
    MaxPoolSection,
    RouteSection,
    ShortcutSection,
    UpsampleSection,
    YoloSection,
    previous_layer,
)
from yolo_slim.darknet.shapes import infer_shapes, input_channels
from yolo_slim.darknet.weights import WeightsHeader, read_darknet_weights, write_darknet_weights
from yolo_slim.model.layers import ConvBlock, MaxPool, Route, Shortcut, Upsample
from yolo_slim.model.yolo_head import YoloHead


def _build_layer(section: LayerSection, in_channels: int) -> nn.Module:
    if isinstance(section, ConvSection):
        return ConvBlock(section, in_channels)
    if isinstance(section, MaxPoolSection):
        return MaxPool(section)
    if isinstance(section, UpsampleSection):
        return Upsample(section)
    if isinstance(section, RouteSection):
        return Route(section)
    if isinstance(section, ShortcutSection):
        return Shortcut(section)
    if isinstance(section, YoloSection):
        return YoloHead(section)
    raise TypeError(type(section))  # pragma: no cover


class Darknet(nn.Module):
    """A darknet network. Build with `Darknet(cfg)` or `Darknet.from_cfg(path_or_name)`.

    Attributes:
        cfg: the `DarknetCfg` this model was built from (the architecture).
        layers: `nn.ModuleList`, one module per darknet layer.
        header: the `.weights` header last loaded (written back on save).
    """

    def __init__(self, cfg: DarknetCfg) -> None:
        super().__init__()
        self.cfg = cfg
        shapes = infer_shapes(cfg)
        self.layers = nn.ModuleList()
        for i, section in enumerate(cfg.layers):
            self.layers.append(_build_layer(section, input_channels(cfg, shapes, i)))
        self.inputs = [cfg.inputs(i) for i in range(len(cfg.layers))]
        self.head_ids = cfg.yolo_ids()
        needed = {src for i, srcs in enumerate(self.inputs) for src in srcs if src != previous_layer(i)}
        self._keep = needed | {previous_layer(h) for h in self.head_ids}
        self.header = WeightsHeader()

    @classmethod
    def from_cfg(cls, cfg_or_name: str | os.PathLike | DarknetCfg, classes: int | None = None, img_size: int | None = None) -> "Darknet":
        """Build from a `.cfg` path, a zoo name (`yolov4`, ...) or a parsed cfg.

        Args:
            classes: rewrite the heads for this many classes.
            img_size: set the `[net]` input size (pixels, square).
        """
        return cls(load_cfg(cfg_or_name, classes, img_size))

    @property
    def heads(self) -> list[YoloHead]:
        return [self.layers[i] for i in self.head_ids]

    @property
    def num_classes(self) -> int:
        return self.cfg.num_classes

    def forward_maps(self, x: Tensor) -> list[Tensor]:
        """Run the network; the raw inputs of each `[yolo]` head, Tensor[B, A*(5+C), H, W]."""
        cache: dict[int, Tensor] = {}
        maps: list[Tensor] = []
        prev = x
        for i, layer in enumerate(self.layers):
            srcs = self.inputs[i]
            if isinstance(layer, (Route, Shortcut)):
                out = layer([prev if s == previous_layer(i) else cache[s] for s in srcs])
            elif isinstance(layer, YoloHead):
                maps.append(prev)
                out = prev
            else:
                out = layer(prev)
            if i in self._keep:
                cache[i] = out
            prev = out
        return maps

    def forward(self, x: Tensor) -> list[Tensor] | Tensor:
        """Args: x: Tensor[B, C, H, W] images in [0, 1].

        Returns:
            train mode: per head Tensor[B, A, H, W, 5+C] raw values;
            eval mode: Tensor[B, N, 5+C] decoded (cx, cy, w, h pixels, objectness, classes).
        """
        maps = self.forward_maps(x)
        if self.training:
            return self.raw_outputs(maps)
        return self.decode_maps(maps, (x.shape[2], x.shape[3]))

    def raw_outputs(self, maps: list[Tensor]) -> list[Tensor]:
        """The train-mode output of `forward_maps`'s maps: per head Tensor[B, A, H, W, 5+C] raw values."""
        return [h.reshape(m) for h, m in zip(self.heads, maps)]

    def decode_maps(self, maps: list[Tensor], input_hw: tuple[int, int]) -> Tensor:
        """The eval-mode output of `forward_maps`'s maps at input (height, width) pixels:
        Tensor[B, N, 5+C] (cx, cy, w, h pixels, objectness, classes), all heads concatenated."""
        return torch.cat([h.decode(m, input_hw) for h, m in zip(self.heads, maps)], 1)

    # ------------------------------------------------------------------ darknet files

    def to_cfg(self, path: str | os.PathLike) -> Path:
        """Write this model's cfg to `path` (atomically)."""
        return write_cfg(self.cfg, path)

    def conv_blocks(self) -> dict[int, ConvBlock]:
        """Layer id -> `ConvBlock`, in `.weights` order."""
        return {i: m for i, m in enumerate(self.layers) if isinstance(m, ConvBlock)}

    def load_darknet_weights(self, path: str | os.PathLike, cutoff: int | None = None) -> WeightsHeader:
        """Load a darknet `.weights` file (only layers `< cutoff` when given)."""
        header, arrays = read_darknet_weights(path, self.cfg, cutoff)
        self.load_arrays(arrays)
        self.header = header
        return header

    def load_arrays(self, arrays: dict[int, dict[str, np.ndarray]]) -> None:
        """Copy per-conv `.weights` arrays (`read_darknet_weights`'s layout, keyed by conv
        layer id) into the conv blocks they name; other blocks keep their values."""
        with torch.no_grad():
            for i, parts in arrays.items():
                block = self.layers[i]

                def put(target: Tensor, name: str) -> None:
                    target.copy_(torch.from_numpy(np.asarray(parts[name], dtype=np.float32)))

                put(block.conv.weight, "weight")
                if block.bn is not None:
                    put(block.bn.bias, "beta")
                    put(block.bn.weight, "gamma")
                    put(block.bn.running_mean, "running_mean")
                    put(block.bn.running_var, "running_var")
                else:
                    put(block.conv.bias, "bias")

    def darknet_arrays(self) -> dict[int, dict[str, np.ndarray]]:
        """Per conv layer id, the float32 arrays a `.weights` file stores."""
        arrays: dict[int, dict[str, np.ndarray]] = {}
        for i, block in self.conv_blocks().items():

            def arr(t: Tensor) -> np.ndarray:
                return t.detach().cpu().float().numpy()

            parts = {"weight": arr(block.conv.weight)}
            if block.bn is not None:
                parts.update(beta=arr(block.bn.bias), gamma=arr(block.bn.weight), running_mean=arr(block.bn.running_mean), running_var=arr(block.bn.running_var))
            else:
                parts["bias"] = arr(block.conv.bias)
            arrays[i] = parts
        return arrays

    def save_darknet_weights(self, path: str | os.PathLike, header: WeightsHeader | None = None) -> Path:
        """Write a darknet `.weights` file (atomically), keeping the loaded header."""
        return write_darknet_weights(path, self.cfg, self.darknet_arrays(), header or self.header)
