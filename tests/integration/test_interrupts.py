"""Ctrl-C and SIGTERM leave no debris: not in the output folder, not in the system temp
folder; the command prints one line and exits 130 / 143.

Export is interrupted from outside while it runs (the signal arrives once its staging
folder exists, i.e. while the ONNX export writes). Prune and train's darknet export are
interrupted from inside at the worst moment, while their temporary files exist
(`interrupt_hook.py`), so the test does not depend on timing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_runs import QUIET_CPU_TRAINER, TINY_DATA

ROOT = Path(__file__).resolve().parents[2]
HOOK = Path(__file__).resolve().parent / "interrupt_hook.py"


def _env(tmp: Path) -> dict[str, str]:
    tmp.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1"}


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) if folder.exists() else []


def _temp_debris(tmp: Path) -> list[str]:
    """What a command left in its TMPDIR, less torch's compile cache, which importing
    Lightning creates there on every run (``torchinductor_<user>``, not a leftover)."""
    return [f for f in _files(tmp) if not f.startswith("torchinductor_")]


def _check_one_line(stderr: str, command: str, signum: int) -> None:
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert lines[-1] == f"{command}: interrupted by {signal.Signals(signum).name}; temporary files removed, no partial outputs written", stderr[-3000:]
    assert sum("interrupted" in line for line in lines) == 1


def _wait_for(proc: subprocess.Popen, ready, what: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the command ended before {what}: {proc.returncode}\n{err[-3000:]}")
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.02)


@pytest.mark.parametrize("signum", [pytest.param(signal.SIGINT, id="SIGINT"), pytest.param(signal.SIGTERM, id="SIGTERM", marks=pytest.mark.slow)])
def test_interrupted_export_leaves_no_debris(tmp_path: Path, signum: int) -> None:
    out, run, tmp = tmp_path / "out", tmp_path / "run", tmp_path / "tmp"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "export.py"), "model.cfg=yolov4-tiny", "model.classes=2", "img_size=64",
         f"paths.output_dir={out}", f"hydra.run.dir={run}"],
        cwd=ROOT, env=_env(tmp), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    _wait_for(proc, lambda: any(p.name.startswith(".staging.") for p in out.glob(".*")), "the staging folder")
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signum, err[-3000:]
    _check_one_line(err, "export", signum)
    assert _files(out) == []
    assert _temp_debris(tmp) == []


def _hooked(tmp: Path, name: str, signame: str, script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(HOOK), name, signame, str(ROOT / script), *args],
        cwd=ROOT, env=_env(tmp), capture_output=True, text=True, timeout=600,
    )


@pytest.mark.slow
def test_prune_interrupted_while_writing_leaves_nothing(tmp_path: Path) -> None:
    run, tmp = tmp_path / "run", tmp_path / "tmp"
    done = _hooked(tmp, "report.json", "SIGTERM", "prune.py", "model.cfg=yolov4-tiny", "model.classes=2", "data=none",
                   "img_size=64", "latency_runs=1", f"hydra.run.dir={run}", f"paths.output_dir={run}")
    assert done.returncode == 143, done.stderr[-3000:]
    _check_one_line(done.stderr, "prune", signal.SIGTERM)
    assert [f for f in _files(run) if not f.startswith(".hydra") and not f.endswith(".log")] == []  # no plan, cfg, weights, staging
    assert _temp_debris(tmp) == []


@pytest.mark.slow
def test_train_interrupted_in_its_darknet_export_leaves_no_temporary_files(tmp_path: Path) -> None:
    run, tmp = tmp_path / "run", tmp_path / "tmp"
    done = _hooked(tmp, "last.weights", "SIGINT", "train.py", f"hydra.run.dir={run}", f"paths.data_dir={tmp_path / 'data'}",
                   f"paths.log_dir={tmp_path / 'logs'}", *TINY_DATA, *QUIET_CPU_TRAINER, "trainer.max_epochs=1")
    assert done.returncode == 130, done.stderr[-3000:]
    _check_one_line(done.stderr, "train", signal.SIGINT)
    written = _files(run)
    assert "model.cfg" in written and "checkpoints/last.ckpt" in written  # complete files stay
    assert "last.weights" not in written and not [f for f in written if ".tmp" in f]
    assert _temp_debris(tmp) == []
