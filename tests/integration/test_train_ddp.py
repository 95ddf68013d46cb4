"""DDP on CPU: `python train.py trainer=ddp` with 2 gloo processes, launched through Hydra.

Checks one set of outputs (rank 0, one Hydra run dir) and that the validation metrics
are synced: they equal a single-process validation of the saved checkpoint on the
whole validation set.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl

from yolo_slim.data import YoloDataModule
from yolo_slim.lit.module import YoloLitModule

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_ddp_two_cpu_processes_write_one_run_with_synced_metrics(tmp_path: Path) -> None:
    data = ["img_size=64", "loader.batch_size=2", "loader.num_workers=0", "loader.cache=true", "builtin.n_train=8", "builtin.n_val=8"]
    cmd = [
        sys.executable, str(ROOT / "train.py"), "trainer=ddp", "trainer.devices=2", "device=cpu",
        "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
        "logger=csv", f"paths.log_dir={tmp_path / 'logs'}",
        f"paths.data_dir={tmp_path / 'data'}", "eval.conf_thres=0.0001", *data,
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = list((tmp_path / "logs" / "train" / "demo_baseline" / "runs").iterdir())
    assert len(runs) == 1, runs  # the second rank reused rank 0's run dir
    run = runs[0]
    assert proc.stdout.count("results:") == 1 and proc.stdout.count("epoch 1/1") == 1
    for name in ("checkpoints/last.ckpt", "checkpoints/best.ckpt", "last.weights", "best.weights", "model.cfg", "csv/metrics.csv"):
        assert (run / name).is_file(), name
    rows = [r for r in csv.DictReader((run / "csv" / "metrics.csv").open()) if r.get("val/loss")]
    # val/obj is a mean over every cell, so it does not depend on how images are batched
    # (box and cls are means over each batch's positives, which the DDP sampler regroups)
    keys = ("val/obj", "val/precision", "val/recall", "val/mAP50", "val/mAP50_95")
    logged = {k: float(rows[-1][k]) for k in keys}

    # single process, whole validation set, same EMA weights
    lit = YoloLitModule.load_from_checkpoint(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    lit.hparams.val["conf_thres"] = 0.0001
    dm = YoloDataModule(data="builtin", img_size=64, batch_size=2, num_workers=0, cache=True,
                        builtin={"n_train": 8, "n_val": 8, "img_size": 64}, cache_dir=tmp_path / "data")
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False)
    single = trainer.validate(lit, datamodule=dm, verbose=False)[0]
    assert logged["val/recall"] > 0  # the comparison is not between zeros
    for key, value in logged.items():
        assert value == pytest.approx(single[key], abs=1e-5), key
