"""`yolo_slim.progress`: Rich bars on a terminal, plain-text records for the logs, one console handler."""

from __future__ import annotations

import io
import logging

import pytest
import rich
from rich.console import Console
from rich.live import Live

from yolo_slim import progress
from yolo_slim.progress import ConsoleHandler, Throttle, progress_task, track


@pytest.fixture
def terminal(monkeypatch) -> io.StringIO:
    """Rich's console as a terminal writing into a buffer."""
    buffer = io.StringIO()
    monkeypatch.setattr(rich, "_console", Console(file=buffer, force_terminal=True, width=120))
    return buffer


@pytest.fixture
def no_terminal(monkeypatch) -> io.StringIO:
    buffer = io.StringIO()
    monkeypatch.setattr(rich, "_console", Console(file=buffer, force_terminal=False, width=120))
    return buffer


def _records(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if getattr(r, "progress", False)]


def test_a_task_logs_its_start_its_progress_at_most_every_interval_and_its_end(caplog, no_terminal, monkeypatch) -> None:
    caplog.set_level(logging.INFO, logger="yolo_slim.progress")
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 3600.0)
    list(track(range(5), "eval"))
    assert _records(caplog)[0] == "eval: started (5 to do)"
    assert _records(caplog)[-1].startswith("eval: done, 5/5, ") and len(_records(caplog)) == 2
    caplog.clear()
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0.0)
    with progress_task("search", total=None) as task:
        task.advance(detail="p=0.5: mAP@0.5 0.31")
        task.advance()
    assert _records(caplog)[1:] == ["search: 1, 0.0 s; p=0.5: mAP@0.5 0.31", "search: 2, 0.0 s; p=0.5: mAP@0.5 0.31",
                                    "search: done, 2, 0.0 s"]
    assert no_terminal.getvalue() == ""  # no bar without a terminal


def test_named_steps_are_each_logged_and_counted(caplog, no_terminal) -> None:
    caplog.set_level(logging.INFO, logger="yolo_slim.progress")
    with progress_task("export") as steps:
        steps.set_total(2)
        steps.step("ONNX export")
        steps.step("ONNX Runtime against PyTorch")
    assert _records(caplog)[1:3] == ["export: step 1/2 ONNX export", "export: step 2/2 ONNX Runtime against PyTorch"]
    assert steps.completed == 2 and _records(caplog)[-1].startswith("export: done, 2/2")


def test_a_terminal_shows_one_live_display_for_nested_tasks(terminal) -> None:
    with progress_task("prune: search") as outer:
        shown = progress._DISPLAY.progress
        for _ in track(range(3), "prune: evaluate"):
            assert progress._DISPLAY.progress is shown and progress._DISPLAY.users == 2
        outer.advance()
    assert progress._DISPLAY.progress is None and progress._DISPLAY.users == 0
    assert "prune: search" in terminal.getvalue() and "prune: evaluate" in terminal.getvalue()


def test_another_live_display_leaves_the_task_without_a_bar(terminal, caplog) -> None:
    caplog.set_level(logging.INFO, logger="yolo_slim.progress")
    with Live("Lightning's bar", console=rich.get_console()):
        list(track(range(2), "val"))
    assert progress._DISPLAY.progress is None
    assert _records(caplog)[-1].startswith("val: done, 2/2")


def test_throttle_is_due_first_then_after_its_interval(monkeypatch) -> None:
    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    throttle = Throttle(10.0)
    assert throttle.due() and not throttle.due()
    now[0] += 10.0
    assert throttle.due()


def _handler(stream) -> ConsoleHandler:
    handler = ConsoleHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    return handler


def _emit(handler: ConsoleHandler, message: str, progress_record: bool) -> None:
    record = logging.LogRecord("yolo_slim.x", logging.INFO, __file__, 1, message, (), None)
    if progress_record:
        record.progress = True
    handler.emit(record)


def test_the_console_handler_on_a_terminal_prints_through_rich_and_drops_progress_records(terminal) -> None:
    handler = _handler(rich.get_console().file)
    _emit(handler, "epoch 1/2 train loss 3.1", progress_record=False)
    _emit(handler, "train: epoch 1/2 batch 3/9", progress_record=True)
    assert terminal.getvalue() == "INFO epoch 1/2 train loss 3.1\n"


def test_the_console_handler_elsewhere_writes_every_record(no_terminal) -> None:
    stream = io.StringIO()
    handler = _handler(stream)
    _emit(handler, "epoch 1/2", progress_record=False)
    _emit(handler, "train: batch 3/9", progress_record=True)
    assert stream.getvalue() == "INFO epoch 1/2\nINFO train: batch 3/9\n"
