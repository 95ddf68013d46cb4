"""All-or-nothing outputs of a command: write into a staging folder, then move in.

A command that writes several files (export: `model.onnx`, the IR pair, `meta.json`;
prune: the pruned cfg, weights, checkpoint, plan and reports) writes them into a
hidden folder inside its output folder and moves them into place once everything has
succeeded. If anything ends the command first (a `YoloSlimError`, a failed parity
check, Ctrl-C, SIGTERM), the staging folder is deleted and the output folder holds
exactly what it held before: no half-written file and no half-finished set.

Example:
    >>> with staged_outputs(out) as stage:                # doctest: +SKIP
    ...     write_atomic(stage.path / "report.json", text)
    ...     stage.commit()                                  # moves report.json into out
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from yolo_slim.io.atomic import temporary_path

# moved last, so a reader that finds them finds the files they describe
_LAST = (".xml", ".json", ".md")


class Staging:
    """The staging folder of one `staged_outputs` block.

    Attributes:
        path: the staging folder (inside the output folder, same file system).
        out_dir: the output folder files are moved into on `commit`.
    """

    def __init__(self, path: Path, out_dir: Path) -> None:
        self.path = path
        self.out_dir = out_dir
        self.committed: list[Path] = []

    def final(self, staged: str | os.PathLike) -> Path:
        """Where a file under `path` lands in `out_dir` after `commit`."""
        return self.out_dir / Path(staged).relative_to(self.path)

    def commit(self, only: Iterable[str | os.PathLike] | None = None) -> list[Path]:
        """Move the staged files (or only those in `only`) into `out_dir`.

        Each file replaces its namesake atomically (``os.replace``); files describing
        others (``.xml``, ``.json``, ``.md``) move last. What is not moved is deleted
        with the staging folder when the block ends.

        Returns:
            The final paths, in the order they were moved.
        """
        files = [p for p in self.path.rglob("*") if p.is_file()] if only is None else [Path(p) for p in only]
        files.sort(key=lambda p: (p.suffix in _LAST, str(p)))
        for staged in files:
            target = self.final(staged)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, target)
            self.committed.append(target)
        return list(self.committed)


@contextlib.contextmanager
def staged_outputs(out_dir: str | os.PathLike) -> Iterator[Staging]:
    """A `Staging` folder inside `out_dir`, removed when the block ends.

    Call `Staging.commit` inside the block to keep the results; on any exit without
    it (an exception, KeyboardInterrupt, SystemExit) nothing new is left in `out_dir`.
    """
    out_dir = Path(out_dir)
    with temporary_path(out_dir / "staging", create=False) as tmp:
        tmp.mkdir(parents=True)
        yield Staging(tmp, out_dir)
