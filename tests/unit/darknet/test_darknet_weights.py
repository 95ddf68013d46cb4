"""Darknet `.weights` files (`yolo_slim.darknet.weights`).

The layout oracle is a file assembled here with `struct`, value by value, from the
published format (int32 major, minor, revision; int64 or int32 seen; per conv: BN
beta, gamma, mean, var or the bias, then the kernel); OpenCV reading our files is
checked in the model tests.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from yolo_slim.darknet.cfg import parse_cfg_text
from yolo_slim.darknet.weights import (
    WeightsHeader,
    conv_layout,
    read_darknet_weights,
    weights_file_size,
    write_darknet_weights,
)
from yolo_slim.darknet.zoo import zoo_cfg_text
from yolo_slim.errors import WeightsError

# conv 0: 3 -> 2 channels, 3x3, BN; conv 1: 2 -> 4 channels, 1x1, grouped by 2, bias.
SMALL = """[net]
width=8
height=8
channels=3
[convolutional]
batch_normalize=1
filters=2
size=3
stride=1
pad=1
activation=leaky
[maxpool]
size=2
stride=2
[convolutional]
filters=4
size=1
groups=2
activation=linear
"""


def small_values() -> tuple[dict[int, dict[str, np.ndarray]], list[float]]:
    """Distinct values for every stored float, and the same values in file order."""
    counter = iter(range(1, 10_000))

    def take(*shape: int) -> np.ndarray:
        n = int(np.prod(shape))
        return np.array([next(counter) / 8 for _ in range(n)], dtype=np.float32).reshape(shape)

    c0 = {"beta": take(2), "gamma": take(2), "running_mean": take(2), "running_var": take(2), "weight": take(2, 3, 3, 3)}
    c2 = {"bias": take(4), "weight": take(4, 1, 1, 1)}
    order = [c0["beta"], c0["gamma"], c0["running_mean"], c0["running_var"], c0["weight"], c2["bias"], c2["weight"]]
    return {0: c0, 2: c2}, [float(v) for a in order for v in a.ravel()]


def hand_made(values: list[float], major: int = 0, minor: int = 2, revision: int = 5, seen: int = 12345) -> bytes:
    seen_fmt = "<q" if major * 10 + minor >= 2 else "<i"
    return struct.pack("<3i", major, minor, revision) + struct.pack(seen_fmt, seen) + struct.pack(f"<{len(values)}f", *values)


def test_layout_of_a_small_cfg() -> None:
    layout = conv_layout(parse_cfg_text(SMALL))
    assert [(r.layer, r.filters, r.kernel_shape, r.batch_normalize, r.count) for r in layout] == [
        (0, 2, (2, 3, 3, 3), True, 4 * 2 + 54),
        (2, 4, (4, 1, 1, 1), False, 4 + 4),
    ]


def test_reads_a_hand_made_file(tmp_path: Path) -> None:
    cfg = parse_cfg_text(SMALL)
    arrays, values = small_values()
    path = tmp_path / "small.weights"
    path.write_bytes(hand_made(values))
    header, read = read_darknet_weights(path, cfg)
    assert header == WeightsHeader(0, 2, 5, 12345)
    assert read.keys() == arrays.keys()
    for layer, parts in arrays.items():
        assert read[layer].keys() == parts.keys()
        for name, value in parts.items():
            np.testing.assert_array_equal(read[layer][name], value, err_msg=f"layer {layer} {name}")


def test_writes_the_hand_made_bytes(tmp_path: Path) -> None:
    cfg = parse_cfg_text(SMALL)
    arrays, values = small_values()
    path = write_darknet_weights(tmp_path / "small.weights", cfg, arrays, WeightsHeader(0, 2, 5, 12345))
    assert path.read_bytes() == hand_made(values)
    assert weights_file_size(cfg) == len(hand_made(values))


def test_old_header_has_32bit_seen(tmp_path: Path) -> None:
    cfg = parse_cfg_text(SMALL)
    arrays, values = small_values()
    path = tmp_path / "old.weights"
    path.write_bytes(hand_made(values, major=0, minor=1, revision=0, seen=777))
    header, read = read_darknet_weights(path, cfg)
    assert header == WeightsHeader(0, 1, 0, 777) and header.nbytes == 16
    np.testing.assert_array_equal(read[2]["bias"], arrays[2]["bias"])
    rewritten = write_darknet_weights(tmp_path / "again.weights", cfg, read, header)
    assert rewritten.read_bytes() == path.read_bytes()
    assert weights_file_size(cfg, header) == len(path.read_bytes())


@pytest.mark.parametrize("name", ["yolov4-tiny", "yolov3-tiny"])
def test_round_trip_zoo(name: str, tmp_path: Path, random_arrays: Callable[..., dict]) -> None:
    cfg = parse_cfg_text(zoo_cfg_text(name, classes=3))
    arrays = random_arrays(cfg, seed=1)
    path = write_darknet_weights(tmp_path / "m.weights", cfg, arrays)
    assert path.stat().st_size == weights_file_size(cfg)
    header, read = read_darknet_weights(path, cfg)
    assert header == WeightsHeader()
    assert read.keys() == arrays.keys() == set(cfg.conv_ids())
    for layer in arrays:
        for part, value in arrays[layer].items():
            np.testing.assert_array_equal(read[layer][part], value)


def test_cutoff_reads_a_backbone_file(tmp_path: Path, random_arrays: Callable[..., dict]) -> None:
    """darknet's `yolov4-tiny.conv.29`-style files hold only the first layers."""
    cfg = parse_cfg_text(zoo_cfg_text("yolov4-tiny"))
    arrays = random_arrays(cfg)
    full = write_darknet_weights(tmp_path / "full.weights", cfg, arrays).read_bytes()
    backbone = [r for r in conv_layout(cfg) if r.layer < 29]
    size = 20 + 4 * sum(r.count for r in backbone)
    path = tmp_path / "yolov4-tiny.conv.29"
    path.write_bytes(full[:size])
    _, read = read_darknet_weights(path, cfg, cutoff=29)
    assert sorted(read) == [r.layer for r in backbone]
    np.testing.assert_array_equal(read[28]["weight"], arrays[28]["weight"])
    _, read_from_full = read_darknet_weights(tmp_path / "full.weights", cfg, cutoff=29)
    assert sorted(read_from_full) == sorted(read)
    with pytest.raises(WeightsError, match=r"file too short"):
        read_darknet_weights(path, cfg)


