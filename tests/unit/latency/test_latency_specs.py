"""Layer specs: what a network's exported graph times, and the table keys."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from yolo_slim.darknet.cfg import load_cfg, parse_cfg
from yolo_slim.latency.specs import (
    HEADS_LAYER,
    ConcatSpec,
    ConvSpec,
    DecodeSpec,
    HeadConcatSpec,
    SliceSpec,
    layer_specs,
    spec_from_key,
    spec_key,
)

IRREGULAR = Path(__file__).parents[1] / "prune" / "irregular.cfg"


def test_yolov4_tiny_specs_follow_its_graph():
    cfg = load_cfg("yolov4-tiny", classes=2, img_size=96)
    specs = layer_specs(cfg)
    kinds = Counter(s.kind for _, s in specs)
    convs = sum(1 for s in cfg.layers if type(s).__name__ == "ConvSection")
    assert kinds["conv"] == convs
    assert kinds["slice"] == 3 and kinds["maxpool"] == 3 and kinds["decode"] == 2 and kinds["heads"] == 1
    assert kinds["upsample"] == 1
    first = specs[0][1]
    assert isinstance(first, ConvSpec) and first.image_input and (first.cin, first.h, first.w) == (3, 96, 96)
    assert not any(s.image_input for _, s in specs[1:] if isinstance(s, ConvSpec))
    # the CSP split route reads block 1 of its source's 2 blocks
    layer, split = next((i, s) for i, s in specs if isinstance(s, SliceSpec))
    assert (split.groups, split.group_id) == (2, 1)
    assert split.c == load_cfg("yolov4-tiny", classes=2, img_size=96).layers[layer - 1].filters
    heads = [s for i, s in specs if i == HEADS_LAYER]
    assert heads == [HeadConcatSpec((3 * 3 * 3, 3 * 6 * 6), 7)]


def test_routes_give_concats_and_unsplit_single_routes_are_free():
    cfg = parse_cfg(IRREGULAR)
    specs = layer_specs(cfg)
    by_layer: dict[int, list] = {}
    for i, s in specs:
        by_layer.setdefault(i, []).append(s)
    for i, section in enumerate(cfg.layers):
        if type(section).__name__ != "RouteSection":
            continue
        got = by_layer.get(i, [])
        if len(section.sources) == 1 and section.groups == 1:
            assert got == [], i
        elif len(section.sources) > 1:
            assert isinstance(got[-1], ConcatSpec) and len(got[-1].parts) == len(section.sources), i
    depthwise = [s for _, s in specs if isinstance(s, ConvSpec) and s.depthwise]
    assert depthwise and all(s.cin == s.cout == s.groups for s in depthwise)
    decodes = [s for _, s in specs if isinstance(s, DecodeSpec)]
    assert len(decodes) == 2


def test_keys_round_trip_and_name_every_field():
    cfg = parse_cfg(IRREGULAR)
    specs = {s for _, s in layer_specs(cfg)}
    for spec in specs:
        key = spec_key(spec)
        assert key.startswith(spec.kind + " ")
        assert spec_from_key(key) == spec
    assert len({spec_key(s) for s in specs}) == len(specs)
    with pytest.raises(ValueError, match="unknown spec kind 'pool'"):
        spec_from_key("pool c=1")


def test_channel_axes_and_resizing():
    conv = ConvSpec(32, 64, 3, 1, 1, 1, 20, 20, "leaky")
    assert conv.channel_axes() == {"cin": "linear", "cout": "stair"}
    assert conv.with_channels(cin=16, cout=48) == ConvSpec(16, 48, 3, 1, 1, 1, 20, 20, "leaky")
    dw = ConvSpec(32, 32, 3, 1, 1, 32, 20, 20, "relu")
    assert dw.channel_axes() == {"cout": "stair"}
    assert dw.with_channels(cout=16) == ConvSpec(16, 16, 3, 1, 1, 16, 20, 20, "relu")
    concat = ConcatSpec((32, 96), 10, 10)
    assert concat.with_channels(c=64).parts == (16, 48)
    assert sum(concat.with_channels(c=65).parts) == 65
    assert DecodeSpec(3, 7, 5, 5, False).channel_axes() == {}
