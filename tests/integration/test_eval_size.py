"""Issue #18: one input size wherever a model meets images.

A demo model trained at 96 px (its cfg says 160) is pruned without a size: prune.py
evaluates it at the size its model.cfg and checkpoint carry, so its unpruned row equals
the training run's own validation figure for that checkpoint; evaluated at the cfg's
original 160 px the figure differs, so the test could catch the bug it pins.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from app_configs import compose_config
from tiny_runs import QUIET_CPU_TRAINER
from yolo_slim.darknet.cfg import parse_cfg
from yolo_slim.prune.task import prune
from yolo_slim.train_task import train

SIZE = 96  # not the demo cfg's own 160
DATA = ["loader.batch_size=4", "loader.num_workers=0", "builtin.n_train=8", "builtin.n_val=8", "builtin.img_size=96", "eval.conf_thres=0.0001"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("size")
    cfg = compose_config("train", f"img_size={SIZE}", *DATA, *QUIET_CPU_TRAINER, "trainer.max_epochs=2", "model.nominal_batch_size=4",
                         f"paths.output_dir={tmp / 'run'}", f"paths.data_dir={tmp / 'data'}")
    _, artifacts = train(cfg)
    return {**artifacts, "tmp": tmp}


def _unpruned(trained: dict[str, Path], out: str, *extra: str) -> dict:
    cfg = compose_config("prune", f"model.cfg={trained['cfg']}", f"weights={trained['best_weights']}", *DATA, "latency_runs=1",
                         "prune.global_percent=0.3", f"paths.output_dir={trained['tmp'] / out}", f"paths.data_dir={trained['tmp'] / 'data'}", *extra)
    prune(cfg)
    return json.loads((trained["tmp"] / out / "report.json").read_text())


def test_prune_evaluates_at_the_trained_size_and_matches_training(trained) -> None:
    assert parse_cfg(trained["cfg"]).input_hw == (SIZE, SIZE)  # the run's model.cfg carries its training size
    rows = [r for r in csv.DictReader(trained["metrics_csv"].open()) if r.get("val/mAP50")]
    best = max(float(r["val/mAP50"]) for r in rows)  # best.weights is the epoch with the best val/mAP50
    report = _unpruned(trained, "prune")
    assert report["input_hw"] == [SIZE, SIZE]
    original = report["rows"]["original"]["mAP50"]
    assert best > 0  # the comparison is not between zeros
    assert original == pytest.approx(best, abs=1e-6)
    assert parse_cfg(trained["tmp"] / "prune" / "pruned.cfg").input_hw == (SIZE, SIZE)  # the pruned cfg keeps the size

    other = _unpruned(trained, "prune160", "img_size=160")  # what a 160 px evaluation (the old default) reports
    assert other["input_hw"] == [160, 160]
    assert other["rows"]["original"]["mAP50"] != pytest.approx(best, rel=1e-3)
