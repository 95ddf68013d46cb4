"""Tests of yolo_slim.model.priors: head biases start at the expected frequencies."""

from __future__ import annotations

import torch

from yolo_slim.lit.module import YoloLitModule
from yolo_slim.model import Darknet
from yolo_slim.model.priors import init_head_priors


def test_priors_give_expected_objects_per_image() -> None:
    model = Darknet.from_cfg("yolov4-tiny", classes=3, img_size=320)
    assert init_head_priors(model, 320, objects_per_image=5.0) == 2
    model.eval()
    with torch.no_grad():
        maps = model.forward_maps(torch.zeros(1, 3, 320, 320))
    for head_id, head, fmap in zip(model.head_ids, model.heads, maps):
        raw = head.reshape(fmap)  # (1, A, H, W, 5 + C)
        bias = model.layers[head_id - 1].conv.bias.view(head.num_anchors, -1)
        expected_obj = 5.0 / (fmap.shape[2] * fmap.shape[3])
        assert torch.allclose(torch.sigmoid(bias[:, 4]), torch.full((head.num_anchors,), expected_obj), rtol=1e-4)
        assert torch.allclose(torch.sigmoid(bias[:, 5:]), torch.full_like(bias[:, 5:], 0.6 / 2.01), rtol=1e-4)
        # on a blank image the head predicts about that many objects per anchor map
        assert float(torch.sigmoid(raw[..., 4]).mean()) < 10 * expected_obj


def test_module_applies_priors_from_scratch_only(tmp_path) -> None:
    fresh = YoloLitModule(cfg="yolov3-tiny", classes=2, img_size=416)
    plain = YoloLitModule(cfg="yolov3-tiny", classes=2, img_size=416, head_priors=False)
    head_conv = fresh.model.head_ids[0] - 1
    fresh_obj = fresh.model.layers[head_conv].conv.bias.view(3, 7)[:, 4]
    plain_obj = plain.model.layers[head_conv].conv.bias.view(3, 7)[:, 4]
    assert bool((fresh_obj < -2.5).all()) and bool((plain_obj.abs() < 1).all())
    # initial darknet weights overwrite the priors
    weights = plain.model.save_darknet_weights(tmp_path / "w.weights")
    fresh.load_initial_weights(weights)
    assert torch.equal(fresh.model.layers[head_conv].conv.bias, plain.model.layers[head_conv].conv.bias)
