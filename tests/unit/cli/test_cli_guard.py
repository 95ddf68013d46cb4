"""`run_command`: a user error is one line and exit 2, Ctrl-C / SIGTERM / SIGHUP one line
and exit 130 / 143 / 129, clean-up runs on every path, and the old handlers return."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from yolo_slim.cli.guard import Interrupted, command_status, run_command
from yolo_slim.errors import CfgError
from yolo_slim.io.atomic import write_atomic
from yolo_slim.io.staging import staged_outputs


def test_user_error_is_one_line_and_exit_2(capsys) -> None:
    def body():
        raise CfgError("net.cfg:7: [convolutional] filters: expected an integer")

    with pytest.raises(SystemExit) as info:
        run_command(body, "train")
    assert info.value.code == 2
    assert capsys.readouterr().err == "error: net.cfg:7: [convolutional] filters: expected an integer\n"


def test_on_error_replaces_the_exit() -> None:
    seen = []
    assert run_command(lambda: (_ for _ in ()).throw(CfgError("bad")), "prune", on_error=seen.append) is None
    assert [str(e) for e in seen] == ["bad"]


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_cleans_up_and_exits_with_one_line(tmp_path: Path, capsys, signum: int, code: int) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}

    def body():
        with staged_outputs(tmp_path) as stage:
            write_atomic(stage.path / "model.onnx", b"half")
            os.kill(os.getpid(), signum)  # delivered here, in the main thread
            stage.commit()

    with pytest.raises(SystemExit) as info:
        run_command(body, "export")
    assert info.value.code == code
    name = signal.Signals(signum).name
    assert capsys.readouterr().err == f"export: interrupted by {name}; temporary files removed, no partial outputs written\n"
    assert list(tmp_path.iterdir()) == []
    assert {s: signal.getsignal(s) for s in before} == before


def test_lightnings_exit_after_a_signal_is_reported_as_the_signal(capsys) -> None:
    """Lightning turns Ctrl-C inside fit into its own teardown and sys.exit(1)."""

    def fit():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        except KeyboardInterrupt:
            raise SystemExit(1) from None

    with pytest.raises(SystemExit) as info:
        run_command(fit, "train")
    assert info.value.code == 143 and "train: interrupted by SIGTERM" in capsys.readouterr().err


def test_a_guard_inside_a_guard_reports_the_signal_once(capsys) -> None:
    """prune.py's job guard runs inside the app's guard: one line, not two."""
    with pytest.raises(SystemExit) as info:
        run_command(lambda: run_command(lambda: os.kill(os.getpid(), signal.SIGTERM), "prune"), "prune")
    assert info.value.code == 143
    assert capsys.readouterr().err == "prune: interrupted by SIGTERM; temporary files removed, no partial outputs written\n"


def test_other_exits_pass_through() -> None:
    with pytest.raises(SystemExit) as info:
        run_command(lambda: (_ for _ in ()).throw(SystemExit(3)), "detect")
    assert info.value.code == 3
    assert run_command(lambda: 5, "x") == 5


def test_interrupted_is_a_keyboard_interrupt() -> None:
    assert issubclass(Interrupted, KeyboardInterrupt) and Interrupted(signal.SIGTERM).signum == signal.SIGTERM


def test_command_status_returns_the_code(capsys) -> None:
    assert command_status(lambda: 0, "yolo_slim info") == 0
    assert command_status(lambda: (_ for _ in ()).throw(CfgError("bad")), "yolo_slim info") == 2

    def stopped() -> int:
        raise KeyboardInterrupt

    assert command_status(stopped, "yolo_slim info") == 130
    assert capsys.readouterr().err.splitlines() == ["error: bad", "yolo_slim info: interrupted by SIGINT; temporary files removed, no partial outputs written"]


def test_a_child_forked_inside_the_guard_gets_the_default_signal_actions() -> None:
    """A library's forked helper (OpenVINO's telemetry sender) must die on the parent's
    terminate() even when it is blocked where no Python handler can run."""
    import os
    import signal

    from yolo_slim.cli.guard import interrupts_raise

    with interrupts_raise():
        pid = os.fork()
        if pid == 0:  # the child: report what SIGTERM would do, then leave at once
            os._exit(0 if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL else 1)
        _, status = os.waitpid(pid, 0)
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # the parent keeps its handler
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_signal_during_a_held_import_is_delivered_after_it(capsys) -> None:
    """A Ctrl-C while a C extension initialises waits until the import is done."""
    from yolo_slim.cli.guard import signals_held

    order = []

    def body():
        with signals_held():
            os.kill(os.getpid(), signal.SIGINT)
            order.append("import finished")
        order.append("not reached")

    with pytest.raises(SystemExit) as info:
        run_command(body, "export", preload=["json"])
    assert info.value.code == 130 and order == ["import finished"]
    assert "export: interrupted by SIGINT" in capsys.readouterr().err
