"""One OpenVINO `Core` per process, and compiles that leave the signal stack usable.

Why this module exists: on Linux, OpenVINO's CPU plugin engine (one per `ov.Core`)
installs an alternate signal stack of its own when it is loaded (for the larger signal
frames that AMX state needs), remembers the stack it replaced, and puts that one back
when it is destroyed, unmapping its own. When two engines are released in any order but
the reverse of their loading (two `Core` objects made one after the other and dropped
in the same order, as every ``ov.Core()`` call site did), the stack left installed is
one that was already unmapped. The next signal the thread handles, Ctrl-C, SIGTERM, or
the SIGCHLD that torch's DataLoader handles when any child process ends, then kills the
process with SIGSEGV before any handler (faulthandler's included) can run. Seen with
OpenVINO 2026 on a Xeon with AMX: ``prune.py`` and the test suite died that way.

The remedy: every engine is loaded while a stack this module owns (and never frees) is
installed, and that stack is set back after every call that can load or release one
(making a core, compiling, NNCF's quantisation, which makes cores of its own). Every
engine then remembers this stack, so every restore installs memory that is still
mapped, whatever order the engines go in. Most code shares one `Core` (`core()`).

Use `core()` (or `new_core()`), `compile_model()`, `available_devices()` and
`full_device_name()` instead of ``ov.Core()``; wrap third-party code that compiles models itself in
`signal_stack_kept()`.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

STACK_BYTES = 1 << 18
"""Size of the alternate signal stack per thread (256 KiB: well above the kernel's
AT_MINSIGSTKSZ with AMX state, about 11 KiB, and above faulthandler's own)."""

_SS_DISABLE = 2


class _StackT(ctypes.Structure):
    """``stack_t`` of <signal.h> on Linux."""

    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


_stacks: dict[int, Any] = {}  # thread ident -> its stack buffer; kept for the process's lifetime
_lock = threading.Lock()


@functools.cache
def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def installed_signal_stack() -> tuple[int, int, int]:
    """The calling thread's alternate signal stack as (address, flags, size in bytes);
    (0, SS_DISABLE, 0) off Linux."""
    if sys.platform != "linux":
        return 0, _SS_DISABLE, 0
    current = _StackT()
    if _libc().sigaltstack(None, ctypes.byref(current)) != 0:
        return 0, _SS_DISABLE, 0
    return int(current.ss_sp or 0), int(current.ss_flags), int(current.ss_size)


def own_signal_stack() -> tuple[int, int]:
    """The calling thread's own stack (address, size), allocated on first use."""
    ident = threading.get_ident()
    with _lock:
        buffer = _stacks.get(ident)
        if buffer is None:
            buffer = _stacks[ident] = ctypes.create_string_buffer(STACK_BYTES)
    return ctypes.addressof(buffer), STACK_BYTES


def keep_signal_stack() -> None:
    """Install this module's alternate signal stack on the calling thread (Linux; a no-op
    elsewhere, or while the thread runs on its alternate stack, inside a handler)."""
    if sys.platform != "linux":
        return
    address, size = own_signal_stack()
    wanted = _StackT(ctypes.c_void_p(address), 0, size)
    _libc().sigaltstack(ctypes.byref(wanted), None)  # fails only with EPERM (on the stack now): keep what is there


@contextlib.contextmanager
def signal_stack_kept() -> Iterator[None]:
    """Run a block that builds or destroys OpenVINO objects through code this project does
    not control (NNCF), with this module's signal stack installed before and after it."""
    keep_signal_stack()
    try:
        yield
    finally:
        keep_signal_stack()


_core_lock = threading.Lock()
_shared: list[Any] = []


def new_core() -> Any:
    """A `openvino.Core` of its own (its own CPU engine and executors), made and its CPU
    plugin loaded with the signal stack set back afterwards. For timing that must not
    share executors with other models (the latency table); otherwise use `core()`."""
    import openvino as ov

    with signal_stack_kept():
        made = ov.Core()
        if "CPU" in made.available_devices:  # loads the CPU plugin now, not inside the first compile
            made.get_property("CPU", "FULL_DEVICE_NAME")
    return made


def core() -> Any:
    """The process's shared `openvino.Core` (OpenVINO's advice: one per application)."""
    with _core_lock:
        if not _shared:
            _shared.append(new_core())
        return _shared[0]


def compile_model(model: Any, device: str, properties: dict[str, Any] | None = None, on: Any = None) -> Any:
    """``compile_model`` of an `ov.Model` or an IR/ONNX path on core `on` (default: `core()`),
    signal stack kept.

    Raises:
        Whatever OpenVINO raises (callers turn it into their own error).
    """
    source = str(model) if isinstance(model, (str, os.PathLike)) else model
    with signal_stack_kept():
        return (on or core()).compile_model(source, device, properties or {})


def available_devices() -> list[str]:
    """The devices OpenVINO sees (``["CPU", "GPU.0", ...]``)."""
    with signal_stack_kept():
        return list(core().available_devices)


def full_device_name(device: str) -> str | None:
    """The device's full name as OpenVINO reports it, or None if it has none (AUTO, MULTI)."""
    try:
        with signal_stack_kept():
            return str(core().get_property(device, "FULL_DEVICE_NAME"))
    except RuntimeError:
        return None