# --------------------------------------------------------------------------- errors


def written(tmp_path: Path, cfg_text: str = SMALL) -> tuple[Path, bytes]:
    cfg = parse_cfg_text(cfg_text)
    arrays, _ = small_values()
    path = write_darknet_weights(tmp_path / "good.weights", cfg, arrays)
    return path, path.read_bytes()


def test_short_file(tmp_path: Path) -> None:
    _, data = written(tmp_path)
    path = tmp_path / "short.weights"
    path.write_bytes(data[:-4])
    with pytest.raises(WeightsError, match=rf"{path}: file too short: <memory> needs 70 float32 values after the 20-byte header, the file holds 69; were these weights made for another cfg or class count\?"):
        read_darknet_weights(path, parse_cfg_text(SMALL))


def test_floats_left_over(tmp_path: Path) -> None:
    _, data = written(tmp_path)
    path = tmp_path / "long.weights"
    path.write_bytes(data + b"\0" * 8)
    with pytest.raises(WeightsError, match=r"file has floats left over: <memory> needs 70 float32 values .* holds 72"):
        read_darknet_weights(path, parse_cfg_text(SMALL))


def test_weights_for_another_class_count(tmp_path: Path, random_weights: Callable[..., Path]) -> None:
    path = random_weights(parse_cfg_text(zoo_cfg_text("yolov3-tiny", classes=80)))
    with pytest.raises(WeightsError, match=r"has floats left over: .* needs 8,[0-9,]+ float32 values .* holds 8,[0-9,]+; were these weights made for another cfg or class count"):
        read_darknet_weights(path, parse_cfg_text(zoo_cfg_text("yolov3-tiny", classes=2)))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\0" * 10, r"10 bytes is too short for a darknet .weights header \(at least 16 bytes\)"),
        (struct.pack("<3i", 0, 2, 5) + b"\0" * 6, r"header of version 0.2 needs 20 bytes, the file has 18"),
        (struct.pack("<3iq", 1234, 5, 0, 0), r"header version 1234.5.0 is not a darknet .weights file"),
        (struct.pack("<3iq", 0, 2, 5, 0) + b"\0" * 6, r"body of 6 bytes is not a whole number of float32 values"),
    ],
)
def test_bad_bytes(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "bad.weights"
    path.write_bytes(data)
    with pytest.raises(WeightsError, match=message):
        read_darknet_weights(path, parse_cfg_text(SMALL))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"nope.weights: cannot read weights file: No such file"):
        read_darknet_weights(tmp_path / "nope.weights", parse_cfg_text(SMALL))


def test_write_checks_shapes_and_completeness(tmp_path: Path) -> None:
    cfg = parse_cfg_text(SMALL)
    arrays, _ = small_values()
    bad = {0: arrays[0], 2: {**arrays[2], "weight": np.zeros((4, 2, 1, 1), np.float32)}}
    with pytest.raises(WeightsError, match=r"layer 2 weight: shape \(4, 2, 1, 1\), expected \(4, 1, 1, 1\)"):
        write_darknet_weights(tmp_path / "x.weights", cfg, bad)
    with pytest.raises(WeightsError, match=r"no parameters given for conv layer 2 of <memory>"):
        write_darknet_weights(tmp_path / "x.weights", cfg, {0: arrays[0]})
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_write_is_atomic_over_an_existing_file(tmp_path: Path) -> None:
    path, first = written(tmp_path)
    cfg = parse_cfg_text(SMALL)
    arrays, _ = small_values()
    write_darknet_weights(path, cfg, arrays, WeightsHeader(seen=99))
    assert path.read_bytes()[:12] == first[:12] and path.read_bytes() != first
    assert [p.name for p in tmp_path.iterdir()] == ["good.weights"]
