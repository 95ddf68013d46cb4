"""A run folder that a failed command leaves holding nothing of its work is removed.

Hydra creates a command's run dir (its ``.hydra/`` and the job log) before the task
starts; a task that then stops on a user error has written nothing else there.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def discard_unused_run_dir(run_dir: Path, log_dir: Path) -> bool:
    """Remove `run_dir` when it holds nothing but what Hydra wrote before the task ran
    (``.hydra/`` and top-level ``*.log`` files), and then each parent it leaves empty up to
    `log_dir`: a command that stopped on a user error (a missing data file, say) leaves no
    run folder that looks like a run. A run dir with anything else in it (a stage, a
    checkpoint, an ``error.json``) is kept. Returns whether it was removed."""
    try:
        entries = list(run_dir.iterdir())
    except OSError:
        return False
    if any(not ((e.name == ".hydra" and e.is_dir()) or (e.suffix == ".log" and e.is_file())) for e in entries):
        return False
    shutil.rmtree(run_dir, ignore_errors=True)
    root = log_dir.resolve()
    parent = run_dir.resolve().parent
    while parent != root and root in parent.parents:
        try:
            parent.rmdir()  # only when empty
        except OSError:
            break
        parent = parent.parent
    return not run_dir.exists()
