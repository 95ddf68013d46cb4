"""What `predict` writes per image or frame: YOLO txt labels and one JSON of every detection.

- `yolo_label_lines`: detections `[K, 6]` (x1, y1, x2, y2, score, class in pixels) as
  darknet/YOLO label lines ``class cx cy w h [score]``, normalised by the image size, so
  a folder of predictions is a labelled data set any YOLO tool reads.
- `PredictionsJson`: ``predictions.json``, written as it goes (one record per image or
  frame, constant memory for long streams) into a temporary file that replaces the
  target only when closed, so it is always either complete JSON or absent.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np


def yolo_label_lines(dets: np.ndarray, hw: tuple[int, int], scores: bool = True) -> list[str]:
    """Label lines of one image.

    Args:
        dets: np.ndarray[K, 6]: x1, y1, x2, y2 (pixels), score, class.
        hw: the image's (height, width) in pixels.
        scores: add the score as a sixth column.

    Returns:
        ``class cx cy w h [score]`` per detection, coordinates in [0, 1] with 6 decimals.
    """
    h, w = hw
    lines = []
    for x1, y1, x2, y2, score, cls in np.asarray(dets, dtype=np.float64).reshape(-1, 6):
        box = ((x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h)
        text = f"{int(cls)} " + " ".join(f"{v:.6f}" for v in box)
        lines.append(text + (f" {score:.4f}" if scores else ""))
    return lines


def detection_records(dets: np.ndarray, names: Sequence[str]) -> list[dict[str, Any]]:
    """Detections as JSON records: ``class``, ``name``, ``score``, ``box`` (x1, y1, x2, y2 pixels)."""
    out = []
    for x1, y1, x2, y2, score, cls in np.asarray(dets, dtype=np.float64).reshape(-1, 6):
        k = int(cls)
        out.append({"class": k, "name": names[k] if 0 <= k < len(names) else str(k), "score": round(float(score), 4),
                    "box": [round(float(v), 2) for v in (x1, y1, x2, y2)]})
    return out


class PredictionsJson:
    """``{"model": ..., "names": [...], "settings": {...}, "predictions": [record, ...]}``, streamed.

    Args:
        path: the file to write (replaced atomically by `close`).
        header: the keys before ``predictions``.
    """

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self._file: IO[str] = self._tmp.open("w", encoding="utf-8")
        self._file.write(json.dumps(header)[:-1] + (", " if header else "") + '"predictions": [')
        self.count = 0

    def write(self, record: dict[str, Any]) -> None:
        """Append one image's or frame's record."""
        self._file.write(("," if self.count else "") + "\n  " + json.dumps(record))
        self.count += 1

    def close(self) -> Path:
        """Finish the JSON and move it into place."""
        self._file.write("\n]}\n")
        self._file.close()
        self._tmp.replace(self.path)
        return self.path

    def discard(self) -> None:
        """Drop the partial file (the command failed)."""
        self._file.close()
        self._tmp.unlink(missing_ok=True)
