"""Layer output shapes (`yolo_slim.darknet.shapes`), by darknet's size rules.

Expected values are worked out by hand from darknet's formulas
(conv: (in + 2p - k) // s + 1; maxpool: (in + padding - k) // s + 1) and from the
published head grids (13/26/52 at 416 for YOLOv3, 76/38/19 at 608 for YOLOv4).
The model tests check the same shapes against OpenCV.
"""

from __future__ import annotations

import pytest

from yolo_slim.darknet.cfg import parse_cfg_text
from yolo_slim.darknet.shapes import Shape, conv_out, image_shape, infer_shapes, maxpool_out
from yolo_slim.darknet.zoo import zoo_cfg_text
from yolo_slim.errors import CfgError


def head_grids(name: str, hw: tuple[int, int] | int | None = None) -> list[tuple[int, int]]:
    cfg = parse_cfg_text(zoo_cfg_text(name))
    shapes = infer_shapes(cfg, hw)
    return [(shapes[i].h, shapes[i].w) for i in cfg.yolo_ids()]


@pytest.mark.parametrize(
    ("name", "hw", "grids"),
    [
        ("yolov3", 416, [(13, 13), (26, 26), (52, 52)]),
        ("yolov3-spp", 608, [(19, 19), (38, 38), (76, 76)]),
        ("yolov3-tiny", 416, [(13, 13), (26, 26)]),
        ("yolov4", None, [(76, 76), (38, 38), (19, 19)]),  # heads at strides 8, 16, 32
        ("yolov4-tiny", 416, [(13, 13), (26, 26)]),
        ("yolov4-tiny-3l", 416, [(13, 13), (26, 26), (52, 52)]),
        ("yolov4", (384, 640), [(48, 80), (24, 40), (12, 20)]),
    ],
)
def test_head_grids(name: str, hw: tuple[int, int] | int | None, grids: list[tuple[int, int]]) -> None:
    assert head_grids(name, hw) == grids


def test_yolov3_tiny_stride1_pool_keeps_13x13() -> None:
    cfg = parse_cfg_text(zoo_cfg_text("yolov3-tiny"))
    shapes = infer_shapes(cfg, 416)
    assert cfg.layers[11].size == 2 and cfg.layers[11].stride == 1
    assert shapes[10] == shapes[11] == Shape(512, 13, 13)


def test_yolov4_tiny_split_route_takes_half() -> None:
    shapes = infer_shapes(parse_cfg_text(zoo_cfg_text("yolov4-tiny")), 416)
    assert shapes[2] == Shape(64, 104, 104)
    assert shapes[3] == Shape(32, 104, 104)  # [route] layers=-1 groups=2 group_id=1
    assert shapes[8] == Shape(128, 104, 104)  # concat of layer 2 (64) and the fuse conv (64)


def test_spp_concat_channels() -> None:
    cfg = parse_cfg_text(zoo_cfg_text("yolov4"))
    shapes = infer_shapes(cfg)
    spp = 113  # route of the three pools and their input
    assert cfg.layers[spp].sources == (112, 110, 108, 107)
    assert shapes[spp] == Shape(4 * 512, 19, 19)


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "expected"),
    [(416, 3, 2, 1, 208), (415, 3, 2, 1, 208), (13, 3, 1, 1, 13), (10, 1, 1, 0, 10), (7, 5, 1, 0, 3), (3, 3, 2, 1, 2)],
)
def test_conv_out(size: int, kernel: int, stride: int, padding: int, expected: int) -> None:
    assert conv_out(size, kernel, stride, padding) == expected


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "expected"),
    [(416, 2, 2, 1, 208), (13, 2, 1, 1, 13), (19, 5, 1, 4, 19), (19, 13, 1, 12, 19), (13, 2, 2, 1, 7), (13, 2, 2, 0, 6)],
)
def test_maxpool_out(size: int, kernel: int, stride: int, padding: int, expected: int) -> None:
    assert maxpool_out(size, kernel, stride, padding) == expected


def test_image_shape() -> None:
    cfg = parse_cfg_text(zoo_cfg_text("yolov4-tiny", img_size=(640, 320)))
    assert image_shape(cfg) == Shape(3, 320, 640)
    assert image_shape(cfg, 224) == Shape(3, 224, 224)
    assert image_shape(cfg, (96, 128)) == Shape(3, 96, 128)


def test_size_the_network_cannot_take() -> None:
    cfg = parse_cfg_text(zoo_cfg_text("yolov4"), source="yolov4.cfg")
    with pytest.raises(CfgError, match=r"yolov4.cfg: cannot build the network at 100x100:\n  yolov4.cfg:\d+: \[route\] \(layer \d+\) layers: input layer"):
        infer_shapes(cfg, 100)
    assert len(infer_shapes(cfg, 96)) == len(cfg)  # any multiple of 32 works
