"""Outputs of a detection run: annotated video or frames per stream, and JSON lines.

Video is written with OpenCV (`.avi` MJPG by default, `.mp4` mp4v); JSONL has one
line per (stream, frame): `{"stream", "frame", "detections": [[x1, y1, x2, y2,
score, class], ...]}` in original frame pixels. `AsyncWriter` runs drawing and
writing in a thread per stream, off the inference loop.
"""

from __future__ import annotations

import json
import queue
import threading
from pathlib import Path
from typing import IO, Callable, Sequence

import cv2
import numpy as np

from yolo_slim.errors import DeployError, YoloSlimError

_FOURCC = {".avi": "MJPG", ".mp4": "mp4v"}


def draw_detections(frame: np.ndarray, dets: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """A copy of `frame` with boxes and `name score` labels drawn."""
    out = frame.copy()
    for x1, y1, x2, y2, score, cls in np.asarray(dets)[:, :6]:
        k = int(cls)
        color = tuple(int(c) for c in (np.array([37, 99, 235]) * (k + 1) % 255))
        p1, p2 = (int(round(x1)), int(round(y1))), (int(round(x2)), int(round(y2)))
        cv2.rectangle(out, p1, p2, color, 2)
        label = f"{names[k] if 0 <= k < len(names) else k} {score:.2f}"
        cv2.putText(out, label, (p1[0], max(10, p1[1] - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, color, 1, cv2.LINE_AA)
    return out


class VideoSink:
    """Annotated video of one stream; opened lazily at the first frame (its size)."""

    def __init__(self, path: Path, fps: float | None) -> None:
        self.path, self.fps = Path(path), fps or 25.0
        if self.path.suffix.lower() not in _FOURCC:
            raise DeployError(f"{path}: video output must end in {' or '.join(_FOURCC)}")
        self._writer: cv2.VideoWriter | None = None

    def write(self, frame: np.ndarray) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fourcc = cv2.VideoWriter_fourcc(*_FOURCC[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (frame.shape[1], frame.shape[0]))
            if not self._writer.isOpened():
                raise DeployError(f"{self.path}: OpenCV cannot write this video")
        self._writer.write(frame)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()


class FrameSink:
    """Annotated frames of one stream as `folder/000000.jpg`, ..."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.count = 0

    def write(self, frame: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(self.folder / f"{self.count:06d}.jpg"), frame)
        self.count += 1

    def close(self) -> None:
        """Nothing to release."""


class JsonlWriter:
    """One JSON line per (stream, frame) with its detections; safe to call from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = self.path.open("w", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, stream: str, frame: int, dets: np.ndarray) -> None:
        dets = np.asarray(dets, dtype=np.float64).reshape(-1, 6)
        boxes = np.round(dets[:, :5], 2).tolist()
        rows = [b + [c] for b, c in zip(boxes, dets[:, 5].astype(np.int64).tolist())]
        line = json.dumps({"stream": stream, "frame": frame, "detections": rows}) + "\n"
        with self._lock:
            self._file.write(line)

    def close(self) -> None:
        self._file.close()


WriteFn = Callable[[int, int, np.ndarray, np.ndarray], None]


class AsyncWriter:
    """Calls `write(stream, frame_index, frame, dets)` in a thread per stream, each stream in order.

    Use an instance as `run_streams`'s `on_result`: the inference loop only queues
    the frame. At most `depth` frames wait per stream (then the caller waits: a
    slow disk slows the run rather than filling memory). A stream whose `write`
    raises a `YoloSlimError` or `OSError` stops writing; the error is raised (as
    `DeployError`) at that stream's next call, and `close` returns every error.

    Args:
        write: the function doing the drawing and writing.
        streams: number of streams.
        depth: most frames waiting per stream.
    """

    def __init__(self, write: WriteFn, streams: int, depth: int = 8) -> None:
        self._write = write
        self._queues: list[queue.Queue] = [queue.Queue(maxsize=depth) for _ in range(streams)]
        self.errors: dict[int, str] = {}
        self._threads = [threading.Thread(target=self._run, args=(i,), name=f"writer-{i}", daemon=True) for i in range(streams)]
        for t in self._threads:
            t.start()

    def _run(self, stream: int) -> None:
        q = self._queues[stream]
        while (job := q.get()) is not None:
            if stream in self.errors:
                continue  # drain: the caller stops sending once it sees the error
            try:
                self._write(*job)
            except (YoloSlimError, OSError) as err:
                self.errors[stream] = str(err)

    def __call__(self, stream: int, index: int, frame: np.ndarray, dets: np.ndarray) -> None:
        if stream in self.errors:
            raise DeployError(self.errors[stream])
        self._queues[stream].put((stream, index, frame, dets))

    def close(self) -> dict[int, str]:
        """Finish every queued frame, stop the threads; returns stream -> error message of failed streams."""
        for q in self._queues:
            q.put(None)
        for t in self._threads:
            t.join()
        return dict(self.errors)


def read_jsonl(path: Path) -> list[dict]:
    """All records of a detections JSONL file."""
    with Path(path).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
