"""Model cost: parameters, BFLOPs and `.weights` size per layer, and measured latency.

The counts follow darknet's own rules, so they compare directly with what darknet
prints when it loads a cfg and with the tables published for pruned models:

- conv: 2 * out_h * out_w * filters * (in / groups) * k * k (a multiply-add is 2)
- maxpool: k * k * c * out_h * out_w
- shortcut: c * out_h * out_w * (number of `from` layers), darknet's `l.n`
- route, upsample, yolo: 0

Parameters are what training updates: conv weights plus the conv bias, or BN gamma
and beta (running statistics are buffers). The `.weights` size also counts the
running mean and variance and the header. Everything is computed from the cfg alone;
`measure_latency` is the one function that runs a model.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from yolo_slim.darknet.cfg import DarknetCfg
from yolo_slim.darknet.sections import ConvSection, LayerSection, MaxPoolSection, ShortcutSection, section_name
from yolo_slim.darknet.shapes import Shape, image_shape, infer_shapes
from yolo_slim.darknet.weights import weights_file_size
from yolo_slim.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class LayerCost:
    """The cost of one darknet layer.

    Attributes:
        index: darknet layer id.
        kind: section name (`"convolutional"`, `"route"`, ...).
        inputs: shapes of the layers it reads, in `DarknetCfg.inputs` order (the
            image's shape for layer 0).
        output: its output shape.
        params: trainable parameters.
        flops: floating-point operations by darknet's rule.
    """

    index: int
    kind: str
    inputs: tuple[Shape, ...]
    output: Shape
    params: int
    flops: int


@dataclass(frozen=True)
class ModelCost:
    """The cost of a network at one input size.

    Attributes:
        layers: per-layer costs, `layers[i]` for darknet layer i.
        input_hw: input (height, width) in pixels the FLOPs were counted at.
        weights_bytes: size of the network's darknet `.weights` file.
    """

    layers: tuple[LayerCost, ...]
    input_hw: tuple[int, int]
    weights_bytes: int

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def flops(self) -> int:
        return sum(layer.flops for layer in self.layers)

    @property
    def bflops(self) -> float:
        """Billions of FLOPs, the figure darknet prints as "Total BFLOPS"."""
        return self.flops / 1e9

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary; shapes become `[c, h, w]` lists."""
        return {
            "input_hw": list(self.input_hw),
            "params": self.params,
            "flops": self.flops,
            "bflops": self.bflops,
            "weights_bytes": self.weights_bytes,
            "layers": [
                {
                    "index": layer.index,
                    "kind": layer.kind,
                    "inputs": [list(shape) for shape in layer.inputs],
                    "output": list(layer.output),
                    "params": layer.params,
                    "flops": layer.flops,
                }
                for layer in self.layers
            ],
        }


def layer_params(section: LayerSection, in_channels: int) -> int:
    """Trainable parameters of one layer reading `in_channels` channels."""
    if not isinstance(section, ConvSection):
        return 0
    kernel = section.filters * (in_channels // section.groups) * section.size * section.size
    return kernel + (2 if section.batch_normalize else 1) * section.filters


def layer_flops(section: LayerSection, inputs: tuple[Shape, ...], output: Shape) -> int:
    """FLOPs of one layer by darknet's rule (see the module docstring)."""
    spatial = output.h * output.w
    if isinstance(section, ConvSection):
        return 2 * spatial * output.c * (inputs[0].c // section.groups) * section.size * section.size
    if isinstance(section, MaxPoolSection):
        return section.size * section.size * output.c * spatial
    if isinstance(section, ShortcutSection):
        return output.c * spatial * len(section.sources)
    return 0


def count_cost(cfg: DarknetCfg, hw: tuple[int, int] | int | None = None) -> ModelCost:
    """Parameters, FLOPs and `.weights` size of `cfg`.

    Args:
        cfg: the network.
        hw: input (height, width) in pixels, or one int for a square input; default
            the `[net]` size.

    Raises:
        CfgError: the network cannot be built at that size.
    """
    image = image_shape(cfg, hw)
    shapes = infer_shapes(cfg, (image.h, image.w))
    layers = []
    for index, section in enumerate(cfg.layers):
        inputs = tuple(image if src < 0 else shapes[src] for src in cfg.inputs(index))
        output = shapes[index]
        layers.append(
            LayerCost(
                index=index,
                kind=section_name(section),
                inputs=inputs,
                output=output,
                params=layer_params(section, inputs[0].c),
                flops=layer_flops(section, inputs, output),
            )
        )
    return ModelCost(tuple(layers), (image.h, image.w), weights_file_size(cfg))


# ----------------------------------------------------------------------------- latency


@dataclass(frozen=True)
class Latency:
    """Forward-pass wall time of a model, in milliseconds per batch.

    Attributes:
        mean_ms, median_ms, min_ms: statistics over the timed runs.
        runs: timed forward passes (after the warm-up ones).
        input_shape: (batch, channels, height, width) of the input.
        device: where it ran, e.g. `"cpu"` or `"cuda:0"`.
    """

    mean_ms: float
    median_ms: float
    min_ms: float
    runs: int
    input_shape: tuple[int, int, int, int]
    device: str


def measure_latency(
    model: nn.Module,
    input_shape: tuple[int, int, int, int],
    *,
    runs: int = 50,
    warmup: int = 10,
    device: str | None = None,
) -> Latency:
    """Time `model`'s forward pass on a zero input, in eval mode without gradients.

    Each run is timed on its own and, on CUDA, between two device synchronisations,
    so the figure is the time to a finished result. The model's device and its
    train/eval mode are restored afterwards.

    Args:
        model: the network (any `nn.Module` taking one image batch).
        input_shape: (batch, channels, height, width) of the input.
        runs: timed forward passes.
        warmup: untimed forward passes before them (allocator, cuDNN autotune).
        device: where to run; default the device of the model's first parameter.

    Raises:
        ConfigError: `runs < 1`, `warmup < 0` or a non-positive input dimension.
    """
    import torch

    if runs < 1 or warmup < 0:
        raise ConfigError(f"measure_latency: runs must be >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    if len(input_shape) != 4 or any(int(d) < 1 for d in input_shape):
        raise ConfigError(f"measure_latency: input_shape must be 4 positive sizes (B, C, H, W), got {tuple(input_shape)}")
    first = next(model.parameters(), None)
    home = first.device if first is not None else torch.device("cpu")
    target = torch.device(device) if device is not None else home
    was_training = model.training
    model.to(target).eval()
    sync = torch.cuda.synchronize if target.type == "cuda" else (lambda: None)
    x = torch.zeros(tuple(int(d) for d in input_shape), device=target)
    times: list[float] = []
    try:
        with torch.no_grad():
            for _ in range(warmup):
                model(x)
            sync()
            for _ in range(runs):
                start = time.perf_counter()
                model(x)
                sync()
                times.append((time.perf_counter() - start) * 1e3)
    finally:
        model.to(home).train(was_training)
    return Latency(
        mean_ms=statistics.fmean(times),
        median_ms=statistics.median(times),
        min_ms=min(times),
        runs=runs,
        input_shape=tuple(int(d) for d in input_shape),  # type: ignore[arg-type]
        device=str(target),
    )
