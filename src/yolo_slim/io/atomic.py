"""Atomic file writes: a temporary file in the target folder, then a rename.

A reader (or a crash) never sees a half-written output: the old file stays until the
new one is complete. `temporary_path` is the one mechanism behind every temporary
file yolo_slim makes: whatever ends the block (success, an error, Ctrl-C, SIGTERM
turned into an exception by `yolo_slim.cli.guard`), the temporary file and anything a
tool wrote beside it under the same name are gone afterwards.

Files are created with mode ``0o666`` and the process umask applies, as for any file
a program opens for writing (``tempfile.mkstemp`` would make them private, 0600).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _unique_name(target: Path, suffix: str) -> Path:
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp{suffix}")


def remove_path(path: Path) -> None:
    """Remove a file or a folder tree; nothing if it does not exist."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def temporary_path(target: str | os.PathLike, suffix: str = "", *, create: bool = True) -> Iterator[Path]:
    """A fresh hidden path beside `target`, removed with its siblings when the block ends.

    Args:
        target: the final path the temporary stands in for (its folder is created).
        suffix: ending of the temporary name (e.g. ``".onnx"`` for tools that look at it).
        create: create the file (empty, mode 0o666 minus the umask) so the name is
            reserved; False only reserves a name nobody else can draw (for tools that
            refuse to overwrite).

    Yields:
        The temporary path. Move it over `target` (``os.replace``) inside the block to
        keep it; whatever still exists under its name afterwards is deleted, including
        files a tool added beside it (``<tmp>.data``, ...).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = _unique_name(target, suffix)
        if not create:
            if not tmp.exists():
                break
            continue
        try:
            os.close(os.open(tmp, _CREATE_FLAGS, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield tmp
    finally:
        for leftover in tmp.parent.glob(f"{tmp.name}*"):
            remove_path(leftover)


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write `data` (text as UTF-8) to `path` through a temporary file and a rename."""
    path = Path(path)
    with temporary_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    return path
