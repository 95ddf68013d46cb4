"""BatchNorm epsilon: darknet and torch use 1e-5, OpenCV's darknet importer 1e-6.

With small running variances that difference shows; setting ours to 1e-6 removes it,
which proves it is the only difference between the two implementations.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from test_model_darknet import calibrated_weights, opencv_net
from yolo_slim.darknet.cfg import parse_cfg_text, write_cfg
from yolo_slim.darknet.zoo import zoo_cfg_text
from yolo_slim.model import Darknet


def _relative_error(model: Darknet, net, x: np.ndarray) -> float:
    heads = model.head_ids
    with torch.no_grad():
        ours = [m.numpy() for m in model.forward_maps(torch.from_numpy(x))]
    net.setInput(x)
    theirs = net.forward([f"conv_{i - 1}" for i in heads])
    return max(float(np.abs(a - b).max()) / max(1.0, float(np.abs(b).max())) for a, b in zip(ours, theirs))


def test_epsilon_is_the_only_difference_from_opencv(tmp_path: Path, random_weights) -> None:
    cfg = parse_cfg_text(zoo_cfg_text("yolov4-tiny", classes=3, img_size=128))
    model = Darknet(cfg)
    model.load_darknet_weights(calibrated_weights(cfg, tmp_path / "calibrated.weights", random_weights))
    with torch.no_grad():  # the same function, with running variances near epsilon
        for block in model.conv_blocks().values():
            if block.bn is not None:
                k = 3e-4 / float(block.bn.running_var.mean().sqrt())
                block.conv.weight *= k
                block.bn.running_mean *= k
                block.bn.running_var *= k * k
    weights = model.save_darknet_weights(tmp_path / "small_var.weights")
    net = opencv_net(write_cfg(cfg, tmp_path / "model.cfg"), weights)
    x = np.random.default_rng(4).uniform(0.0, 1.0, (1, 3, 128, 128)).astype(np.float32)

    with_darknet_eps = _relative_error(model.eval(), net, x)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eps = 1e-6
    with_opencv_eps = _relative_error(model, net, x)
    assert with_darknet_eps > 1e-3, with_darknet_eps
    assert with_opencv_eps < 5e-5, with_opencv_eps
    assert with_opencv_eps < with_darknet_eps / 50
