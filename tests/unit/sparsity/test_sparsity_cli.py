"""`python -m yolo_slim sparsity CFG WEIGHTS` reports what the weights hold."""

from __future__ import annotations

import json

import torch

from yolo_slim.__main__ import main
from yolo_slim.model import Darknet


def _half_sparse_weights(tmp_path):
    model = Darknet.from_cfg("yolov4-tiny", classes=2, img_size=128)
    with torch.no_grad():
        for block in model.conv_blocks().values():
            if block.bn is not None:  # half near 0, half spread over [0.2, 0.8] (mean 0.5): no ties at the threshold
                n = block.bn.weight.numel()
                block.bn.weight[: n // 2] = 1e-4
                block.bn.weight[n // 2 :] = torch.linspace(0.2, 0.8, n - n // 2)
    cfg, weights = tmp_path / "m.cfg", tmp_path / "m.weights"
    model.to_cfg(cfg)
    model.save_darknet_weights(weights)
    return cfg, weights


def test_summary_of_a_half_sparse_model(tmp_path, capsys):
    cfg, weights = _half_sparse_weights(tmp_path)
    assert main(["sparsity", str(cfg), str(weights), "--json", "--plot", str(tmp_path / "g.png")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["frac_below_1e-3"] == 0.5
    assert out["mean_abs_gamma"] == __import__("pytest").approx(0.5 * 0.5 + 0.5 * 1e-4, rel=1e-3)
    assert out["bflops_at_0.50"] < out["bflops"]
    assert out["bflops_at_0.90"] < out["bflops_at_0.70"] < out["bflops_at_0.50"]
    assert (tmp_path / "g.png").stat().st_size > 1000


def test_weights_of_another_cfg_is_one_clear_line(tmp_path, capsys):
    cfg, weights = _half_sparse_weights(tmp_path)
    assert main(["sparsity", "yolov3-tiny", str(weights), "--classes", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "float32 values" in err and "Traceback" not in err
