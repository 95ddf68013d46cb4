"""Whole-network cfg validation: heads that disagree, plausible bounds, the input-size
rule shared by every app, byte-order marks and binary files given as a cfg."""

from __future__ import annotations

from pathlib import Path

import pytest

from yolo_slim.darknet.cfg import load_cfg, parse_cfg, parse_cfg_text, write_cfg_text
from yolo_slim.darknet.shapes import check_input_size, layer_strides, max_stride
from yolo_slim.darknet.zoo import ZOO_NAMES, zoo_cfg_text
from yolo_slim.errors import CfgError

NET = "[net]\nwidth=64\nheight=64\nchannels=3\n"


def conv(filters: int = 8, size: int = 3, stride: int = 1) -> str:
    return f"[convolutional]\nbatch_normalize=1\nfilters={filters}\nsize={size}\nstride={stride}\npad=1\nactivation=leaky\n"


def head(classes: int, filters: int | None = None, mask: str = "0,1,2") -> str:
    n = len(mask.split(","))
    return (
        f"[convolutional]\nfilters={filters if filters is not None else n * (classes + 5)}\nsize=1\nstride=1\npad=1\nactivation=linear\n"
        f"[yolo]\nmask={mask}\nanchors=10,13, 16,30, 33,23\nclasses={classes}\nnum=3\n"
    )


def two_heads(first: int, second: int, second_filters: int | None = None) -> str:
    """Two heads at stride 2 and 4 with the given class counts."""
    return NET + conv(16, stride=2) + head(first) + "[route]\nlayers=-3\n" + conv(16, stride=2) + head(second, second_filters)


