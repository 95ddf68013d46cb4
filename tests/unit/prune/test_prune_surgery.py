"""Surgery exactness: the compact network reproduces the masked one.

Oracle: the original network with the cut channels silenced (gamma = 0 and beta such
that the activation is exactly 0). Those channels then contribute nothing anywhere, so
deleting them, and deleting residual units whose last conv is silenced, must leave
every head output unchanged. That needs no trust in the folding code; the folding is
tested separately, exactly for 1x1 consumers and quantified at k > 1 borders.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prune_fixtures import images, irregular_model, maps, opencv_heads, rel_error, text_model, zoo_model
from fixtures.cfg_texts import cfg_text, conv, head, maxpool, net, route, shortcut, upsample
from yolo_slim.darknet.cfg import parse_cfg
from yolo_slim.darknet.sections import ConvSection
from yolo_slim.darknet.zoo import ZOO_NAMES
from yolo_slim.graph import build_graph
from yolo_slim.model import Darknet
from yolo_slim.prune.mask import mask_model
from yolo_slim.prune.plan import PrunePlan, load_plan, plan_channel_pruning, plan_layer_channel_pruning, save_plan
from yolo_slim.prune.surgery import apply_plan, apply_plan_arrays

TOL = 1e-5  # of the output scale


def _check_compact_matches(model: Darknet, plan: PrunePlan, size: int, batch: int = 2) -> Darknet:
    silenced = mask_model(model, plan, silence=True, inplace=True)
    compact = apply_plan(silenced, plan)
    x = images(batch, size)
    err = rel_error(maps(silenced, x), maps(compact, x))
    assert err <= TOL, err
    return compact


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_zoo_compact_equals_silenced_original(name):
    size = 32  # silenced channels are exact everywhere, borders included: small maps suffice
    model = zoo_model(name, size)
    graph = build_graph(model.cfg)
    shortcuts = min(5, len(graph.units))
    plan = plan_layer_channel_pruning(model, shortcuts, graph, global_percent=0.6, layer_keep=0.05, channel_multiple=4)
    assert plan.kept and len(plan.removed_units) == shortcuts
    n_layers, n_params = len(model.cfg.layers), sum(p.numel() for p in model.parameters())
    compact = _check_compact_matches(model, plan, size, batch=1)
    # the compact cfg has the planned widths and lost the units' layers
    removed = sum(len(u) for u in plan.removed_units)
    assert len(compact.cfg.layers) == n_layers - removed
    assert sum(p.numel() for p in compact.parameters()) < n_params


def test_irregular_channel_pruning_is_exact():
    model = irregular_model()
    plan = plan_channel_pruning(model, None, global_percent=0.7)
    cut = {layer: model.cfg.layers[layer].filters - len(kept) for layer, kept in plan.kept.items()}
    # depthwise conv, split producer (the residual stream), logistic and mish layers all lose channels
    assert all(cut.get(layer, 0) > 0 for layer in (0, 1, 2, 3, 6, 9, 11, 15, 16, 26))
    compact = _check_compact_matches(model, plan, 64)
    depthwise = compact.cfg.layers[2]
    assert depthwise.groups == depthwise.filters == len(plan.kept[2])


@pytest.mark.parametrize("shortcuts", [1, 2])
def test_irregular_layer_and_channel_pruning_is_exact(shortcuts):
    model = irregular_model()
    plan = plan_layer_channel_pruning(model, shortcuts, None, global_percent=0.5, channel_multiple=2)
    compact = _check_compact_matches(model, plan, 64)
    assert len(compact.cfg.layers) == 29 - 3 * shortcuts


def test_plan_file_round_trip_gives_the_same_compact_model(tmp_path):
    model = irregular_model()
    plan = plan_layer_channel_pruning(model, 1, None, global_percent=0.5)
    loaded = load_plan(save_plan(plan, tmp_path / "plan.json"))
    assert loaded == plan
    x = images(1, 64)
    a, b = maps(apply_plan(model, plan), x), maps(apply_plan(model, loaded), x)
    assert all(torch.equal(u, v) for u, v in zip(a, b))


# ----------------------------------------------------------------------------- folding

ONE_BY_ONE = cfg_text(
    net(32),
    conv(16, activation="{act0}"),  # 0
    conv(16, 1, activation="swish", pad=False),  # 1
    route("-1,-2"),  # 2 route, maxpool, upsample carry the constants
    maxpool(2, 2),  # 3
    upsample(2),  # 4
    conv(16, 1, activation="mish", pad=False),  # 5
    shortcut(-5),  # 6
    head(),  # 7 conv without BN: folds into its bias; 8 [yolo]
)


@pytest.mark.parametrize("act0", ["leaky", "relu", "mish", "swish", "logistic", "linear"])
def test_beta_folding_is_exact_for_1x1_consumers(act0):
    # masked, not silenced: cut channels output act(beta) != 0; every consumer is 1x1
    model = text_model(ONE_BY_ONE.format(act0=act0))
    plan = plan_channel_pruning(model, None, global_percent=0.5)
    assert 0 in plan.kept and 5 in plan.kept
    masked = mask_model(model, plan)
    x = images(2, 32)
    ref = maps(masked, x)
    assert rel_error(ref, maps(apply_plan(model, plan), x)) <= TOL
    assert rel_error(ref, maps(apply_plan(model, plan, fold=False), x)) > 1e-2  # folding is what makes it exact


BORDER = cfg_text(net(32), conv(16), head(size=3, pad=True))


def test_beta_folding_into_3x3_consumer_is_exact_inside_and_approximate_on_the_border():
    model = text_model(BORDER)
    plan = plan_channel_pruning(model, None, global_percent=0.5)
    masked = mask_model(model, plan)
    x = images(2, 32)
    (ref,), (fold,), (nofold,) = maps(masked, x), maps(apply_plan(model, plan), x), maps(apply_plan(model, plan, fold=False), x)
    scale = float(ref.abs().max())
    err_fold, err_nofold = (fold - ref).abs(), (nofold - ref).abs()
    inside = (slice(None), slice(None), slice(1, -1), slice(1, -1))
    assert float(err_fold[inside].max()) <= TOL * scale
    border = err_fold.clone()
    border[inside] = 0
    assert float(border.max()) > 0  # the zero padding reads 0, not the constant
    assert float(err_fold.mean()) < 0.2 * float(err_nofold.mean())


def test_beta_folding_border_error_is_far_below_not_folding_on_a_deep_network():
    # 3x3 consumers everywhere, 128 px: border error relative to the no-folding error
    model = irregular_model(128)
    plan = plan_channel_pruning(model, None, global_percent=0.5)
    x = images(2, 128)
    ref = maps(mask_model(model, plan), x)
    fold = maps(apply_plan(model, plan), x)
    nofold = maps(apply_plan(model, plan, fold=False), x)
    mean_fold = sum(float((a - b).abs().mean()) for a, b in zip(ref, fold))
    mean_nofold = sum(float((a - b).abs().mean()) for a, b in zip(ref, nofold))
    # measured: about 0.0083 vs 0.226 (3.7 %); the ratio halves each time the input doubles
    assert mean_fold < 0.06 * mean_nofold


LOGISTIC_UNIT = cfg_text(
    net(32),
    conv(16),  # 0
    conv(8, 1, pad=False),  # 1
    conv(16, activation="logistic"),  # 2 the unit's last conv: logistic, act(0) = 0.5
    shortcut(-3),  # 3
    conv(16, 1, activation="mish", pad=False),  # 4 the constant 0.5 flows through the stream into this 1x1 conv
    route("-1,-2"),  # 5
    head(),  # 6, 7 [yolo]
)


def test_removed_unit_constant_is_folded_for_any_activation():
    # gamma = beta = 0 in the removed unit's last conv: it outputs sigmoid(0) = 0.5,
    # which stays in the residual stream after removal and must be folded downstream
    model = text_model(LOGISTIC_UNIT)
    from yolo_slim.prune.plan import plan_layer_pruning

    plan = plan_layer_pruning(model, 1)
    assert plan.removed_units == ((1, 2, 3),)
    with torch.no_grad():
        model.layers[2].bn.weight.zero_()
        model.layers[2].bn.bias.zero_()
    x = images(2, 32)
    ref = maps(model, x)
    assert rel_error(ref, maps(apply_plan(model, plan), x)) <= TOL
    assert rel_error(ref, maps(apply_plan(model, plan, fold=False), x)) > 1e-2


# ----------------------------------------------------------------------------- arrays and files


def test_apply_plan_arrays_slices_kernels_to_kept_positions():
    model = irregular_model()
    graph = build_graph(model.cfg)
    plan = plan_channel_pruning(model, graph, global_percent=0.5)
    arrays = model.darknet_arrays()
    new_cfg, new_arrays, notes = apply_plan_arrays(model.cfg, arrays, plan, graph=graph, fold=False)
    assert notes == []
    # conv 26 reads route 25 = [maxpool(route 23), route 23]; route 23 = [upsample(conv 21), route 12];
    # route 12 = [conv 11, conv 9, shortcut 7 (= the stream of conv 1)]: offsets 0, 16, 32, 48
    def kept(layer):
        return np.asarray(plan.kept.get(layer, range(model.cfg.layers[layer].filters)))

    k23 = np.concatenate([kept(21), 16 + kept(11), 32 + kept(9), 48 + kept(1)])
    in26 = np.concatenate([k23, 80 + k23])
    out26 = kept(26)
    np.testing.assert_array_equal(new_arrays[26]["weight"], arrays[26]["weight"][out26][:, in26])
    assert new_cfg.layers[26].filters == len(out26)
    # the depthwise conv keeps its own kernels, one per kept channel
    np.testing.assert_array_equal(new_arrays[2]["weight"], arrays[2]["weight"][kept(2)])
    np.testing.assert_array_equal(kept(2), kept(1))


def test_pruned_files_load_back_with_the_same_outputs(tmp_path):
    model = irregular_model()
    plan = plan_layer_channel_pruning(model, 1, None, global_percent=0.5)
    compact = apply_plan(model, plan)
    compact.to_cfg(tmp_path / "pruned.cfg")
    compact.save_darknet_weights(tmp_path / "pruned.weights")
    again = Darknet.from_cfg(tmp_path / "pruned.cfg")
    again.load_darknet_weights(tmp_path / "pruned.weights")
    again.eval()
    x = images(1, 64)
    assert all(torch.equal(a, b) for a, b in zip(maps(compact, x), maps(again, x)))
    assert isinstance(parse_cfg(tmp_path / "pruned.cfg").layers[0], ConvSection)


@pytest.mark.parametrize("name", ["irregular", "yolov4-tiny", "yolov4"])
def test_pruned_files_match_opencv_darknet_importer(tmp_path, name):
    size = 64
    if name == "irregular":
        model = irregular_model(size)
    else:
        model = zoo_model(name, size)
    graph = build_graph(model.cfg)
    plan = plan_layer_channel_pruning(model, min(3, len(graph.units)), graph, global_percent=0.6, channel_multiple=2)
    compact = apply_plan(model, plan, graph=graph)
    compact.to_cfg(tmp_path / "pruned.cfg")
    compact.save_darknet_weights(tmp_path / "pruned.weights")
    x = images(1, size)
    ours = [m.numpy() for m in maps(compact, x)]
    theirs = opencv_heads(tmp_path / "pruned.cfg", tmp_path / "pruned.weights", [h - 1 for h in compact.head_ids], x)
    scale = max(float(np.abs(o).max()) for o in ours)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape
        # OpenCV's BN epsilon is 1e-6 against our (darknet's) 1e-5
        assert float(np.abs(a - b).max()) <= 1e-3 * scale
