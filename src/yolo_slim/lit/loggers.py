"""`AppendingCSVLogger`: Lightning's CSVLogger that survives a resume in the same folder.

Lightning's CSVLogger deletes an existing ``metrics.csv`` when it starts, so resuming
an interrupted run in its own folder (what `pipeline.py` does after a kill) loses
every epoch logged before the checkpoint. This logger keeps the file and appends:

- rows logged before the resumed run's first row stay (its first row is logged at
  the checkpoint's step, so they are exactly the rows from before the checkpoint);
- rows from after the checkpoint, which the resumed run logs again, are dropped, so
  there are no duplicates; so is a last line cut short by a kill;
- a fresh run (step 0) in a folder with an old file starts the file anew.

Rewrites of the file (on resume, or when a new metric name widens the header) go
through `write_atomic`, so a kill during one leaves the old file whole. Lightning
writes every logged row at once (it calls `save` after each `log_metrics`), so a kill
loses nothing that was logged.
"""

from __future__ import annotations

import csv
import io
import os
from typing import Any

from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment

from yolo_slim.io.atomic import write_atomic


def _step(row: dict[str, Any]) -> int | None:
    try:
        return int(float(row.get("step", "")))
    except (TypeError, ValueError):
        return None


class AppendingExperimentWriter(ExperimentWriter):
    """Lightning's CSV writer, keeping the rows of an existing ``metrics.csv``."""

    def __init__(self, log_dir: str) -> None:
        self._previous: list[dict[str, Any]] = []
        self._previous_keys: list[str] = []
        super().__init__(log_dir)
        self.metrics_keys = list(self._previous_keys)
        self._trimmed = not self._previous

    def _check_log_dir_exists(self) -> None:
        """Read the old rows instead of deleting the file (Lightning's version deletes it)."""
        if not os.path.isfile(self.metrics_file_path):
            return
        with open(self.metrics_file_path, newline="", encoding="utf-8") as handle:
            text = handle.read()
        if text and not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]  # a row cut short by a kill
        reader = csv.DictReader(io.StringIO(text))
        self._previous_keys = [k for k in (reader.fieldnames or []) if k]
        self._previous = [row for row in reader if _step(row) is not None and None not in row and None not in row.values()]

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.metrics_keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_atomic(self.metrics_file_path, buffer.getvalue())

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        with open(self.metrics_file_path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        self.metrics_keys = list(fieldnames)
        self._rewrite(rows)

    def save(self) -> None:
        """Write the buffered rows; the first time, first drop the old rows they replace."""
        if not self.metrics:
            return
        if not self._trimmed:
            first = min(int(m["step"]) for m in self.metrics)
            kept = [row for row in self._previous if _step(row) < first]
            self._record_new_keys()
            self._rewrite(kept)
            self._previous, self._trimmed = [], True
        super().save()


class AppendingCSVLogger(CSVLogger):
    """`pytorch_lightning.loggers.CSVLogger` that appends to ``metrics.csv`` on resume.

    Same arguments as Lightning's CSVLogger; see the module docstring for what is kept.
    """

    @property
    @rank_zero_experiment
    def experiment(self) -> AppendingExperimentWriter:
        if self._experiment is not None:
            return self._experiment
        self._fs.makedirs(self.root_dir, exist_ok=True)
        self._experiment = AppendingExperimentWriter(log_dir=self.log_dir)
        return self._experiment
