"""How every command ends: one line for a user's mistake or an interrupt, never a traceback.

`run_command(body, "export")` runs a command's body (the task call) with SIGTERM and
SIGHUP turned into exceptions, like Ctrl-C already is, so the clean-up of every
temporary file and staging folder (`yolo_slim.io.atomic.temporary_path`,
`yolo_slim.io.staging.staged_outputs`) runs whichever way a command is stopped. Then:

- a `YoloSlimError` prints ``error: <message>`` and exits 2;
- Ctrl-C, SIGTERM or SIGHUP prints ``export: interrupted by SIGINT; ...`` and exits
  128 + the signal number (130, 143, 129), as shells report a killed command.

Lightning catches Ctrl-C inside ``Trainer.fit`` itself (it tears down and calls
``sys.exit(1)``); the guard knows a signal arrived and reports it the same way.
SIGKILL cannot be caught: nothing can clean up after it, which is why every output is
written to a temporary name first and renamed when complete.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import NoReturn, TypeVar

from yolo_slim.errors import YoloSlimError

T = TypeVar("T")
_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
_received: list[int] = []


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread when SIGTERM or SIGHUP arrives (Ctrl-C raises KeyboardInterrupt).

    A subclass of KeyboardInterrupt, so code that treats Ctrl-C specially (Lightning's
    graceful shutdown, DataLoader workers) treats these signals the same way.

    Attributes:
        signum: the signal that arrived.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _handler(signum: int, frame: object) -> None:
    _received.append(signum)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Interrupted(signum)


def _plain_signals_in_child() -> None:
    """In a child forked inside the block (a library's `multiprocessing.Process`, e.g.
    OpenVINO's telemetry sender): the default actions again. A fork taken while another
    thread held a lock can leave the child blocked on it, where a Python-level handler
    never runs, so the parent's `terminate()` (SIGTERM) would not end it and the parent
    would wait for it at exit forever."""
    for signum in _SIGNALS:
        if signal.getsignal(signum) is _handler:
            signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)


_at_fork_registered: list[bool] = []


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP raise in the main thread.

    Outside the main thread (where Python cannot set handlers) the block runs unchanged.
    The previous handlers come back when the block ends.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if not _at_fork_registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_plain_signals_in_child)
        _at_fork_registered.append(True)
    del _received[:]
    with _handling(_handler):
        yield


@contextlib.contextmanager
def _handling(handler: Callable[[int, object], None]) -> Iterator[None]:
    """`handler` for SIGINT, SIGTERM and SIGHUP within the block (main thread only); the
    previous handlers come back when it ends."""
    previous = {signum: signal.getsignal(signum) for signum in _SIGNALS}
    for signum in _SIGNALS:
        signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)


class InterruptedExit(SystemExit):
    """The exit after an interrupt's line was printed (an enclosing `run_command` passes it on)."""


def interrupted_exit(name: str, signum: int) -> NoReturn:
    """Print the one line of an interrupted command and exit 128 + `signum`."""
    print(
        f"{name}: interrupted by {signal.Signals(signum).name}; temporary files removed, no partial outputs written",
        file=sys.stderr,
        flush=True,
    )
    raise InterruptedExit(128 + signum)


def error_exit(error: YoloSlimError) -> NoReturn:
    """Print ``error: <message>`` and exit 2."""
    print(f"error: {error}", file=sys.stderr, flush=True)
    raise SystemExit(2)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Within the block SIGINT, SIGTERM and SIGHUP are only recorded; after it, the first
    one recorded goes to the handlers in place again. For imports of C extensions: a
    KeyboardInterrupt raised inside one's initialisation (onnx's, seen) left it half-built
    and the process died with SIGSEGV instead of the one-line exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    with _handling(lambda signum, frame: held.append(signum)):
        yield
    if held:
        signal.raise_signal(held[0])


def _preload(modules: tuple[str, ...] | list[str]) -> None:
    """Import `modules` (those installed) with interrupts held (`signals_held`)."""
    import importlib
    import importlib.util

    with signals_held():
        for module in modules:
            if importlib.util.find_spec(module) is not None:
                importlib.import_module(module)


def run_command(body: Callable[[], T], name: str, on_error: Callable[[YoloSlimError], T] | None = None,
                preload: tuple[str, ...] | list[str] = ()) -> T:
    """Run a command's body with one-line endings for errors and interrupts.

    Args:
        body: the work (e.g. ``lambda: export(cfg)``).
        name: the command, for the interrupt line (``export``, ``train``, ...).
        on_error: what to do with a `YoloSlimError` instead of `error_exit` (prune's
            multirun records the failure and lets the other jobs go on).
        preload: C-extension packages to import first with interrupts held (`_preload`).

    Returns:
        What `body` returns (or `on_error`).

    Raises:
        SystemExit: 2 after a `YoloSlimError`, 128 + signal number after an interrupt.
    """
    with interrupts_raise():
        try:
            if preload:
                _preload(preload)
            return body()
        except YoloSlimError as error:
            if on_error is not None:
                return on_error(error)
            error_exit(error)
        except KeyboardInterrupt as stop:
            interrupted_exit(name, getattr(stop, "signum", signal.SIGINT))
        except SystemExit as stop:
            if not _received or isinstance(stop, InterruptedExit):
                raise  # not after a signal, or an inner run_command (prune.py's job guard) reported it
            interrupted_exit(name, _received[-1])  # Lightning's own Ctrl-C handling ends in sys.exit(1)


def command_status(body: Callable[[], int], name: str) -> int:
    """`run_command` for commands that return their exit status instead of exiting
    (``python -m yolo_slim``): 2 after a `YoloSlimError`, 128 + signal after an interrupt."""
    try:
        return run_command(body, name)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1
