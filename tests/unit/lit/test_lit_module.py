"""YoloLitModule pieces that need no Trainer: building, parameter groups, weights, checkpoints."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from torch import nn

from yolo_slim.errors import ConfigError, WeightsError
from yolo_slim.io.checkpoint import check_matching_state
from yolo_slim.lit.module import YoloLitModule
from yolo_slim.ops.boxes import targets_to_pixels


def test_parameter_groups_decay_conv_weights_only() -> None:
    lit = YoloLitModule(cfg="yolov4-tiny", classes=3, img_size=128)
    groups = lit.parameter_groups(5e-4)
    convs = [m for m in lit.model.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for m in lit.model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert [g["weight_decay"] for g in groups] == [0.0, 5e-4, 0.0]
    assert len(groups[1]["params"]) == len(convs)
    assert len(groups[0]["params"]) == len(bns)
    assert len(groups[2]["params"]) == len(bns) + sum(c.bias is not None for c in convs)
    assert sum(len(g["params"]) for g in groups) == len(list(lit.model.parameters()))


def test_hparams_are_plain_and_checkpoint_loads_weights_only(tmp_path: Path) -> None:
    lit = YoloLitModule(cfg="yolov4-tiny", classes=2, img_size=96)
    assert lit.model.num_classes == 2 and "[yolo]" in lit.hparams.cfg_text
    ckpt: dict = {"state_dict": lit.state_dict(), "hyper_parameters": dict(lit.hparams)}
    lit.on_save_checkpoint(ckpt)
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)  # no DictConfig, no numpy objects
    again = YoloLitModule(**loaded["hyper_parameters"])
    again.on_load_checkpoint(loaded)
    again.load_state_dict(loaded["state_dict"])
    assert torch.equal(again.model.layers[0].conv.weight, lit.model.layers[0].conv.weight)


def test_checkpoint_of_another_architecture_is_a_weights_error(tmp_path: Path) -> None:
    small = YoloLitModule(cfg="yolov4-tiny", classes=2)
    other = YoloLitModule(cfg="yolov4-tiny", classes=5)
    with pytest.raises(WeightsError, match="differ in shape"):
        check_matching_state(small.state_dict(), other.state_dict(), "x.ckpt")
    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": other.state_dict()}, path)
    with pytest.raises(WeightsError, match=r"other.ckpt: the weights do not match"):
        small.load_initial_weights(path)
    with pytest.raises(WeightsError, match="checkpoint not found"):
        small.load_initial_weights(tmp_path / "missing.ckpt")
    with pytest.raises(ConfigError, match="cutoff applies to darknet .weights"):
        small.load_initial_weights(path, cutoff=10)
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match=r"bad.ckpt: not a yolo_slim checkpoint \(not a torch.save file of tensors, or corrupted\)"):
        small.load_initial_weights(bad)


def test_initial_darknet_weights_with_cutoff(tmp_path: Path, random_weights) -> None:
    lit = YoloLitModule(cfg="yolov4-tiny", classes=2, img_size=96)
    path = random_weights(lit.model.cfg, seed=3)
    before = lit.model.layers[29].conv.weight.clone()
    lit.load_initial_weights(path, cutoff=5)
    assert torch.equal(lit.model.layers[29].conv.weight, before)  # past the cutoff: untouched
    assert torch.equal(lit.ema.module.layers[0].conv.weight, lit.model.layers[0].conv.weight)  # EMA restarted
    lit.load_initial_weights(path)
    assert not torch.equal(lit.model.layers[29].conv.weight, before)


def test_targets_to_pixels_splits_per_image() -> None:
    t = torch.tensor([[0, 1, 0.5, 0.5, 0.5, 0.25], [2, 0, 0.25, 0.75, 0.1, 0.1]])
    per_image = targets_to_pixels(t, 3, (64, 128))
    assert [len(p) for p in per_image] == [1, 0, 1]
    torch.testing.assert_close(per_image[0], torch.tensor([[1.0, 32.0, 24.0, 96.0, 40.0]]))


def test_bad_nominal_batch_raises() -> None:
    with pytest.raises(ConfigError, match="nominal_batch_size"):
        YoloLitModule(cfg="yolov4-tiny", classes=2, nominal_batch_size=0)


def test_bn_momentum_reaches_every_batchnorm() -> None:
    module = YoloLitModule(cfg="yolov4-tiny", classes=2, img_size=64, bn_momentum=0.1)
    momenta = {m.momentum for m in module.model.modules() if isinstance(m, nn.BatchNorm2d)}
    assert momenta == {0.1}
    with pytest.raises(ConfigError, match=r"model.bn_momentum must be in \(0, 1\], got 0"):
        YoloLitModule(cfg="yolov4-tiny", classes=2, bn_momentum=0.0)
