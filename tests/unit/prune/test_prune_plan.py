"""Importance, planning and plan checking: what gets cut, and every refusal."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from prune_fixtures import irregular_model, text_model
from fixtures.cfg_texts import cfg_text, conv, head, net
from yolo_slim.darknet.cfg import load_cfg
from yolo_slim.errors import PruneError
from yolo_slim.graph import build_graph
from yolo_slim.model import Darknet
from yolo_slim.prune.importance import bn_gamma_importance, coupled_scores, get_importance, register_importance
from yolo_slim.prune.plan import (
    PrunePlan,
    check_plan,
    load_plan,
    plan_channel_pruning,
    plan_layer_channel_pruning,
    plan_layer_pruning,
    save_plan,
)

CHAIN = cfg_text(net(32), conv(8), conv(8), head())


def _set_gammas(model: Darknet, gammas: dict[int, list[float]]) -> Darknet:
    with torch.no_grad():
        for layer, values in gammas.items():
            model.layers[layer].bn.weight.copy_(torch.tensor(values))
    return model


@pytest.fixture
def chain():
    # gammas 1..16 spread over the two prunable convs: a transparent oracle
    model = text_model(CHAIN)
    return _set_gammas(model, {0: [1, 3, 5, 7, 9, 11, 13, 15], 1: [-2, 4, 6, 8, 10, 12, 14, 16]})


def test_global_threshold_is_the_tutorials_quantile(chain):
    plan = plan_channel_pruning(chain, None, global_percent=0.5, layer_keep=0.0)
    # threshold = sorted(|gamma|)[int(16 * 0.5)] = 9; channels <= 9 go: conv 0 loses 1,3,5,7,9, conv 1 loses -2,4,6,8
    assert plan.threshold == 9.0 and plan.cut_by == "threshold"
    assert plan.kept == {0: (5, 6, 7), 1: (4, 5, 6, 7)}
    assert plan.global_percent == 0.5 and plan.achieved_percent == 9 / 16
    nothing = plan_channel_pruning(chain, None, global_percent=0.0)
    assert nothing.kept == {} and nothing.threshold is None and nothing.achieved_percent == 0.0


def test_quota_cuts_the_lowest_fraction(chain):
    plan = plan_channel_pruning(chain, None, global_percent=0.5, layer_keep=0.0, cut_by="quota")
    # the 8 lowest |gamma| of 16 are 1..8: conv 0 loses 1,3,5,7 and conv 1 loses -2,4,6,8
    assert plan.kept == {0: (4, 5, 6, 7), 1: (4, 5, 6, 7)}
    assert plan.threshold == 8.0 and plan.cut_by == "quota" and plan.achieved_percent == 0.5
    with pytest.raises(PruneError, match="cut_by='share'; expected one of threshold, quota"):
        plan_channel_pruning(chain, None, global_percent=0.5, cut_by="share")


def test_layer_keep_is_a_floor_and_never_below_one_channel(chain):
    _set_gammas(chain, {0: [0.01 * i for i in range(1, 9)]})
    plan = plan_channel_pruning(chain, None, global_percent=0.5, layer_keep=0.3)
    assert plan.kept[0] == (5, 6, 7)  # ceil(8 * 0.3) = 3, the strongest three
    plan = plan_channel_pruning(chain, None, global_percent=0.55, layer_keep=0.0)
    assert plan.kept[0] == (7,)


def test_channel_multiple_rounds_kept_counts_up(chain):
    plan = plan_channel_pruning(chain, None, global_percent=0.6, layer_keep=0.0, channel_multiple=4)
    assert {k: len(v) for k, v in plan.kept.items()} == {0: 4, 1: 4}
    plan = plan_channel_pruning(chain, None, global_percent=0.4, layer_keep=0.0, channel_multiple=3)
    assert all(len(v) % 3 == 0 or len(v) == 8 for v in plan.kept.values())


def test_channel_multiple_holds_on_every_prunable_zoo_conv():
    torch.manual_seed(0)
    model = Darknet.from_cfg("yolov4-tiny", classes=2, img_size=64)
    with torch.no_grad():
        for block in model.conv_blocks().values():
            if block.bn is not None:
                block.bn.weight.uniform_(0, 1)
    plan = plan_channel_pruning(model, None, global_percent=0.7, channel_multiple=8)
    for layer, kept in plan.kept.items():
        assert len(kept) % 8 == 0, (layer, len(kept))


def test_split_route_producer_keeps_balanced_halves():
    # conv 2 of yolov4-tiny is split by route 3: make its second half much weaker
    torch.manual_seed(0)
    model = Darknet.from_cfg("yolov4-tiny", classes=2, img_size=64)
    gammas = np.concatenate([np.linspace(1, 2, 32), np.linspace(0.001, 0.01, 32)])
    _set_gammas(model, {2: gammas.tolist()})
    plan = plan_channel_pruning(model, None, global_percent=0.5)
    kept = np.asarray(plan.kept[2])
    assert (kept < 32).sum() == (kept >= 32).sum() >= 1


def test_coupled_scores_aggregate_members():
    model = irregular_model()
    graph = build_graph(model.cfg)
    scores = {1: np.arange(32.0), 2: np.full(32, 10.0), 3: np.zeros(32), 6: np.full(32, 1.0)}
    stream = graph.positions[1]
    np.testing.assert_allclose(coupled_scores(graph, scores, "max")[stream], np.maximum(np.arange(32.0), 10))
    np.testing.assert_allclose(coupled_scores(graph, scores, "sum")[stream], np.arange(32.0) + 11)
    np.testing.assert_allclose(coupled_scores(graph, scores, "mean")[stream], (np.arange(32.0) + 11) / 4)
    assert np.isnan(coupled_scores(graph, scores, "max")[graph.positions[0]]).all()  # conv 0 not scored
    with pytest.raises(PruneError, match="unknown aggregate 'median'"):
        coupled_scores(graph, scores, "median")
    with pytest.raises(PruneError, match="conv 1: 3 channel scores for 32 filters"):
        coupled_scores(graph, {1: np.ones(3)}, "max")


def test_importance_is_pluggable(chain):
    assert get_importance("bn_gamma") is bn_gamma_importance
    register_importance("reverse_gamma", lambda arrays: {i: -np.abs(p["gamma"]) for i, p in arrays.items() if "gamma" in p})
    plan = plan_channel_pruning(chain, None, global_percent=0.5, layer_keep=0.0, importance="reverse_gamma")
    # scores -1..-16, threshold sorted[8] = -8: the nine channels with |gamma| >= 8 go
    assert plan.kept == {0: (0, 1, 2, 3), 1: (0, 1, 2)} and plan.importance == "reverse_gamma"
    with pytest.raises(PruneError, match="unknown importance 'nope'"):
        plan_channel_pruning(chain, None, 0.5, importance="nope")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"global_percent": 1.0}, r"global_percent=1.0 is outside \[0.0, 1.0\)"),
        ({"global_percent": -0.1}, r"global_percent=-0.1 is outside \[0.0, 1.0\)"),
        ({"global_percent": 0.5, "layer_keep": 1.5}, r"layer_keep=1.5 is outside \[0.0, 1.0\]"),
        ({"global_percent": 0.5, "channel_multiple": 0}, "channel_multiple=0 must be an integer >= 1"),
    ],
)
def test_channel_plan_refuses_bad_values(chain, kwargs, message):
    with pytest.raises(PruneError, match=message):
        plan_channel_pruning(chain, None, **kwargs)


def test_arrays_need_a_graph(chain):
    with pytest.raises(PruneError, match="needs `graph`"):
        plan_channel_pruning(chain.darknet_arrays(), None, 0.5)


def test_layer_pruning_removes_the_weakest_units():
    model = irregular_model()
    _set_gammas(model, {3: [0.1] * 32, 6: [0.5] * 32})
    plan = plan_layer_pruning(model, 1)
    assert plan.removed_units == ((2, 3, 4),) and plan.shortcuts == 1 and plan.kept == {}
    _set_gammas(model, {3: [0.9] * 32})
    assert plan_layer_pruning(model, 1).removed_units == ((5, 6, 7),)
    assert plan_layer_pruning(model, 2).removed_units == ((2, 3, 4), (5, 6, 7))


def test_layer_pruning_refuses_more_units_than_exist():
    model = irregular_model()
    with pytest.raises(PruneError, match="shortcuts=3 but .* has only 2 removable residual units"):
        plan_layer_pruning(model, 3)
    with pytest.raises(PruneError, match="shortcuts=-1 must be an integer >= 0"):
        plan_layer_pruning(model, -1)
    tiny = Darknet.from_cfg("yolov4-tiny", classes=2, img_size=64)
    with pytest.raises(PruneError, match="has only 0 removable residual units"):
        plan_layer_pruning(tiny, 1)


def test_layer_channel_ranks_units_on_the_kept_channels():
    # unit (2,3,4): a few strong channels among weak ones -> low mean overall, high after channel pruning
    model = irregular_model()
    g3 = [0.001] * 28 + [1.0] * 4  # mean 0.126
    g6 = [0.15] * 28 + [0.5] * 4  # mean 0.194, 0.5 on the kept channels
    _set_gammas(model, {3: g3, 6: g6, 1: g3, 2: g3})
    assert plan_layer_pruning(model, 1).removed_units == ((2, 3, 4),)
    plan = plan_layer_channel_pruning(model, 1, None, global_percent=0.5, layer_keep=0.0)
    # the four strong channels, plus four from the first half: split route 8 needs balanced halves
    kept = np.asarray(plan.kept[3])
    assert set(range(28, 32)) <= set(kept) and (kept < 16).sum() == (kept >= 16).sum() == 4
    assert plan.removed_units == ((5, 6, 7),)


# ----------------------------------------------------------------------------- plan files and checks


def test_plan_json_round_trip(tmp_path):
    plan = plan_layer_channel_pruning(irregular_model(), 1, None, global_percent=0.5, channel_multiple=2)
    path = save_plan(plan, tmp_path / "plan.json")
    data = json.loads(path.read_text())
    assert data["version"] == 1 and data["removed_units"] and data["kept"]
    assert all(key.isdigit() for key in data["kept"])
    assert load_plan(path) == plan
    assert PrunePlan.from_dict(plan.to_dict()) == plan


def test_removed_units_are_read_by_name_and_stored_as_id_lists(tmp_path):
    plan = plan_layer_pruning(irregular_model(), 1)
    (unit,) = plan.removed_units
    graph_unit = build_graph(irregular_model().cfg).unit_of(unit.layers)
    assert unit.convs == graph_unit.convs and unit.shortcut == graph_unit.shortcut and unit.layers == graph_unit.layers
    data = json.loads(save_plan(plan, tmp_path / "plan.json").read_text())
    assert data["removed_units"] == [list(graph_unit.layers)]  # the plan file format is unchanged
    (path := tmp_path / "hand.json").write_text(json.dumps({"version": 1, "removed_units": [[2, 3, 4]], "shortcuts": 1}))
    assert load_plan(path).removed_units[0].shortcut == 4
    assert PrunePlan(removed_units=((5, 6, 7),)).removed_units[0].convs == (5, 6)  # plain tuples are converted


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ('{"version": 7}', "plan version 7; expected 1"),
        ('{"version": 1, "colour": 3}', r"unknown plan keys \['colour'\]"),
        ('{"version": 1, "kept": {"a": [1]}}', "malformed kept/removed_units"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_load_plan_refuses_bad_files(tmp_path, content, message):
    path = tmp_path / "plan.json"
    path.write_text(content)
    with pytest.raises(PruneError, match=message):
        load_plan(path)
    with pytest.raises(PruneError, match="cannot read plan"):
        load_plan(tmp_path / "missing.json")


@pytest.fixture(scope="module")
def irregular_graph():
    return build_graph(irregular_model().cfg)


def _plan(graph, **kw) -> PrunePlan:
    from yolo_slim.prune.plan import cfg_fingerprint

    return PrunePlan(fingerprint=cfg_fingerprint(graph.cfg), **kw)


@pytest.mark.parametrize(
    "kept, units, message",
    [
        ({4: (0,)}, (), "layer 4 is not a conv layer"),
        ({0: ()}, (), "conv 0: the plan keeps no channel"),
        ({0: (3, 1)}, (), "ascending, unique and within 0..15"),
        ({0: (0, 16)}, (), "ascending, unique and within 0..15"),
        ({1: tuple(range(16))}, (), "cut in some member convs but kept in others"),
        ({10: tuple(range(8))}, (), r"cuts channels that may not be cut, in conv 10"),
        (
            {i: tuple(range(8)) + tuple(range(16, 32)) for i in (1, 2, 3, 6)},
            (),
            r"split route 8: kept counts per block \[8, 16\] differ",
        ),
        ({}, ((5, 6),), r"layers \[5, 6\] are not a removable residual unit"),
    ],
)
def test_check_plan_refuses_inconsistent_plans(irregular_graph, kept, units, message):
    with pytest.raises(PruneError, match=message):
        check_plan(irregular_graph, _plan(irregular_graph, kept=kept, removed_units=units))


def test_check_plan_refuses_a_plan_for_another_network(irregular_graph):
    other = plan_channel_pruning(Darknet(load_cfg("yolov4-tiny", classes=2, img_size=64)), None, 0.5)
    with pytest.raises(PruneError, match="made for another network"):
        check_plan(irregular_graph, other)


def test_plans_are_frozen():
    plan = PrunePlan()
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.shortcuts = 3  # type: ignore[misc]
    assert math.isclose(PrunePlan(global_percent=0.5).global_percent, 0.5)


@pytest.mark.parametrize("name", ["yolov3-tiny", "yolov4-tiny", "yolov4-tiny-3l", "irregular"])
@pytest.mark.parametrize("percent", [0.3, 0.7, 0.9])
def test_floors_multiples_and_balance_only_add_channels_back(name, percent):
    # every cut channel of every conv is at or below the tutorial's quantile, computed here
    # from the gammas alone; the floors, the rounding and the split balance only keep more
    model = irregular_model(64) if name == "irregular" else Darknet.from_cfg(name, classes=2, img_size=64)
    rng = np.random.default_rng(1)
    with torch.no_grad():
        for block in model.conv_blocks().values():
            if block.bn is not None:
                block.bn.weight.copy_(torch.from_numpy(rng.lognormal(-2, 2, block.bn.num_features).astype(np.float32)))
    gammas = {i: np.abs(b.bn.weight.detach().double().numpy()) for i, b in model.conv_blocks().items() if b.bn is not None}
    values = np.sort(np.concatenate(list(gammas.values())))
    threshold = values[int(values.size * percent)]
    plain = plan_channel_pruning(model, None, percent, layer_keep=0.0)
    strict = plan_channel_pruning(model, None, percent, layer_keep=0.3, channel_multiple=8)
    assert math.isclose(plain.threshold, threshold) and math.isclose(strict.threshold, threshold)
    below = sum(int((g <= threshold).sum()) for g in gammas.values())
    for plan in (plain, strict):
        for layer, kept in plan.kept.items():
            cut = np.setdiff1d(np.arange(gammas[layer].size), kept)
            assert (gammas[layer][cut] <= threshold).all(), layer
        assert 0 < plan.achieved_percent <= below / values.size
    for layer, kept in strict.kept.items():
        assert set(plain.kept.get(layer, range(gammas[layer].size))) <= set(kept)
    assert strict.achieved_percent < plain.achieved_percent


def test_ties_at_the_threshold_are_all_cut_and_warned_about(caplog):
    model = Darknet.from_cfg("yolov4-tiny", classes=2, img_size=64)  # untrained: every gamma is 1
    with caplog.at_level("WARNING", logger="yolo_slim.prune.plan"):
        plan = plan_channel_pruning(model, None, global_percent=0.1, layer_keep=0.25)
    assert plan.threshold == 1.0 and "score exactly the threshold 1 and are all cut" in caplog.text
    floors = {layer: math.ceil(0.25 * model.cfg.layers[layer].filters) for layer in plan.kept}
    at_floor = [layer for layer, kept in plan.kept.items() if len(kept) == floors[layer]]
    # down to the floor everywhere, except where a split route's balance added the other block's share back
    assert all(floors[layer] <= len(kept) <= 2 * floors[layer] for layer, kept in plan.kept.items())
    assert len(at_floor) >= len(plan.kept) - 3 and plan.achieved_percent > 0.6
