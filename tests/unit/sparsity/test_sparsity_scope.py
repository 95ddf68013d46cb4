"""The sparsity scopes on yolov4 and yolov4-tiny, checked against the channel graph."""

from __future__ import annotations

import pytest

from yolo_slim.graph import build_graph
from yolo_slim.model import Darknet
from yolo_slim.sparsity import select_bn_layers


@pytest.mark.parametrize("name", ["yolov4", "yolov4-tiny"])
def test_scopes_follow_the_graph(name: str) -> None:
    model = Darknet.from_cfg(name, classes=2, img_size=128)
    graph = build_graph(model.cfg)
    with_bn = {i for i, b in model.conv_blocks().items() if b.bn is not None}
    head_convs = {i - 1 for i in model.head_ids}
    prunable = set(select_bn_layers(model, "prunable"))
    # exactly the BN convs whose coupled group has channels the pruner may cut
    assert prunable == {i for i in with_bn if graph.group_of(i).prunable > 0}
    assert not prunable & head_convs  # no BN, and their outputs are fixed by the heads
    both = set(select_bn_layers(model, "prunable+shortcut"))
    assert prunable <= both <= with_bn
    assert {c for unit in graph.units for c in unit.convs} <= both
    assert set(select_bn_layers(model, "all")) == with_bn
    assert set(select_bn_layers(model, "prunable", ignore=[0])) == prunable - {0}


def test_split_route_producers_and_spp_input_are_prunable() -> None:
    """The reference left these out by index rules; the graph handles them exactly."""
    tiny = Darknet.from_cfg("yolov4-tiny", classes=2, img_size=128)
    assert {2, 10, 18} <= set(select_bn_layers(tiny, "prunable"))
    v4 = Darknet.from_cfg("yolov4", classes=2, img_size=128)
    spp_input = 107  # the conv before yolov4's SPP maxpools (108, 110, 112)
    assert v4.cfg.layers[spp_input + 1].__class__.__name__ == "MaxPoolSection"
    assert spp_input in select_bn_layers(v4, "prunable")
