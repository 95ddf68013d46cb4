"""BN re-calibration: running statistics equal the data's, state restored, bad input refused."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from prune_fixtures import images, irregular_model
from yolo_slim.errors import PruneError
from yolo_slim.prune.recalibrate import recalibrate_bn


def _conv0_batch_stats(model, x):
    with torch.no_grad():
        y = model.layers[0].conv(x)
    return y.mean((0, 2, 3)), y.var((0, 2, 3), unbiased=True)


def test_running_stats_become_the_data_statistics():
    model = irregular_model()
    x = images(8, 64, seed=3)
    loader = DataLoader(TensorDataset(x), batch_size=8)
    assert recalibrate_bn(model, loader, 8) == 8
    mean, var = _conv0_batch_stats(model, x)
    bn = model.layers[0].bn
    torch.testing.assert_close(bn.running_mean, mean, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(bn.running_var, var, rtol=1e-4, atol=1e-5)


def test_cumulative_average_over_batches_and_state_restored():
    model = irregular_model()
    model.train()
    model.layers[3].eval()
    x = images(6, 64, seed=4)
    loader = DataLoader(TensorDataset(x), batch_size=2)
    weights = {k: v.clone() for k, v in model.state_dict().items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    assert recalibrate_bn(model, loader, 5) == 5  # 2 + 2 + 1 images
    means = [_conv0_batch_stats(model, b)[0] for b in (x[0:2], x[2:4], x[4:5])]
    torch.testing.assert_close(model.layers[0].bn.running_mean, sum(means) / 3, rtol=1e-4, atol=1e-5)
    assert model.training and not model.layers[3].training  # per-module state restored
    assert all(bn.momentum == 0.03 for bn in (b.bn for b in model.conv_blocks().values() if b.bn is not None))
    for k, v in model.state_dict().items():
        if k in weights:
            assert torch.equal(v, weights[k]), k


def test_batches_as_dicts_and_uint8():
    model = irregular_model()
    batch = {"images": (images(2, 64) * 255).to(torch.uint8)}
    assert recalibrate_bn(model, [batch], 4) == 2


def test_bad_requests_are_refused():
    model = irregular_model()
    with pytest.raises(PruneError, match="n_images=0 must be an integer >= 1"):
        recalibrate_bn(model, [], 0)
    before = model.layers[0].bn.running_mean.clone()
    with pytest.raises(PruneError, match="yielded no images"):
        recalibrate_bn(model, [], 4)
    assert torch.equal(model.layers[0].bn.running_mean, before)
    with pytest.raises(PruneError, match="cannot find the images in a batch of type str"):
        recalibrate_bn(model, ["x"], 4)
    with pytest.raises(PruneError, match="no BatchNorm layer"):
        recalibrate_bn(torch.nn.Conv2d(3, 3, 1), [images(1, 8)], 1)
