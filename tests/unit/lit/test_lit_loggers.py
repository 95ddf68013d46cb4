"""AppendingCSVLogger: a resumed run keeps the rows from before its checkpoint, drops the
ones it logs again (no duplicates), survives a row cut short by a kill; a fresh run in
the same folder starts the file anew. The kill-and-resume run is tests/integration/test_resume_exact.py."""

from __future__ import annotations

import csv
from pathlib import Path

from yolo_slim.lit.loggers import AppendingCSVLogger


def _log(save_dir: Path, rows: list[tuple[int, dict[str, float]]]) -> None:
    logger = AppendingCSVLogger(save_dir, name="csv", version="")
    for step, metrics in rows:
        logger.log_metrics(metrics, step=step)
        logger.save()  # Lightning saves after every log_metrics
    logger.finalize("success")


def _read(save_dir: Path) -> list[dict[str, str]]:
    with (save_dir / "csv" / "metrics.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_resume_appends_and_drops_the_replayed_rows(tmp_path: Path) -> None:
    _log(tmp_path, [(s, {"train/loss": 10.0 - s, "epoch": s // 2}) for s in range(6)])  # killed after step 5
    _log(tmp_path, [(s, {"train/loss": 20.0 - s, "epoch": s // 2, "val/mAP50": 0.5}) for s in range(4, 8)])  # resumed at step 4
    rows = _read(tmp_path)
    assert [int(r["step"]) for r in rows] == list(range(8))
    assert [float(r["train/loss"]) for r in rows] == [10, 9, 8, 7, 16, 15, 14, 13]
    assert rows[0]["val/mAP50"] == "" and rows[-1]["val/mAP50"] == "0.5"  # the header widened, old rows kept
    assert list(rows[0]) == ["epoch", "step", "train/loss", "val/mAP50"]


def test_a_row_cut_short_by_a_kill_is_dropped(tmp_path: Path) -> None:
    _log(tmp_path, [(s, {"loss": float(s)}) for s in range(3)])
    path = tmp_path / "csv" / "metrics.csv"
    path.write_text(path.read_text() + "3,0.12")  # a kill mid-write: no newline
    _log(tmp_path, [(4, {"loss": 4.0})])
    assert [(r["step"], r["loss"]) for r in _read(tmp_path)] == [("0", "0.0"), ("1", "1.0"), ("2", "2.0"), ("4", "4.0")]


def test_a_fresh_run_starts_the_file_anew(tmp_path: Path) -> None:
    _log(tmp_path, [(s, {"loss": float(s)}) for s in range(5)])
    _log(tmp_path, [(0, {"loss": 9.0}), (1, {"loss": 8.0})])
    assert [(r["step"], r["loss"]) for r in _read(tmp_path)] == [("0", "9.0"), ("1", "8.0")]


def test_without_an_old_file_it_is_lightnings_logger(tmp_path: Path) -> None:
    _log(tmp_path, [(0, {"a": 1.0}), (1, {"a": 2.0, "b": 3.0})])
    assert [(r["step"], r["a"], r["b"]) for r in _read(tmp_path)] == [("0", "1.0", ""), ("1", "2.0", "3.0")]
    assert not list((tmp_path / "csv").glob(".*"))  # no temporary files left
