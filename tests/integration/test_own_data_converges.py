"""A hundred small-object images (the aerial preset, at a smaller size for speed) train from scratch
with the budget that follows the data, fitted anchors and early stopping, to a model that learned
and converged: early stopping, not the cap, ends the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from tiny_runs import QUIET_CPU_TRAINER

from yolo_slim.train_task import train

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_hundred_aerial_tiles_train_to_convergence(tmp_path: Path) -> None:
    overrides = [
        f"paths.root_dir={ROOT}", f"paths.output_dir={tmp_path / 'run'}", f"paths.log_dir={tmp_path / 'logs'}",
        f"paths.data_dir={tmp_path / 'data'}", "data=builtin", "builtin.preset=aerial", "builtin.img_size=320",
        "img_size=160", *QUIET_CPU_TRAINER,
    ]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    _, art = train(cfg)
    summary = json.loads(art["summary"].read_text())
    budget, conv = summary["budget"], summary["convergence"]
    assert budget["origin"]["steps"] == "auto" and budget["data"]["images"] == 100
    assert summary["anchors"]["used"] == "fitted"
    assert conv["stopped_early"] and conv["status"] == "converged", conv["verdict"]
    assert summary["steps_done"] < budget["steps"]
    assert conv["best_map50"] > 0.15, conv["verdict"]  # it learned the vehicles, not just the background
