"""The cost counter (`yolo_slim.metrics.cost`).

Oracles: darknet's published BFLOPs (the totals darknet prints when it loads a cfg,
as listed in the design notes and the shared cfg README), the original tutorial's
parameter count and `.weights` sizes, per-layer values worked out by hand, the
parameter count of the built `nn.Module`, and the size of a file actually written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from fixtures.cfg_texts import cfg_text, conv, maxpool, net, route, shortcut, upsample

from yolo_slim.darknet.cfg import load_cfg, parse_cfg_text
from yolo_slim.darknet.shapes import Shape
from yolo_slim.darknet.zoo import ZOO_NAMES
from yolo_slim.errors import CfgError, ConfigError
from yolo_slim.metrics.cost import count_cost, measure_latency
from yolo_slim.model import Darknet

# (network, classes, input size, darknet's total BFLOPs, decimals given)
DARKNET_BFLOPS = [
    ("yolov4", 80, 608, 128.459, 3),
    ("yolov4", 2, 416, 59.570, 3),
    ("yolov3-spp", 2, 416, 65.690, 3),
    ("yolov4-tiny", 80, 416, 6.910, 3),
    ("yolov3-tiny", 80, 416, 5.571, 3),
    ("yolov3", 80, 416, 65.88, 2),
    ("yolov3", 80, 608, 140.72, 2),
    ("yolov3-spp", 80, 416, 66.26, 2),
    ("yolov3-spp", 80, 608, 141.53, 2),
    ("yolov4", 80, 416, 60.14, 2),
    ("yolov4-tiny-3l", 80, 416, 8.31, 2),
]


@pytest.mark.parametrize(("name", "classes", "size", "bflops", "digits"), DARKNET_BFLOPS)
def test_zoo_bflops_match_darknet(name: str, classes: int, size: int, bflops: float, digits: int) -> None:
    assert round(count_cost(load_cfg(name, classes=classes), size).bflops, digits) == bflops


@pytest.mark.parametrize(("name", "classes", "size", "bflops", "digits"), DARKNET_BFLOPS)
def test_upstream_file_bflops_match_darknet(
    name: str, classes: int, size: int, bflops: float, digits: int, upstream_cfg: Callable[[str], Path]
) -> None:
    cfg = load_cfg(upstream_cfg(name), classes=classes, img_size=size)
    assert round(count_cost(cfg).bflops, digits) == bflops


def test_tutorial_params_and_weights_sizes() -> None:
    """The original tutorial's baselines (2 classes, 416): YOLOv3-SPP 62.5M params and a
    238M .weights file; YOLOv4 a 244M file (sizes in MiB, truncated as printed)."""
    spp = count_cost(load_cfg("yolov3-spp", classes=2, img_size=416))
    assert spp.params == 62_578_719
    assert int(spp.weights_bytes / 2**20) == 238
    assert int(count_cost(load_cfg("yolov4", classes=2, img_size=416)).weights_bytes / 2**20) == 244


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_params_equal_the_modules_parameters(name: str) -> None:
    cfg = load_cfg(name, classes=3)
    with torch.device("meta"):  # shapes only, no memory
        model = Darknet(cfg)
    assert count_cost(cfg).params == sum(p.numel() for p in model.parameters())
    per_layer = {i: sum(p.numel() for p in m.parameters()) for i, m in enumerate(model.layers)}
    assert [c.params for c in count_cost(cfg).layers] == [per_layer[i] for i in range(len(cfg))]


def test_weights_bytes_equal_a_written_file(random_weights: Callable[..., Path], fixture_path: Callable[[str], Path]) -> None:
    for cfg in (load_cfg("yolov4-tiny", classes=2), load_cfg(fixture_path("every_layer.cfg"))):
        assert count_cost(cfg).weights_bytes == random_weights(cfg).stat().st_size


HAND = cfg_text(
    net(32, 16),
    conv(8),
    conv(8, stride=2, activation="linear", bn=False, groups=2),
    maxpool(2, 2),
    conv(8, 1, pad=False),
    shortcut(-2, activation=None),
    route("-1,-3"),
    upsample(2),
)


def test_per_layer_by_hand() -> None:
    cost = count_cost(parse_cfg_text(HAND))
    rows = [(c.kind, c.inputs, c.output, c.params, c.flops) for c in cost.layers]
    assert rows == [
        # 2 * out_h * out_w * filters * in/groups * k * k; params: kernel + BN gamma, beta
        ("convolutional", (Shape(3, 16, 32),), Shape(8, 16, 32), 8 * 3 * 9 + 16, 2 * 16 * 32 * 8 * 3 * 9),
        # groups=2: each filter sees 4 channels; no BN: kernel + bias
        ("convolutional", (Shape(8, 16, 32),), Shape(8, 8, 16), 8 * 4 * 9 + 8, 2 * 8 * 16 * 8 * 4 * 9),
        # maxpool: k * k * c * out_h * out_w
        ("maxpool", (Shape(8, 8, 16),), Shape(8, 4, 8), 0, 2 * 2 * 8 * 4 * 8),
        ("convolutional", (Shape(8, 4, 8),), Shape(8, 4, 8), 8 * 8 + 16, 2 * 4 * 8 * 8 * 8),
        # shortcut: c * out_h * out_w per `from` layer
        ("shortcut", (Shape(8, 4, 8), Shape(8, 4, 8)), Shape(8, 4, 8), 0, 8 * 4 * 8),
        ("route", (Shape(8, 4, 8), Shape(8, 4, 8)), Shape(16, 4, 8), 0, 0),
        ("upsample", (Shape(16, 4, 8),), Shape(16, 8, 16), 0, 0),
    ]
    assert cost.params == sum(r[3] for r in rows)
    assert cost.flops == sum(r[4] for r in rows)
    assert cost.bflops == cost.flops / 1e9
    assert cost.input_hw == (16, 32)


def test_flops_scale_with_the_input_size() -> None:
    cfg = load_cfg("yolov3-tiny")
    small, large = count_cost(cfg, 320), count_cost(cfg, (640, 640))
    assert large.flops == 4 * small.flops
    assert large.params == small.params and large.weights_bytes == small.weights_bytes
    rect = count_cost(cfg, (320, 640))
    assert rect.input_hw == (320, 640) and rect.flops == 2 * small.flops


def test_size_the_network_cannot_take() -> None:
    with pytest.raises(CfgError, match=r"cannot build the network at 100x100"):
        count_cost(load_cfg("yolov4"), 100)


def test_to_dict_is_json() -> None:
    cost = count_cost(parse_cfg_text(HAND))
    data = json.loads(json.dumps(cost.to_dict()))
    assert data["params"] == cost.params and data["flops"] == cost.flops and data["input_hw"] == [16, 32]
    assert data["layers"][4] == {
        "index": 4, "kind": "shortcut", "inputs": [[8, 4, 8], [8, 4, 8]], "output": [8, 4, 8], "params": 0, "flops": 256,
    }


# --------------------------------------------------------------------------- latency


def test_measure_latency_on_cpu() -> None:
    model = Darknet.from_cfg("yolov4-tiny", classes=2, img_size=64).train()
    latency = measure_latency(model, (1, 3, 64, 64), runs=3, warmup=1)
    assert latency.runs == 3 and latency.input_shape == (1, 3, 64, 64) and latency.device == "cpu"
    assert 0 < latency.min_ms <= latency.median_ms and latency.min_ms <= latency.mean_ms
    assert model.training  # mode restored


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_measure_latency_on_cuda_restores_the_device() -> None:
    model = Darknet.from_cfg("yolov4-tiny", classes=2, img_size=64)
    latency = measure_latency(model, (2, 3, 64, 64), runs=5, warmup=2, device="cuda")
    assert latency.device.startswith("cuda") and latency.mean_ms > 0
    assert next(model.parameters()).device.type == "cpu"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_shape": (1, 3, 64, 64), "runs": 0}, r"runs must be >= 1 and warmup >= 0, got runs=0"),
        ({"input_shape": (1, 3, 64, 64), "warmup": -1}, r"warmup=-1"),
        ({"input_shape": (3, 64, 64)}, r"input_shape must be 4 positive sizes \(B, C, H, W\), got \(3, 64, 64\)"),
        ({"input_shape": (1, 3, 0, 64)}, r"got \(1, 3, 0, 64\)"),
    ],
)
def test_measure_latency_bad_options(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        measure_latency(torch.nn.Identity(), **kwargs)
