"""The channel dependency graph: coupling, pass-through, prunability, residual units."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fixtures.cfg_texts import cfg_text, conv, net

from yolo_slim.__main__ import main
from yolo_slim.darknet.cfg import load_cfg, parse_cfg, parse_cfg_text
from yolo_slim.darknet.zoo import ZOO_NAMES
from yolo_slim.graph import build_graph, format_graph

IRREGULAR = Path(__file__).parents[1] / "prune" / "irregular.cfg"
UPSTREAM = Path(__file__).parents[4] / "shared" / "cfg"


@pytest.fixture(scope="module")
def irregular():
    return build_graph(parse_cfg(IRREGULAR))


@pytest.fixture(scope="module")
def yolov4():
    return build_graph(load_cfg("yolov4", classes=2))


def test_shortcut_and_depthwise_couple_their_channels(irregular):
    g = irregular
    # shortcut 4 = conv 1 + conv 3; depthwise conv 2 reads conv 1; shortcut 7 adds conv 6
    assert g.group_of(1).members == (1, 2, 3, 6)
    assert sorted(g.carriers(4, 5)) == [(1, 5), (2, 5), (3, 5), (6, 5)]
    assert sorted(g.carriers(7, 31)) == [(1, 31), (2, 31), (3, 31), (6, 31)]
    # channel c of the stream is one decision, distinct channels stay distinct
    assert len(set(g.positions[7].tolist())) == 32
    np.testing.assert_array_equal(g.positions[1], g.positions[6])


def test_routes_split_and_pass_through_follow_positions(irregular):
    g = irregular
    np.testing.assert_array_equal(g.positions[8], g.positions[7][16:])  # groups=2, group_id=1
    np.testing.assert_array_equal(g.positions[12], np.concatenate([g.positions[11], g.positions[9], g.positions[7]]))
    for pool in (13, 14, 24):  # maxpools pass channels through
        np.testing.assert_array_equal(g.positions[pool], g.positions[pool - 1])
    np.testing.assert_array_equal(g.positions[22], g.positions[21])  # upsample
    np.testing.assert_array_equal(g.positions[25], np.concatenate([g.positions[24], g.positions[23]]))
    assert g.carriers(13, 20) == [(9, 4)]  # position 20 of route 12 = conv 9 channel 4


def test_split_route_gives_a_balance_constraint(irregular):
    g = irregular
    assert g.balance_route == (8,)
    first, second = g.balance[0]
    np.testing.assert_array_equal(first, g.positions[7][:16])
    np.testing.assert_array_equal(second, g.positions[7][16:])
    assert g.group_of(1).splits == (8,)


def test_unprunable_channels_have_reasons(irregular):
    g = irregular
    g10, g18 = g.group_of(10), g.group_of(18)
    assert g10.prunable == 0 and any("conv 10 has no batch_normalize" in r for r in g10.reasons)
    assert g18.prunable == 0 and any("feeds [yolo] layer 19" in r for r in g18.reasons)
    assert g.group_of(9).fully_prunable  # read by the conv without BN: still prunable (folds into its bias)
    assert g.group_of(26).fully_prunable


def test_residual_units_are_found_from_edges(irregular):
    units = [(u.source, u.convs, u.shortcut) for u in irregular.units]
    assert units == [(1, (2, 3), 4), (4, (5, 6), 7)]  # shortcut 17 (from=-2, leaky) is not a unit


@pytest.mark.parametrize("name, expected", [("yolov3", 23), ("yolov3-spp", 23), ("yolov4", 23), ("yolov3-tiny", 0), ("yolov4-tiny", 0), ("yolov4-tiny-3l", 0)])
def test_zoo_residual_unit_counts(name, expected):
    # the reference scripts list 23 shortcut candidates for yolov3/yolov3-spp/yolov4
    graph = build_graph(load_cfg(name, classes=2))
    assert len(graph.units) == expected
    for unit in graph.units:
        assert unit.shortcut == unit.convs[-1] + 1 and unit.convs[0] == unit.source + 1


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_zoo_heads_keep_their_inputs_and_everything_else_is_prunable(name):
    cfg = load_cfg(name, classes=2)
    graph = build_graph(cfg)
    heads = {i - 1 for i in cfg.yolo_ids()}
    for group in graph.groups:
        if not group.members:
            continue
        if set(group.members) & heads:
            assert group.prunable == 0
        else:
            assert group.fully_prunable, (name, group)


def test_yolov4_spp_and_upsample_convs_are_prunable_and_stream_coupled(yolov4):
    g = yolov4
    # conv 107 feeds the SPP maxpools, convs 117 and 127 feed the upsamples
    for conv in (107, 117, 127):
        assert g.group_of(conv).fully_prunable
    # the SPP route concatenates maxpools of conv 107: four copies of its channels
    np.testing.assert_array_equal(g.positions[113], np.tile(g.positions[107], 4))
    # a CSP stage's residual stream is one group: its input conv and every unit's last conv
    assert g.group_of(54 + 4).members == (58, 60, 63, 66, 69, 72, 75, 78, 81)


def test_yolov4_tiny_splits_are_balanced_not_blocked():
    g = build_graph(load_cfg("yolov4-tiny", classes=2))
    assert g.balance_route == (3, 11, 19)
    for route, producer in zip(g.balance_route, (2, 10, 18)):
        assert g.group_of(producer).fully_prunable and route in g.group_of(producer).splits


def test_grouped_conv_blocks_both_sides():
    text = cfg_text(net(32), conv(8), conv(8, groups=2), conv(8, 1, pad=False))
    g = build_graph(parse_cfg_text(text, "grouped.cfg"))
    assert g.group_of(0).prunable == 0 and "read by grouped conv 1 (groups=2)" in g.group_of(0).reasons
    assert g.group_of(1).prunable == 0 and "output of grouped conv 1 (groups=2)" in g.group_of(1).reasons
    assert g.group_of(2).fully_prunable


def test_format_graph_lists_groups_and_reasons(irregular):
    text = format_graph(irregular)
    assert "11 channel groups, 176 of 234 coupled channels prunable, 2 removable residual units" in text
    assert "conv 1,2,3,6" in text
    assert "split by route 8 (groups=2): kept counts balanced per block" in text
    assert "not prunable: conv 10 has no batch_normalize, so no gamma to rank" in text
    assert "4 -> 5,6 -> 7" in text


def test_cli_graph_prints_and_errors(capsys):
    assert main(["graph", "yolov4-tiny", "--classes", "2"]) == 0
    out = capsys.readouterr().out
    assert "split by route 3 (groups=2)" in out and "feeds [yolo] layer 30" in out
    assert main(["graph", "no-such-network"]) == 2
    assert "no such cfg file, and not a model-zoo name" in capsys.readouterr().err


@pytest.mark.skipif(not UPSTREAM.is_dir(), reason="upstream darknet cfgs (../shared/cfg) not present")
@pytest.mark.parametrize("name", ["yolov4", "yolov3-spp", "yolov4-tiny"])
def test_upstream_cfg_has_the_zoo_graph(name):
    upstream = build_graph(parse_cfg(UPSTREAM / f"{name}.cfg"))
    zoo = build_graph(load_cfg(name))
    assert [g.members for g in upstream.groups] == [g.members for g in zoo.groups]
    assert upstream.units == zoo.units
