"""Atomic writes, temporary paths and staged outputs: nothing half-written survives an
error or an interrupt, and file modes follow the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from yolo_slim.io.atomic import temporary_path, write_atomic
from yolo_slim.io.staging import staged_outputs


@pytest.fixture
def umask():
    """Set the process umask for one test (restored afterwards)."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path: Path, umask, mask: int, mode: int) -> None:
    umask(mask)
    path = write_atomic(tmp_path / "out" / "meta.json", "{}\n")
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert path.read_text() == "{}\n"
    with staged_outputs(tmp_path / "out") as stage:
        write_atomic(stage.path / "report.md", "# r\n")
        (kept,) = stage.commit()
    assert stat.S_IMODE(kept.stat().st_mode) == mode


def test_model_files_follow_the_umask(tmp_path: Path, umask) -> None:
    """.cfg, .weights and .ckpt go through the same writer."""
    from yolo_slim.model import Darknet

    umask(0o022)
    model = Darknet.from_cfg("yolov3-tiny", classes=1, img_size=64)
    from yolo_slim.io.checkpoint import write_model_checkpoint

    written = [model.to_cfg(tmp_path / "m.cfg"), model.save_darknet_weights(tmp_path / "m.weights"),
               write_model_checkpoint(tmp_path / "m.ckpt", model.state_dict(), "x")]
    assert [stat.S_IMODE(p.stat().st_mode) for p in written] == [0o644] * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.cfg", "m.ckpt", "m.weights"]


@pytest.mark.parametrize("stop", [RuntimeError("exporter failed"), KeyboardInterrupt(), SystemExit(1)])
def test_temporary_path_and_its_siblings_go_whatever_ends_the_block(tmp_path: Path, stop: BaseException) -> None:
    target = tmp_path / "model.onnx"
    with pytest.raises(type(stop)):
        with temporary_path(target, suffix=".onnx") as tmp:
            assert tmp.is_file() and tmp.parent == tmp_path and tmp.name.startswith(".model.onnx.")
            Path(f"{tmp}.data").write_bytes(b"external data an exporter adds")
            raise stop
    assert list(tmp_path.iterdir()) == []


def test_temporary_path_kept_when_moved(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    with temporary_path(target) as tmp:
        tmp.write_bytes(b"onnx")
        os.replace(tmp, target)
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
    with temporary_path(tmp_path / "dir", create=False) as reserved:
        assert not reserved.exists()
        reserved.mkdir()
        (reserved / "x").write_text("x")
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_write_atomic_keeps_the_old_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_atomic(tmp_path / "a.txt", "old")

    def broken_replace(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, "new")
    monkeypatch.undo()
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_staged_outputs_commit_all_or_nothing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "model.xml").write_text("old xml")
    with staged_outputs(out) as stage:
        write_atomic(stage.path / "model.bin", b"bin")
        write_atomic(stage.path / "model.xml", "new xml")
        write_atomic(stage.path / "fp32" / "model.xml", "fp32 xml")
        assert stage.final(stage.path / "fp32" / "model.xml") == out / "fp32" / "model.xml"
        moved = stage.commit()
    assert [p.relative_to(out).as_posix() for p in moved] == ["model.bin", "fp32/model.xml", "model.xml"]  # xml after bin
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["fp32", "fp32/model.xml", "model.bin", "model.xml"]
    assert (out / "model.xml").read_text() == "new xml"


@pytest.mark.parametrize("stop", [ValueError("parity check failed"), KeyboardInterrupt()])
def test_staged_outputs_leave_the_folder_as_it_was(tmp_path: Path, stop: BaseException) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "model.xml").write_text("old xml")
    with pytest.raises(type(stop)):
        with staged_outputs(out) as stage:
            write_atomic(stage.path / "model.onnx", b"onnx")
            write_atomic(stage.path / "model.xml", "new xml")
            raise stop
    assert [p.name for p in out.iterdir()] == ["model.xml"] and (out / "model.xml").read_text() == "old xml"


def test_staged_commit_of_a_subset(tmp_path: Path) -> None:
    with staged_outputs(tmp_path) as stage:
        keep = write_atomic(stage.path / "model.xml", "xml")
        write_atomic(stage.path / "model.onnx", b"intermediate")
        stage.commit([keep])
    assert [p.name for p in tmp_path.iterdir()] == ["model.xml"]
