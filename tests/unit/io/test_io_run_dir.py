"""A command stopped by a user error leaves no run folder that holds only Hydra's files."""

from __future__ import annotations

from pathlib import Path

from yolo_slim.io.run_dir import discard_unused_run_dir


def _hydra_run_dir(path: Path) -> Path:
    (path / ".hydra").mkdir(parents=True)
    (path / ".hydra" / "config.yaml").write_text("a: 1\n")
    (path / "train.log").write_text("error\n")
    return path


def test_an_unused_run_dir_and_the_parents_it_empties_go(tmp_path: Path) -> None:
    logs = tmp_path / "outputs"
    run = _hydra_run_dir(logs / "train" / "my_run" / "runs" / "2026-12-04_20-00-00")
    (logs / "pipeline").mkdir()
    assert discard_unused_run_dir(run, logs)
    assert not (logs / "train").exists()  # runs/, my_run/ and train/ were left empty
    assert (logs / "pipeline").is_dir() and logs.is_dir()


def test_a_run_dir_with_work_in_it_stays(tmp_path: Path) -> None:
    logs = tmp_path / "outputs"
    for extra in ("01_baseline/stage.json", "error.json", "checkpoints/last.ckpt"):
        run = _hydra_run_dir(logs / "pipeline" / extra.split("/")[0].replace(".", "_"))
        (run / extra).parent.mkdir(parents=True, exist_ok=True)
        (run / extra).write_text("{}")
        assert not discard_unused_run_dir(run, logs), extra
        assert (run / extra).is_file() and (run / ".hydra" / "config.yaml").is_file()


def test_a_sibling_run_keeps_the_shared_parent(tmp_path: Path) -> None:
    logs = tmp_path / "outputs"
    failed = _hydra_run_dir(logs / "train" / "r" / "runs" / "b")
    kept = logs / "train" / "r" / "runs" / "a"
    kept.mkdir()
    (kept / "best.weights").write_bytes(b"\0")
    assert discard_unused_run_dir(failed, logs)
    assert not failed.exists() and (kept / "best.weights").is_file()


def test_a_run_dir_outside_the_log_dir_goes_alone(tmp_path: Path) -> None:
    run = _hydra_run_dir(tmp_path / "elsewhere" / "run")
    assert discard_unused_run_dir(run, tmp_path / "outputs")
    assert not run.exists() and (tmp_path / "elsewhere").is_dir()
    assert not discard_unused_run_dir(tmp_path / "missing", tmp_path / "outputs")