def write(tmp_path: Path, text: str, name: str = "net.cfg", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_heads_that_disagree_on_classes_are_refused(tmp_path: Path) -> None:
    """The issue's case: the second head says 3 classes with a matching conv (24 filters)."""
    text = two_heads(2, 3, second_filters=24)
    with pytest.raises(CfgError, match=r"net.cfg:38: \[yolo\] \(layer 6\) classes=3, but the first head \(layer 2, line 18\) has classes=2"):
        parse_cfg(write(tmp_path, text))
    parse_cfg(write(tmp_path, two_heads(3, 3)))  # agreeing heads are fine


def test_head_conv_filters_must_fit_the_head(tmp_path: Path) -> None:
    with pytest.raises(CfgError, match=r"the layer before this head has 20 filters; expected len\(mask\) \* \(classes \+ 5\) = 3 \* \(2 \+ 5\) = 21"):
        parse_cfg(write(tmp_path, NET + conv() + head(2, filters=20)))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("filters=8", "filters=2000000000"), r"net.cfg:7: \[convolutional\] filters: expected an integer <= 16,384 \(a plausible upper bound\), got 2,000,000,000"),
        (("size=3", "size=999"), r"net.cfg:8: \[convolutional\] size: expected an integer <= 64 \(a plausible upper bound\), got 999"),
        (("stride=1", "stride=4096"), r"net.cfg:9: \[convolutional\] stride: expected an integer <= 32 \(a plausible upper bound\), got 4,096"),
        (("pad=1", "pad=7"), r"net.cfg:10: \[convolutional\] pad: expected an integer <= 1 \(a plausible upper bound\), got 7"),
        (("width=64", "width=100000"), r"net.cfg:2: \[net\] width: expected an integer <= 8,192 \(a plausible upper bound\), got 100,000"),
        (("channels=3", "channels=1000"), r"net.cfg:4: \[net\] channels: expected an integer <= 64 \(a plausible upper bound\), got 1,000"),
        (("classes=2", "classes=1000000"), r"\[yolo\] classes: expected an integer <= 100,000 \(a plausible upper bound\), got 1,000,000"),
        (("filters=8", "filters=1_6"), r"filters: expected an integer, got '1_6'"),
        (("anchors=10,13, 16,30, 33,23", "anchors=10,nan, 16,30, 33,23"), r"anchors: expected comma-separated finite numbers, got '10,nan,16,30,33,23'"),
        (("anchors=10,13, 16,30, 33,23", "anchors=10,13, 16,30, 33,-23"), r"anchors: expected widths and heights in \(0, 65536\] pixels, got -23"),
        (("num=3", "num=3\nscale_x_y=0"), r"scale_x_y: expected a number in \(0, 16\], got 0"),
        (("num=3", "num=3\nscale_x_y=1e999"), r"scale_x_y: expected a finite number, got '1e999'"),
        (("mask=0,1,2", "mask=0,0,1"), r"mask: anchor indices \[0\] repeat"),
        (("mask=0,1,2", "mask=0,1,3"), r"mask: indices \[3\] out of range 0..2 \(anchors holds 3 pairs\)"),
    ],
)
def test_absurd_values_name_the_bound_and_the_line(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    text = NET + conv() + head(2)
    assert edit[0] in text
    with pytest.raises(CfgError, match=message):
        parse_cfg(write(tmp_path, text.replace(edit[0], edit[1], 1)))


def test_total_parameters_are_bounded(tmp_path: Path) -> None:
    text = NET + conv(16384, size=64) + conv(16384, size=64) + head(2)
    with pytest.raises(CfgError, match=r"net.cfg: the network has [\d,]+ parameters, more than the plausible 2,147,483,648"):
        parse_cfg(write(tmp_path, text))


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_zoo_networks_have_stride_32(name: str) -> None:
    cfg = parse_cfg_text(zoo_cfg_text(name))
    assert max_stride(cfg) == 32
    assert max(layer_strides(cfg)[i] for i in cfg.yolo_ids()) == 32


def test_largest_stride_comes_from_the_structure() -> None:
    cfg = parse_cfg_text(NET.replace("64", "72") + conv(8, stride=3) + conv(8, stride=2) + "[upsample]\nstride=2\n" + head(2))
    assert [str(f) for f in layer_strides(cfg)] == ["3", "6", "3", "3", "3"]
    assert max_stride(cfg) == 6


@pytest.mark.parametrize(("size", "message"), [
    (63, r"export.img_size=63: input size 63x63 is not a multiple of 32, the network's largest stride \(<zoo:yolov4-tiny>\); use e.g. 64x64"),
    ((416, 100), r"img=416x100: input size 416x100 is not a multiple of 32.*use e.g. 416x96"),
    (16, r"export.img_size=16: input size 16x16 is outside 32..8192 pixels"),
    (100_000, r"input size 100000x100000 is outside 32..8192 pixels"),
    ("64", r"expected an input size in pixels \(an integer\), got '64'"),
])
def test_one_input_size_rule(size, message: str) -> None:
    cfg = load_cfg("yolov4-tiny")
    key = "img" if isinstance(size, tuple) else "export.img_size"
    with pytest.raises(CfgError, match=message):
        check_input_size(cfg, size, key)
    check_input_size(cfg, 64, key)
    check_input_size(cfg, (416, 96), key)


def test_load_cfg_applies_the_size_rule_and_revalidates(tmp_path: Path) -> None:
    with pytest.raises(CfgError, match=r"img_size=63: input size 63x63 is not a multiple of 32"):
        load_cfg("yolov4-tiny", img_size=63)
    with pytest.raises(CfgError, match=r"net.cfg:1: \[net\] width=65 height=64: input size 64x65 is not a multiple of 2, the network's largest stride"):
        parse_cfg(write(tmp_path, NET.replace("width=64", "width=65") + conv(8, stride=2) + head(2)))
    assert load_cfg("yolov4-tiny", img_size=96).input_hw == (96, 96)


@pytest.mark.parametrize("name", ["net.cfg", "obj.cfg"])
def test_a_byte_order_mark_is_fine(tmp_path: Path, name: str) -> None:
    text = NET + conv() + head(2)
    plain = parse_cfg(write(tmp_path, text, "plain.cfg"))
    assert parse_cfg(write(tmp_path, text, name, encoding="utf-8-sig")) == plain
    assert parse_cfg_text("\ufeff" + text) == plain
    assert write_cfg_text(plain).startswith("[net]")


def test_binary_or_non_utf8_file_as_cfg(tmp_path: Path) -> None:
    weights = tmp_path / "model.weights"
    weights.write_bytes(b"\x00\x00\x00\x00\x02\x00\x00\x00" + bytes(range(256)))
    with pytest.raises(CfgError, match=r"model.weights: byte offset 136: expected a darknet cfg \(UTF-8 text\), got binary data \(a .weights file\?\)"):
        parse_cfg(weights)
    latin = write(tmp_path, NET + "# caf\u00e9\n" + conv() + head(2), encoding="latin-1")
    with pytest.raises(CfgError, match=r"net.cfg: byte offset \d+: expected a darknet cfg \(UTF-8 text\), got not UTF-8 text"):
        parse_cfg(latin)
