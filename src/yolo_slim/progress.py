"""Live progress of long commands: Rich bars on a terminal, plain-text records in the logs.

`progress_task(description, total)` and `track(items, description)` draw a Rich progress
bar when the console is a terminal (Rich's own test, `rich.get_console().is_terminal`, so
``FORCE_COLOR`` forces it); nested tasks share one live display. Whatever the console,
they also log plain-text records of progress to the ``yolo_slim.progress`` logger: when a
task starts, at most every `LOG_INTERVAL_S` seconds while it runs (every step for named
steps) and when it ends. Those records carry ``progress=True``.

`ConsoleHandler` is the console handler of every app (`conf/hydra/default.yaml`): on a
terminal it prints log lines through Rich's console, above the live bars (Lightning's
`RichProgressBar` included) instead of through them, and leaves out the progress records
the bars already show. Every other handler (the run's `<app>.log`, a pipeline stage's
`stage.log`, the console when it is a pipe or a file) writes them, so a log says how far
a command got.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

LOG_INTERVAL_S = 15.0
"""Seconds between two plain-text progress records of one task."""

progress_log = logging.getLogger("yolo_slim.progress")


def live_console() -> bool:
    """Whether progress shows as live Rich bars: the console is a terminal (or forced to act as one)."""
    from rich import get_console

    return get_console().is_terminal


def log_progress(message: str, *args: Any) -> None:
    """Log one plain-text progress record (``progress=True``; see the module docstring)."""
    progress_log.info(message, *args, extra={"progress": True})


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


class Throttle:
    """True at most once every `interval` seconds (the first call is due).

    Args:
        interval: seconds; None reads `LOG_INTERVAL_S` at each call.
    """

    def __init__(self, interval: float | None = None) -> None:
        self.interval = interval
        self._last: float | None = None

    def due(self) -> bool:
        now = time.monotonic()
        interval = LOG_INTERVAL_S if self.interval is None else self.interval
        if self._last is not None and now - self._last < interval:
            return False
        self._last = now
        return True


class _Display:
    """The one live Rich display of this process, shared by nested tasks."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.progress = None
        self.users = 0

    def open(self):
        """The shared `rich.progress.Progress`, started on first use; None without a terminal or
        while another live display (e.g. Lightning's bar) holds the console."""
        from rich.errors import LiveError
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        with self.lock:
            if self.progress is None:
                if not live_console():
                    return None
                progress = Progress(
                    TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[detail]}"),
                )
                try:
                    progress.start()
                except LiveError:
                    return None
                self.progress = progress
            self.users += 1
            return self.progress

    def close(self) -> None:
        with self.lock:
            self.users -= 1
            if self.users == 0 and self.progress is not None:
                self.progress.stop()
                self.progress = None


_DISPLAY = _Display()


class ProgressTask:
    """One task of `progress_task`: advance it by units or by named steps.

    Attributes:
        description: what it does, e.g. ``prune: evaluate original``.
        total: units to do (None: unknown).
        completed: units done.
    """

    def __init__(self, description: str, total: int | None, progress: Any) -> None:
        self.description = description
        self.total = total
        self.completed = 0
        self.detail = ""
        self._step: str | None = None
        self._progress = progress
        self._id = progress.add_task(description, total=total, detail="") if progress is not None else None
        self._start = time.monotonic()
        self._throttle = Throttle()
        self._throttle.due()  # the start record is logged by progress_task

    def _bar(self, **fields: Any) -> None:
        if self._progress is not None:
            self._progress.update(self._id, **fields)

    def _state(self) -> str:
        elapsed = time.monotonic() - self._start
        done = f"{self.completed}/{self.total}" if self.total else f"{self.completed}"
        if self.total and 0 < self.completed < self.total:
            left = elapsed * (self.total - self.completed) / self.completed
            done += f" ({100 * self.completed / self.total:.0f}%), {_duration(elapsed)}, ~{_duration(left)} left"
        else:
            done += f", {_duration(elapsed)}"
        return done + (f"; {self.detail}" if self.detail else "")

    def set_total(self, total: int | None) -> None:
        """The number of units (or steps), once known."""
        self.total = total
        self._bar(total=total)

    def advance(self, n: int = 1, detail: str | None = None) -> None:
        """`n` more units done; `detail` is a short note shown beside the bar and in the record."""
        self.completed += n
        if detail is not None:
            self.detail = detail
        self._bar(completed=self.completed, detail=self.detail)
        if self._throttle.due():
            log_progress("%s: %s", self.description, self._state())

    def step(self, name: str) -> None:
        """Start the named step `name` (the previous step counts as done); always logged."""
        if self._step is not None:
            self.completed += 1
        self._step = self.detail = name
        self._bar(completed=self.completed, detail=name)
        where = f"{self.completed + 1}/{self.total}" if self.total else f"{self.completed + 1}"
        log_progress("%s: step %s %s", self.description, where, name)

    def finish(self) -> None:
        """Mark the task done (the current named step too) and log its final record."""
        if self._step is not None:
            self.completed += 1
            self._step = None
        self._bar(completed=self.completed, detail="")
        self.detail = ""
        log_progress("%s: done, %s", self.description, self._state())


@contextmanager
def progress_task(description: str, total: int | None = None) -> Iterator[ProgressTask]:
    """A task with a live bar (on a terminal) and plain-text progress records (always).

    Args:
        description: what the task does, e.g. ``export`` or ``prune: evaluate original``.
        total: units (batches, images, steps) to do; None when unknown.

    Yields:
        The `ProgressTask` to advance.
    """
    progress = _DISPLAY.open()
    task = ProgressTask(description, total, progress)
    log_progress("%s: started%s", description, f" ({total} to do)" if total else "")
    try:
        yield task
        task.finish()
    finally:
        if progress is not None:
            progress.remove_task(task._id)
            _DISPLAY.close()


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate `items` with a `progress_task` (total: `len(items)` when it has one)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with progress_task(description, total) as task:
        for item in items:
            yield item
            task.advance()


class ConsoleHandler(logging.StreamHandler):
    """The console handler of the apps: log lines that share a terminal with live progress bars.

    On a terminal (its stream is Rich's console file and that is a terminal) it prints
    each line through Rich's console, which puts it above any live display, and leaves
    out the plain-text progress records (``progress=True``) that the bars show. On
    anything else it is a plain `logging.StreamHandler` and writes every record.
    """

    def _on_terminal(self) -> bool:
        from rich import get_console

        console = get_console()
        return self.stream is console.file and console.is_terminal

    def emit(self, record: logging.LogRecord) -> None:
        if not self._on_terminal():
            super().emit(record)
            return
        if getattr(record, "progress", False):
            return
        try:
            from rich import get_console

            get_console().print(self.format(record), markup=False, highlight=False, emoji=False, soft_wrap=True)
        except Exception:  # noqa: BLE001 - logging's contract: report through handleError, never raise
            self.handleError(record)
