"""The Hydra config of train.py: defaults, trainer values resolved from the rest, errors are one line."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from yolo_slim.config import validate_config
from yolo_slim.train_task import trainer_overrides

ROOT = Path(__file__).resolve().parents[2]


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"paths.root_dir={ROOT}", "paths.output_dir=/tmp/unused", *overrides])
    return validate_config(cfg, "train")


def test_defaults_train_the_demo_model_on_builtin_data() -> None:
    cfg = composed()
    assert cfg.data == "builtin" and cfg.img_size is None and cfg.device == "auto"
    assert Path(cfg.model.cfg).is_file()
    # the default experiment is the demo recipe (Adam, 12 epochs)
    assert cfg.run_name == "demo_baseline" and cfg.experiment.name == "demo_baseline"
    assert cfg.resume is None and cfg.ckpt_path is None
    assert cfg.model.optimizer._target_ == "torch.optim.Adam"
    assert "img_size" not in cfg.model and "val" not in cfg.model  # the top-level img_size and eval are the one spelling


def test_trainer_values_resolved_from_the_rest(monkeypatch) -> None:
    monkeypatch.setattr("yolo_slim.config.devices.cpu_has_native_bf16", lambda: False)
    cfg = composed("loader.batch_size=8", "device=cpu")
    assert trainer_overrides(cfg) == {"accelerator": "cpu", "accumulate_grad_batches": 2, "precision": "32-true"}  # demo nominal 16
    cfg = composed("experiment=yolov4_baseline", "data=x", "loader.batch_size=16", "trainer=ddp", "trainer.devices=2", "device=cpu")
    assert cfg.trainer.strategy == "ddp" and cfg.trainer.sync_batchnorm is False
    assert trainer_overrides(cfg) == {"accelerator": "cpu", "accumulate_grad_batches": 2, "precision": "32-true"}
    cfg = composed("experiment=yolov4_baseline", "data=x", "trainer.accumulate_grad_batches=3", "device=CPU")
    assert cfg.device == "cpu" and "accumulate_grad_batches" not in trainer_overrides(cfg)


def test_device_gpu_means_amp(monkeypatch) -> None:
    monkeypatch.setattr("yolo_slim.config.devices._cuda_available", lambda: True)
    assert trainer_overrides(composed("device=gpu"))["precision"] == "16-mixed"
    assert trainer_overrides(composed("device=gpu"))["accelerator"] == "gpu"


def test_auto_precision_is_bf16_only_on_a_cpu_with_native_bf16(monkeypatch) -> None:
    monkeypatch.setattr("yolo_slim.config.devices._cuda_available", lambda: False)
    for native, expected in ((True, "bf16-mixed"), (False, "32-true")):
        monkeypatch.setattr("yolo_slim.config.devices.cpu_has_native_bf16", lambda native=native: native)
        assert trainer_overrides(composed("device=cpu"))["precision"] == expected
        assert trainer_overrides(composed("device=auto"))["precision"] == expected
    assert "precision" not in trainer_overrides(composed("device=cpu", "trainer.precision=32-true"))  # a stated value is kept


def test_train_py_prints_one_error_line_and_exits_2(tmp_path: Path, monkeypatch, capsys) -> None:
    # in-process, as `python train.py resume=sometimes` runs it
    monkeypatch.setattr(sys, "argv", [str(ROOT / "train.py"), "resume=sometimes", f"paths.log_dir={tmp_path}"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(ROOT / "train.py"), run_name="__main__")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["error: resume must be 'auto' or null, got 'sometimes' (to resume from a file use ckpt_path=PATH)"]
    assert not (tmp_path / "train").exists()  # refused before Hydra made a run dir
