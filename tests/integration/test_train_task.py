"""`train(cfg)` end to end on tiny built-in data: outputs, exact resume, init weights, errors."""

from __future__ import annotations

import logging

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from tiny_runs import QUIET_CPU_TRAINER, TINY_DATA

from yolo_slim.darknet.cfg import parse_cfg
from yolo_slim.errors import ConfigError, WeightsError
from yolo_slim.lit.module import YoloLitModule
from yolo_slim.model import Darknet
from yolo_slim.train_task import train

ROOT = Path(__file__).resolve().parents[2]


def tiny_cfg(tmp: Path, data_dir: Path, *overrides: str):
    """The real conf/train.yaml with a few 64 px images, 2 epochs, CPU, deterministic."""
    base = [
        f"paths.root_dir={ROOT}",
        f"paths.output_dir={tmp / 'run'}",
        f"paths.log_dir={tmp / 'logs'}",
        f"paths.data_dir={data_dir}",
        *TINY_DATA,
        *QUIET_CPU_TRAINER,
        "trainer.max_epochs=2",
        "trainer.deterministic=true",
        "budget.warmup_steps=1",
        "model.nominal_batch_size=8",
    ]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=[*base, *overrides])


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


def _final_state(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


def test_train_writes_every_output_and_resumes_exactly(tmp_path: Path, data_dir: Path, caplog) -> None:
    caplog.set_level(logging.INFO)
    metrics, art = train(tiny_cfg(tmp_path / "straight", data_dir))
    for key in ("last_ckpt", "best_ckpt", "cfg", "last_weights", "best_weights", "metrics_csv"):
        assert art[key].is_file(), key
    for key in ("val/precision", "val/recall", "val/mAP50", "val/mAP50_95", "val/f1", "train/loss_epoch", "val/loss"):
        assert key in metrics, key
    out = caplog.text  # the epoch lines and the results are log records (the console, train.log, a stage.log)
    assert out.count("epoch ") >= 2 and "mAP@0.5" in out and "results:" in out
    assert "val/mAP50" in art["metrics_csv"].read_text().splitlines()[0]
    assert (art["run_dir"] / "tensorboard").exists() is False  # logger=csv only

    # the darknet files are the EMA weights of the last epoch and load as a model
    ckpt = torch.load(art["last_ckpt"], map_location="cpu", weights_only=True)
    assert int(ckpt["state_dict"]["ema.updates"]) > 0
    model = Darknet(parse_cfg(art["cfg"]))
    model.load_darknet_weights(art["last_weights"])
    ema = {k[len("ema.module."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("ema.module.")}
    for k, v in model.state_dict().items():
        if not k.endswith("num_batches_tracked"):  # not part of a .weights file
            torch.testing.assert_close(v, ema[k], rtol=0, atol=0, msg=k)
    # and the checkpoint rebuilds its own module with weights_only loading
    lit = YoloLitModule.load_from_checkpoint(art["last_ckpt"], map_location="cpu", weights_only=True)
    assert lit.model.num_classes == 2

    # 1 epoch, stop, resume for the 2nd: same weights as 2 epochs straight
    stop = ["+callbacks.stop._target_=pytorch_lightning.callbacks.EarlyStopping", "+callbacks.stop.monitor=val/mAP50",
            "+callbacks.stop.mode=max", "+callbacks.stop.stopping_threshold=-1.0"]
    _, first = train(tiny_cfg(tmp_path / "first", data_dir, *stop))
    assert int(torch.load(first["last_ckpt"], weights_only=True)["epoch"]) == 0
    _, resumed = train(tiny_cfg(tmp_path / "resumed", data_dir, f"ckpt_path={first['last_ckpt']}"))
    assert int(torch.load(resumed["last_ckpt"], weights_only=True)["epoch"]) == 1
    straight, again = _final_state(art["last_ckpt"]), _final_state(resumed["last_ckpt"])
    assert straight.keys() == again.keys()
    for k in straight:
        torch.testing.assert_close(again[k], straight[k], rtol=0, atol=1e-6, msg=k)


def test_resume_auto_finds_newest_last_ckpt(tmp_path: Path, data_dir: Path) -> None:
    from yolo_slim.train_task import resolve_ckpt_path

    cfg = tiny_cfg(tmp_path, data_dir, "resume=auto", "run_name=exp")
    runs = tmp_path / "logs" / "train" / "exp" / "runs"
    assert resolve_ckpt_path(cfg, tmp_path / "run") is None
    for name in ("a", "b"):
        p = runs / name / "checkpoints" / "last.ckpt"
        p.parent.mkdir(parents=True)
        torch.save({"state_dict": {}}, p)
    found = resolve_ckpt_path(cfg, runs / "c")
    assert found == runs / "b" / "checkpoints" / "last.ckpt"
    assert resolve_ckpt_path(cfg, runs / "b") == runs / "a" / "checkpoints" / "last.ckpt"
    with pytest.raises(ConfigError, match="resume must be 'auto' or null"):
        resolve_ckpt_path(tiny_cfg(tmp_path, data_dir, "resume=yes"), tmp_path)
    with pytest.raises(WeightsError, match="checkpoint not found"):
        resolve_ckpt_path(tiny_cfg(tmp_path, data_dir, f"ckpt_path={tmp_path / 'nope.ckpt'}"), tmp_path)


def test_initial_weights_of_another_architecture_fail_clearly(tmp_path: Path, data_dir: Path) -> None:
    other = YoloLitModule(cfg="yolov4-tiny", classes=2)
    ckpt = tmp_path / "other.ckpt"
    torch.save({"state_dict": other.state_dict()}, ckpt)
    with pytest.raises(WeightsError, match="do not match the model's architecture"):
        train(tiny_cfg(tmp_path, data_dir, f"weights={ckpt}", "trainer.max_epochs=1"))
