"""Shared helpers for the pruning tests: small seeded models and output comparison."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from yolo_slim.darknet.cfg import parse_cfg, parse_cfg_text
from yolo_slim.model import Darknet

IRREGULAR = Path(__file__).parent / "irregular.cfg"


def randomize(model: Darknet, seed: int = 0, kernels: bool = True) -> Darknet:
    """Seeded random BN parameters and statistics, conv biases and (optionally, slow
    for big models) kernels; eval mode."""
    gen = torch.Generator().manual_seed(seed)

    def uniform(t: torch.Tensor, low: float, high: float) -> None:
        t.copy_(torch.rand(t.shape, generator=gen) * (high - low) + low)

    with torch.no_grad():
        for block in model.conv_blocks().values():
            if kernels:
                uniform(block.conv.weight, -1.0, 1.0)
                block.conv.weight.mul_(1.5 / block.conv.weight[0].numel() ** 0.5)
            if block.bn is not None:
                uniform(block.bn.weight, 0.05, 1.0)
                uniform(block.bn.bias, -0.5, 0.5)
                uniform(block.bn.running_mean, -0.2, 0.2)
                uniform(block.bn.running_var, 0.5, 1.5)
            else:
                uniform(block.conv.bias, -0.2, 0.2)
    return model.eval()


def zoo_model(name: str, size: int, seed: int = 0) -> Darknet:
    """A zoo network with 2 classes at `size` px: default (seeded) kernels, random BN."""
    torch.manual_seed(seed)
    return randomize(Darknet.from_cfg(name, classes=2, img_size=size), seed, kernels=False)


def irregular_model(size: int | None = None, seed: int = 0) -> Darknet:
    cfg = parse_cfg(IRREGULAR)
    model = Darknet.from_cfg(cfg, img_size=size)
    return randomize(model, seed)


def text_model(text: str, seed: int = 0) -> Darknet:
    return randomize(Darknet(parse_cfg_text(text, "<test>")), seed)


def images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def maps(model: Darknet, x: torch.Tensor) -> list[torch.Tensor]:
    with torch.no_grad():
        return model.forward_maps(x)


def rel_error(reference: list[torch.Tensor], other: list[torch.Tensor]) -> float:
    """max |a - b| over all head maps, divided by max |a|."""
    diff = max(float((a - b).abs().max()) for a, b in zip(reference, other))
    scale = max(float(a.abs().max()) for a in reference)
    return diff / scale


def opencv_heads(cfg_path: Path, weights_path: Path, head_convs: list[int], x: torch.Tensor) -> list[np.ndarray]:
    """The outputs of convs `head_convs` (ids in the cfg) in OpenCV's darknet importer,
    for the images `x` (Float[N, C, H, W]); skips when OpenCV has no darknet importer."""
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2.dnn, "readNetFromDarknet"):
        pytest.skip("this OpenCV has no darknet importer (removed in 5.0)")
    net = cv2.dnn.readNetFromDarknet(str(cfg_path), str(weights_path))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setInput(x.numpy().astype(np.float32))
    return net.forward([f"conv_{i}" for i in head_convs])
