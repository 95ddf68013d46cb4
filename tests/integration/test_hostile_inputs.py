"""Every hostile input of `hostile_cases.ROWS` gives one clear line: no traceback, no
silent success, no partial file in the output folder. See hostile_cases.py to add rows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hostile_cases import ROWS, TINY_CFG, Row, Workspace
from hydra import compose, initialize_config_dir
from tiny_runs import QUIET_CPU_TRAINER, TINY_DATA

from yolo_slim.errors import YoloSlimError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ir_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid IR of TINY_CFG (exported once, with the fast exporter) for the IR rows to damage."""
    from app_configs import compose_config

    from yolo_slim.export.task import export

    root = tmp_path_factory.mktemp("ir")
    (root / "net.cfg").write_text(TINY_CFG)
    export(compose_config("export", f"model.cfg={root / 'net.cfg'}", "img_size=64", "export.exporter=torchscript",
                          "export.formats=[openvino]", f"paths.output_dir={root / 'ir'}"))
    return root / "ir"


def _new_files(folder: Path) -> list[str]:
    """Files in `folder` except Hydra's own (.hydra/, the job log)."""
    if not folder.exists():
        return []
    return sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*")
        if p.is_file() and ".hydra" not in p.parts and p.suffix != ".log"
    )


def _one_line(message: str, row: Row) -> None:
    assert "Traceback" not in message, message
    lines = [line for line in message.strip().splitlines() if line.strip()]
    assert len(lines) == 1, f"{row.id}: expected one line, got {len(lines)}:\n{message}"
    assert re.search(row.expect, lines[0]), f"{row.id}: {lines[0]!r} does not match {row.expect!r}"


def _task_overrides(row: Row, w: Workspace) -> tuple[str, list[str]]:
    common = [f"paths.root_dir={ROOT}", f"paths.output_dir={w.out}", f"paths.log_dir={w.root / 'logs'}", f"paths.data_dir={w.root / 'data'}"]
    if row.via == "export":
        return "export", [*common, "export.exporter=torchscript"]
    if row.via == "prune":
        return "prune", [*common, "data=none", "latency_runs=1"]
    return "train", [*common, *TINY_DATA, *QUIET_CPU_TRAINER, "trainer.max_epochs=1"]


def _run_task(row: Row, w: Workspace) -> str:
    app, base = _task_overrides(row, w)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(app, overrides=[*base, *row.make(w)])
    if app == "export":
        from yolo_slim.export.task import export as task
    elif app == "prune":
        from yolo_slim.prune.task import prune as task
    else:
        from yolo_slim.train_task import train as task
    with pytest.raises(YoloSlimError) as info:
        task(cfg)
    return str(info.value)


def _run_script(row: Row, w: Workspace) -> str:
    args = [str(a) for a in row.make(w)]
    if args[0].endswith(".py"):
        args = [str(ROOT / args[0]), f"hydra.run.dir={w.root / 'run'}", *args[1:]]
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 2, f"{row.id}: exit status {done.returncode}\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    return errors[0]


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_hostile_input_gives_one_clear_line(row: Row, tmp_path: Path, capsys, request: pytest.FixtureRequest) -> None:
    needs_ir = "IR" in row.id
    w = Workspace(tmp_path, request.getfixturevalue("ir_dir") if needs_ir else None)
    if row.via == "yolo_slim":
        from yolo_slim.__main__ import main

        argv = [str(a) for a in row.make(w)]
        capsys.readouterr()
        assert main(argv) == 2, f"{row.id}: not refused"
        captured = capsys.readouterr()
        assert captured.err.startswith("error: ")
        message = captured.err
    elif row.via == "load":
        call = row.make(w)
        with pytest.raises(YoloSlimError) as info:
            call()
        message = str(info.value)
    elif row.via in ("export", "prune", "train"):
        message = _run_task(row, w)
    elif row.via == "script":
        message = _run_script(row, w)
    else:
        raise AssertionError(f"{row.id}: unknown via {row.via!r}")
    _one_line(message, row)
    assert _new_files(w.out) == [] and _new_files(w.root / "run") == [], f"{row.id}: partial outputs left"
    if row.via == "script":  # nor a run folder holding only Hydra's own files
        assert not (w.root / "run").exists(), f"{row.id}: an unused run dir left: {sorted(p.name for p in (w.root / 'run').iterdir())}"
    assert not (tmp_path / "pwned").exists(), f"{row.id}: a checkpoint's code ran"


def test_the_table_is_large_and_its_ids_unique() -> None:
    assert len(ROWS) >= 45
    assert len({r.id for r in ROWS}) == len(ROWS)
    assert {r.via for r in ROWS} == {"yolo_slim", "load", "export", "prune", "train", "script"}
