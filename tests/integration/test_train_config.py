"""The Hydra config of train.py: every experiment composes, trainer values resolve, errors are one line."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from yolo_slim.train_task import trainer_overrides

ROOT = Path(__file__).resolve().parents[2]
# the training experiments (the sparsity ones are tested with the sparsity callback)
EXPERIMENTS = ["demo_baseline", "demo_finetune", "yolov3-spp_baseline", "yolov4-tiny_baseline", "yolov4_baseline", "yolov4_finetune"]


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=[f"paths.root_dir={ROOT}", "paths.output_dir=/tmp/unused", *overrides])


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes(name: str) -> None:
    cfg = composed(f"experiment={name}", "data.data=x.data", "model.cfg=x.cfg", "weights=x.weights")
    assert cfg.run_name == name
    assert cfg.model._target_ == "yolo_slim.lit.module.YoloLitModule"
    assert cfg.model.optimizer._partial_ is True
    OmegaConf.to_container(cfg.model, resolve=True)  # every interpolation resolves


def test_defaults_train_the_demo_model_on_builtin_data() -> None:
    cfg = composed()
    assert cfg.data.data == "builtin"
    assert Path(cfg.model.cfg).is_file()
    # the default experiment is the demo recipe (Adam, 12 epochs)
    assert cfg.run_name == "demo_baseline" and cfg.resume is None and cfg.ckpt_path is None
    assert cfg.model.optimizer._target_ == "torch.optim.Adam"
    assert cfg.model.img_size == cfg.data.img_size


def test_trainer_values_resolved_from_the_rest() -> None:
    cfg = composed("data.batch_size=8")
    assert trainer_overrides(cfg) == {"accumulate_grad_batches": 2, "precision": "32-true"}  # demo nominal 16
    cfg = composed("experiment=yolov4_baseline", "data.data=x", "data.batch_size=16", "trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu")
    assert cfg.trainer.strategy == "ddp" and cfg.trainer.sync_batchnorm is False
    assert trainer_overrides(cfg) == {"accumulate_grad_batches": 2, "precision": "32-true"}
    cfg = composed("experiment=yolov4_baseline", "data.data=x", "trainer.accumulate_grad_batches=3")
    assert "accumulate_grad_batches" not in trainer_overrides(cfg)
    assert composed("trainer=gpu").trainer.precision == "16-mixed"


def test_train_py_prints_one_error_line_and_exits_non_zero(tmp_path: Path, monkeypatch, capsys) -> None:
    # in-process, as `python train.py resume=sometimes` runs it
    monkeypatch.setattr(sys, "argv", [str(ROOT / "train.py"), "resume=sometimes", f"paths.log_dir={tmp_path}"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(ROOT / "train.py"), run_name="__main__")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["error: resume must be 'auto' or null, got 'sometimes' (to resume from a file use ckpt_path=PATH)"]
