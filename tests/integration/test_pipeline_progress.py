"""Progress under the pipeline: a stage's `stage.log` records its log lines and a plain-text
record of its progress, while a terminal console keeps live Rich bars.

The first test runs a stand-in stage in-process with Rich's console as a terminal writing
into a buffer; the slow one runs the real baseline stage of `pipeline.py` on a
pseudo-terminal, as a user sees it.
"""

from __future__ import annotations

import io
import logging
import os
import pty
import select
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import rich
from hydra import compose, initialize_config_dir
from rich.console import Console

from yolo_slim.pipeline import STAGES, run_pipeline
from yolo_slim.progress import ConsoleHandler, track

ROOT = Path(__file__).resolve().parents[2]
DEMO_CFG = ROOT / "conf" / "model" / "cfg" / "yolov3-demo.cfg"
TINY = ["img_size=64", "device=cpu", "builtin.n_train=8", "builtin.n_val=4", "stages=[baseline]"]
TINY_TRAIN = ["loader.batch_size=4", "loader.num_workers=0", "trainer.enable_model_summary=false", "logger=csv",
              "trainer.max_epochs=1", "model.nominal_batch_size=4"]


def _train_overrides() -> str:
    return "train_overrides=[" + ",".join(f'"{o}"' for o in TINY_TRAIN) + "]"


def test_a_stage_logs_records_and_progress_to_stage_log_and_bars_to_the_terminal(tmp_path: Path, monkeypatch, caplog) -> None:
    import yolo_slim.pipeline.runner as runner

    def stand_in(ctx, stage, configs):
        logging.getLogger("yolo_slim.stand_in").info("stand-in %s working", stage)
        warnings.warn("a warning raised inside the stage", UserWarning, stacklevel=1)
        for _ in track(range(3), f"{stage}: work"):
            pass
        weights = ctx.stage_dir(stage) / "model.weights"
        weights.write_bytes(b"w")
        return {"metrics": {}, "artifacts": {"cfg": str(DEMO_CFG), "best_weights": str(weights)}}

    monkeypatch.setattr(runner, "RUNNERS", {name: stand_in for name in STAGES})
    monkeypatch.setattr(runner, "write_report", lambda ctx: ctx.run_dir / "REPORT.md")
    screen = io.StringIO()
    monkeypatch.setattr(rich, "_console", Console(file=screen, force_terminal=True, width=120))
    console = ConsoleHandler(screen)  # what conf/hydra/default.yaml gives every app
    console.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.addHandler(console)
    caplog.set_level(logging.INFO)  # as Hydra's job logging sets the root logger
    try:
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose("pipeline", overrides=[f"paths.root_dir={ROOT}", f"paths.data_dir={tmp_path / 'data'}", *TINY,
                                                 _train_overrides(), f"paths.output_dir={tmp_path / 'run'}"])
        run_pipeline(cfg)
    finally:
        root.removeHandler(console)
    log = (tmp_path / "run" / "01_baseline" / "stage.log").read_text()
    assert "stand-in baseline working" in log and "a warning raised inside the stage" in log
    assert "baseline: work: started (3 to do)" in log and "baseline: work: done, 3/3" in log
    assert "\x1b[" not in log
    shown = screen.getvalue()
    assert "pipeline: [baseline] starting (stage 1/1)" in shown and "stand-in baseline working" in shown
    assert "baseline: work" in shown and "━" in shown  # the live bar
    assert "baseline: work: started" not in shown  # the plain records stay off the terminal


def _run_on_a_terminal(argv: list[str], cwd: Path, timeout: float) -> tuple[int, str]:
    """Run `argv` with a pseudo-terminal as stdout and stderr; its exit status and everything it wrote."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "LINES": "40", "TERM": "xterm-256color"}
    env.pop("FORCE_COLOR", None)
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, cwd=cwd, env=env, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], timeout)
            if not ready:
                proc.kill()
                raise AssertionError("no output within the timeout: " + b"".join(chunks)[-2000:].decode(errors="replace"))
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_the_real_baseline_stage_on_a_terminal(tmp_path: Path) -> None:
    argv = [sys.executable, str(ROOT / "pipeline.py"), f"paths.log_dir={tmp_path / 'logs'}", f"paths.data_dir={tmp_path / 'data'}",
            *TINY, _train_overrides(), f"hydra.run.dir={tmp_path / 'run'}"]
    status, shown = _run_on_a_terminal(argv, tmp_path, timeout=600)
    assert status == 0, shown[-3000:]
    log = (tmp_path / "run" / "01_baseline" / "stage.log").read_text()
    assert "train: epoch 1/1 started (2 batches)" in log  # ProgressLog's plain record
    assert "epoch 1/1  train loss" in log and "results:" in log  # EpochSummary and the task's summary, as log records
    assert "\x1b[" not in log and "━" not in log
    assert "Epoch 0/0" in shown and "━" in shown  # Lightning's live Rich bar on the terminal
    assert "pipeline: [baseline] done" in shown and "train: epoch 1/1 started" not in shown
