"""A short sparse run on the built-in data drives gammas to zero; the same run without
the callback does not."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from tiny_runs import QUIET_CPU_TRAINER, TINY_DATA

from yolo_slim.darknet.cfg import parse_cfg
from yolo_slim.model import Darknet, load_model
from yolo_slim.sparsity import select_bn_layers
from yolo_slim.sparsity.stats import sparsity_summary
from yolo_slim.train_task import train

ROOT = Path(__file__).resolve().parents[2]


def _cfg(tmp: Path, data_dir: Path, experiment: str, weights: Path, *extra: str):
    overrides = [
        f"experiment={experiment}",
        f"weights={weights}",
        f"paths.root_dir={ROOT}",
        f"paths.output_dir={tmp}",
        f"paths.log_dir={tmp / 'logs'}",
        f"paths.data_dir={data_dir}",
        *TINY_DATA,
        *QUIET_CPU_TRAINER,
        "trainer.max_epochs=3",
        "budget.warmup_steps=0",
        "model.nominal_batch_size=4",
        *extra,
    ]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=overrides)


def _small_gamma_start(tmp: Path) -> Path:
    """Demo-model weights whose gammas spread evenly over [0, 0.1], as after a baseline."""
    model = Darknet(parse_cfg(ROOT / "conf/model/cfg/yolov3-demo.cfg"))
    with torch.no_grad():
        for block in model.conv_blocks().values():
            if block.bn is not None:
                block.bn.weight.copy_(torch.linspace(0.0, 0.1, block.bn.weight.numel()))
    return model.save_darknet_weights(tmp / "start.weights")


def test_sparse_run_drives_gammas_to_zero(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    start = _small_gamma_start(tmp_path)
    fractions = {}
    for name, experiment, extra in [
        ("plain", "demo_baseline", ()),
        ("sparse", "demo_sparse", ("callbacks.bn_sparsity.s=0.5",)),
    ]:
        _, art = train(_cfg(tmp_path / name, data_dir, experiment, start, *extra))
        model = load_model(art["cfg"], art["last_ckpt"])
        fractions[name] = sparsity_summary(model, select_bn_layers(model, "prunable"), ()).frac_below_1e2
    assert (tmp_path / "sparse" / "gamma_hist.png").is_file()
    assert fractions["sparse"] > fractions["plain"] + 0.1, fractions
