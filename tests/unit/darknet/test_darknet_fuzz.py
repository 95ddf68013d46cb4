"""Property-based fuzzing of the two darknet readers (hypothesis).

Properties: any text gives a parsed cfg or a `CfgError`, never another exception;
a cfg that parses also round-trips through the writer and builds a model that runs;
any bytes given as `.weights` give arrays or a `WeightsError`. Mutated valid cfgs
(lines deleted, duplicated, swapped, numbers changed) reach the deep checks that
random text never gets past.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yolo_slim.darknet.cfg import DarknetCfg, parse_cfg_text, write_cfg_text
from yolo_slim.darknet.shapes import infer_shapes
from yolo_slim.darknet.weights import WeightsHeader, read_darknet_weights, weights_file_size
from yolo_slim.darknet.zoo import zoo_cfg_text
from yolo_slim.errors import CfgError, WeightsError
from yolo_slim.model import Darknet

ROOT = Path(__file__).resolve().parents[3]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SEEDS = {
    "yolov4-tiny": zoo_cfg_text("yolov4-tiny", classes=2, img_size=64),
    "yolov3-tiny": zoo_cfg_text("yolov3-tiny", classes=1, img_size=64),
    "every_layer": (ROOT / "tests" / "fixtures" / "every_layer.cfg").read_text(encoding="utf-8"),
    "demo": (ROOT / "conf" / "model" / "cfg" / "yolov3-demo.cfg").read_text(encoding="utf-8"),
}
SECTIONS = ["[net]", "[convolutional]", "[conv]", "[shortcut]", "[route]", "[maxpool]", "[max]", "[upsample]", "[yolo]", "[dropout]", "[", "[]"]
KEYS = [
    "width", "height", "channels", "batch_normalize", "filters", "size", "stride", "pad", "padding", "groups", "activation",
    "from", "layers", "group_id", "mask", "anchors", "classes", "num", "scale_x_y", "new_coords", "jitter", "bogus",
]
NUMBER = st.one_of(
    st.integers(-3, 70),
    st.sampled_from([2**31, 2**63, -(2**31), 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
).map(str)
VALUE = st.one_of(NUMBER, st.lists(NUMBER, min_size=1, max_size=7).map(",".join), st.sampled_from(["leaky", "mish", "linear", "tanh", "", "1_0", "٣"]), st.text(max_size=8))
LINE = st.one_of(
    st.sampled_from(SECTIONS),
    st.tuples(st.sampled_from(KEYS), VALUE).map(lambda kv: f"{kv[0]}={kv[1]}"),
    st.text(max_size=20),
)


def parse_or_cfg_error(text: str) -> DarknetCfg | None:
    """The property: a `DarknetCfg` or a `CfgError`; any other exception fails the test."""
    try:
        return parse_cfg_text(text, "fuzz.cfg")
    except CfgError as err:
        assert str(err).strip(), "a CfgError needs a message"
        return None


def check_parsed(cfg: DarknetCfg) -> None:
    """A cfg that passed validation round-trips, and (when small) builds and runs."""
    text = write_cfg_text(cfg)
    again = parse_cfg_text(text, "rewritten.cfg")
    assert (again.layers, again.input_hw, again.net.channels) == (cfg.layers, cfg.input_hw, cfg.net.channels)
    assert write_cfg_text(again) == text
    shapes = infer_shapes(cfg)
    weights_file_size(cfg)
    small = cfg.net.height * cfg.net.width <= 128 * 128 and max(s.c * s.h * s.w for s in shapes) <= 2_000_000
    if small and weights_file_size(cfg) <= 2**20:  # every_layer.cfg and its kin: every layer type, cheap to run
        model = Darknet(cfg).eval()
        with torch.no_grad():
            out = model(torch.zeros(1, cfg.net.channels, *cfg.input_hw))
        assert out.shape[0] == 1 and out.shape[-1] == (cfg.num_classes + 5 if cfg.yolo_ids() else out.shape[-1])


@FUZZ
@given(st.text())
def test_any_text_parses_or_gives_a_cfg_error(text: str) -> None:
    parse_or_cfg_error(text)


@FUZZ
@given(st.lists(LINE, max_size=40))
def test_cfg_shaped_text_parses_or_gives_a_cfg_error(lines: list[str]) -> None:
    cfg = parse_or_cfg_error("\n".join(lines))
    if cfg is not None:
        check_parsed(cfg)


_NUMBER_RE = re.compile(r"-?\d+")


@st.composite
def mutated_cfg(draw: st.DrawFn) -> str:
    """A valid cfg with 1-4 random edits: delete, duplicate or swap lines, change a number."""
    lines = SEEDS[draw(st.sampled_from(sorted(SEEDS)))].splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["delete", "duplicate", "swap", "number", "number", "number"]))
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        else:
            numbers = list(_NUMBER_RE.finditer(lines[i]))
            if numbers:
                m = numbers[draw(st.integers(0, len(numbers) - 1))]
                new = draw(st.one_of(st.integers(-70, 70), st.sampled_from([0, 1, 2, 3, 5, 13, 2000000000])))
                lines[i] = lines[i][: m.start()] + str(new) + lines[i][m.end():]
    return "\n".join(lines)


@settings(FUZZ, max_examples=100)
@given(mutated_cfg())
def test_mutated_valid_cfgs_parse_or_give_a_cfg_error(text: str) -> None:
    cfg = parse_or_cfg_error(text)
    if cfg is not None:
        check_parsed(cfg)


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_the_seeds_are_valid(name: str) -> None:
    """The mutation test starts from cfgs that parse, so its edits are what fails."""
    check_parsed(parse_cfg_text(SEEDS[name]))


# ------------------------------------------------------------------ .weights

SMALL = parse_cfg_text(zoo_cfg_text("yolov3-tiny", classes=1, img_size=64).replace("filters=1024", "filters=16").replace("filters=512", "filters=16").replace("filters=256", "filters=16"))


def read_bytes_as_weights(data: bytes, cfg: DarknetCfg = SMALL, cutoff: int | None = None) -> None:
    """The property: arrays for every conv, or a `WeightsError`."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.weights"
        path.write_bytes(data)
        try:
            header, arrays = read_darknet_weights(path, cfg, cutoff)
        except WeightsError as err:
            assert str(err).startswith(str(path))
            return
    assert isinstance(header, WeightsHeader)
    assert all(np.isfinite(a).all() for parts in arrays.values() for a in parts.values())


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes_as_weights_give_a_weights_error(data: bytes) -> None:
    read_bytes_as_weights(data)


@FUZZ
@given(st.data())
def test_damaged_weights_read_or_give_a_weights_error(data: st.DataObject) -> None:
    size = weights_file_size(SMALL)
    valid = bytearray(WeightsHeader().to_bytes() + np.random.default_rng(0).standard_normal((size - 20) // 4).astype("<f4").tobytes())
    kind = data.draw(st.sampled_from(["truncate", "extend", "flip", "header"]))
    if kind == "truncate":
        del valid[data.draw(st.integers(0, len(valid) - 1)):]
    elif kind == "extend":
        valid += data.draw(st.binary(min_size=1, max_size=64))
    elif kind == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            valid[data.draw(st.integers(0, len(valid) - 1))] = data.draw(st.integers(0, 255))
    else:
        valid[: 20] = data.draw(st.binary(min_size=20, max_size=20))
    read_bytes_as_weights(bytes(valid), cutoff=data.draw(st.sampled_from([None, 2, 9])))
