"""Kill training with SIGKILL after the first epoch's checkpoint, resume it in its own
folder with ckpt_path=, and require what an uninterrupted run gives: the same final
weights, the same per-epoch train loss, and a metrics.csv holding every epoch once.

Default data loaders: 2 persistent workers, mosaic and the other augmentations on.
The cheap test of the determinism itself is tests/unit/data/test_data_sampling.py.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tiny_runs import QUIET_CPU_TRAINER, TINY_DATA

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 3

pytestmark = pytest.mark.slow  # three training processes, about a minute on 2 cores


def _overrides(data_dir: Path, logs: Path) -> list[str]:
    """The tiny run with the default loader settings (num_workers and augmentation untouched)."""
    tiny = [o for o in TINY_DATA if "num_workers" not in o and "n_train" not in o and "n_val" not in o]
    return [
        f"paths.data_dir={data_dir}", f"paths.log_dir={logs}", *tiny, *QUIET_CPU_TRAINER,
        "builtin.n_train=32", "builtin.n_val=8", f"trainer.max_epochs={EPOCHS}", "trainer.deterministic=true",
        "seed=1", "budget.warmup_steps=4", "model.nominal_batch_size=8", "trainer.log_every_n_steps=1",
    ]


def _start(run_dir: Path, overrides: list[str]) -> subprocess.Popen:
    """train.py in its own process group (with its loader workers), so that the kill takes
    the whole job down as a crash or the OOM killer would: a killed parent's persistent
    workers can outlive it and keep the output pipe open."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={run_dir}", *overrides],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )


def _finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    return out


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "csv" / "metrics.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def _epoch_losses(rows: list[dict[str, str]]) -> dict[int, float]:
    return {int(r["epoch"]): float(r["train/loss_epoch"]) for r in rows if r.get("train/loss_epoch")}


def _first_epoch_logged(run_dir: Path) -> bool:
    """True once epoch 0's train loss row is in metrics.csv: Lightning logs it after
    saving that epoch's checkpoints, so last.ckpt is complete on disk by then."""
    try:
        return 0 in _epoch_losses(_rows(run_dir))
    except (FileNotFoundError, KeyError, ValueError):
        return False


def test_sigkill_and_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    overrides = _overrides(tmp_path / "data", tmp_path / "logs")
    straight_dir, killed_dir = tmp_path / "straight", tmp_path / "killed"
    straight = _start(straight_dir, overrides)
    killed = _start(killed_dir, overrides)
    deadline = time.monotonic() + 600
    while not _first_epoch_logged(killed_dir):
        assert killed.poll() is None, "the run to kill ended before its first epoch was logged"
        assert time.monotonic() < deadline, "no first epoch within 10 minutes"
        time.sleep(0.05)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    ckpt = killed_dir / "checkpoints" / "last.ckpt"
    killed_at = int(torch.load(ckpt, map_location="cpu", weights_only=True)["epoch"])
    assert killed_at < EPOCHS - 1, "the kill came too late to leave an epoch to resume"

    # resume in the same folder, as pipeline.py does after a kill
    resumed = _start(killed_dir, [*overrides, f"ckpt_path={ckpt}"])
    _finish(straight)
    _finish(resumed)

    a = torch.load(straight_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    b = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert int(a["epoch"]) == int(b["epoch"]) == EPOCHS - 1
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=0, atol=1e-6, msg=key)

    rows_a, rows_b = _rows(straight_dir), _rows(killed_dir)
    losses_a, losses_b = _epoch_losses(rows_a), _epoch_losses(rows_b)
    assert sorted(losses_a) == sorted(losses_b) == list(range(EPOCHS))
    for epoch in losses_a:
        assert losses_b[epoch] == pytest.approx(losses_a[epoch], rel=0, abs=1e-6), epoch
    # the resumed run appended: every row of the uninterrupted run once, none twice
    assert [(r["epoch"], r["step"]) for r in rows_b] == [(r["epoch"], r["step"]) for r in rows_a]
    for ra, rb in zip(rows_a, rows_b):
        for key, value in ra.items():
            if value:
                assert float(rb[key]) == pytest.approx(float(value), rel=0, abs=1e-6), key
