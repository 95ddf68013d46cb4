"""`train(cfg)` on a data set of the user's (not the built-in demo set): anchors fitted to its boxes
and written into the run's model.cfg, kept for pretrained weights and when told; the budget in
optimizer steps in the schedule and the checkpoint; early stopping from the budget's patience;
the summary's verdict."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from tiny_runs import QUIET_CPU_TRAINER

from yolo_slim.darknet.anchors import used_anchors
from yolo_slim.darknet.cfg import load_cfg
from yolo_slim.data.anchors import fit_anchors
from yolo_slim.data.sources import resolve_dataset
from yolo_slim.data.synthetic import builtin_preset_of, make_synthetic_dataset
from yolo_slim.train_task import train

ROOT = Path(__file__).resolve().parents[2]
DEMO_CFG = ROOT / "conf" / "model" / "cfg" / "yolov3-demo.cfg"


@pytest.fixture(scope="module")
def own_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's data set: generated images and labels in darknet's layout, without the generator's manifest."""
    root = tmp_path_factory.mktemp("own")
    data = make_synthetic_dataset(root / "set", n_train=8, n_val=4, img_size=64, seed=3)
    (data.parent / "manifest.json").unlink()
    assert builtin_preset_of(data) is None
    return data


def _cfg(tmp: Path, data: Path | str, *overrides: str):
    base = [f"paths.root_dir={ROOT}", f"paths.output_dir={tmp / 'run'}", f"paths.log_dir={tmp / 'logs'}",
            f"paths.data_dir={tmp / 'cache'}", f"data={data}", "img_size=64", "loader.batch_size=4", "loader.num_workers=0",
            "model.nominal_batch_size=8", *QUIET_CPU_TRAINER]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=[*base, *overrides])


def _anchors(cfg_path: Path) -> tuple:
    return tuple(used_anchors(load_cfg(cfg_path)))


def test_from_scratch_on_own_data_the_run_fits_and_writes_anchors(tmp_path: Path, own_data: Path, caplog) -> None:
    caplog.set_level(logging.INFO)  # the run's lines are log records (yolo_slim.progress)
    _, art = train(_cfg(tmp_path, own_data, "budget.steps=3", "budget.warmup_steps=1"))
    expected = fit_anchors(resolve_dataset(own_data), 64, 9, seed=0).anchors
    written = _anchors(art["cfg"])
    assert written == tuple(tuple(a) for a in expected) and written != _anchors(DEMO_CFG)
    summary = json.loads(art["summary"].read_text())
    anchors = summary["anchors"]
    assert anchors["used"] == "fitted" and anchors["fit"]["fitted"]["mean_iou"] > anchors["fit"]["current"]["mean_iou"]
    out = caplog.text
    assert "anchors: fitted to the training boxes (training from scratch on this data at 64 px; model.fit_anchors=auto)" in out
    assert "fitted   BPR" in out and "cfg      BPR" in out  # before and after, in the run's log
    # the step budget is the schedule's: 8 images at 8 per step = 1 step an epoch, 3 epochs
    assert (summary["budget"]["steps"], summary["budget"]["epochs"], summary["steps_done"]) == (3, 3, 3)
    state = torch.load(art["last_ckpt"], map_location="cpu", weights_only=False)["lr_schedulers"][0]["lr_lambdas"][0]
    assert (state["total_steps"], state["warmup_steps"]) == (3, 1)

    # from its weights (a pretrained model), the cfg's anchors stay unless asked
    again = tmp_path / "again"
    _, kept = train(_cfg(again, own_data, "budget.steps=1", f"weights={art['best_weights']}", f"model.cfg={art['cfg']}"))
    assert _anchors(kept["cfg"]) == written
    assert "whose heads learned these anchors" in json.loads(kept["summary"].read_text())["anchors"]["reason"]


def test_fit_anchors_false_and_the_demo_data_keep_the_cfgs_anchors(tmp_path: Path, own_data: Path) -> None:
    _, art = train(_cfg(tmp_path / "off", own_data, "budget.steps=1", "model.fit_anchors=false"))
    assert _anchors(art["cfg"]) == _anchors(DEMO_CFG)
    _, demo = train(_cfg(tmp_path / "demo", "builtin", "budget.steps=1", "builtin.n_train=8", "builtin.n_val=4"))
    summary = json.loads(demo["summary"].read_text())
    assert _anchors(demo["cfg"]) == _anchors(DEMO_CFG) and "built-in demo data" in summary["anchors"]["reason"]
    assert summary["budget"]["origin"]["warmup_steps"] == "demo_data"  # the demo's recipe there


def test_early_stopping_ends_a_run_that_stopped_improving(tmp_path: Path, own_data: Path, caplog) -> None:
    caplog.set_level(logging.INFO)
    # no val mAP@0.5 can beat the first by 0.5: early stop after the patience of 2 steps (2 epochs of 1 step)
    _, art = train(_cfg(tmp_path, own_data, "budget.steps=20", "budget.warmup_steps=0", "budget.patience_steps=2",
                        "budget.min_delta=0.5", "budget.early_stop_from=0"))
    summary = json.loads(art["summary"].read_text())
    assert summary["steps_done"] == 3 and summary["budget"]["steps"] == 20
    assert summary["convergence"]["stopped_early"] and summary["convergence"]["status"] == "converged"
    out = caplog.text
    assert "early stop after 2 steps (2 epochs) without a val mAP@0.5 better by more than 0.5" in out
    assert "converged: early stop at step 3 (epoch 3)" in out
    # the default early_stop_from 0.5: early stopping watches from epoch 11 (step 10)
    _, art = train(_cfg(tmp_path / "default", own_data, "budget.steps=20", "budget.warmup_steps=0",
                        "budget.patience_steps=2", "budget.min_delta=0.5"))
    assert json.loads(art["summary"].read_text())["steps_done"] == 13
    assert "early stop after 2 steps (2 epochs) without a val mAP@0.5 better by more than 0.5, watched from step 10" in caplog.text
