"""Run an entry script with a signal sent to itself while a given output is half-written.

    python interrupt_hook.py FILE_NAME SIGNAL SCRIPT [ARGS...]

When yolo_slim opens the temporary file that stands in for FILE_NAME (e.g.
``report.json``), the process sends itself SIGNAL (``SIGINT``, ``SIGTERM``), so the
interrupt arrives exactly while temporary files exist: the deterministic version of a
user pressing Ctrl-C at the worst moment. Used by test_interrupts.py.
"""

from __future__ import annotations

import contextlib
import os
import runpy
import signal
import sys

import yolo_slim.io.atomic as atomic


def main() -> None:
    name, signame, script, *args = sys.argv[1:]
    signum = getattr(signal, signame)
    original = atomic.temporary_path

    @contextlib.contextmanager
    def interrupting(target, *a, **kw):
        with original(target, *a, **kw) as tmp:
            if os.path.basename(str(target)) == name:
                os.kill(os.getpid(), signum)
            yield tmp

    atomic.temporary_path = interrupting
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
