"""The reading side of `multistream`: one thread per stream decodes and letterboxes.

`StreamReader` runs a `FrameSource` in a daemon thread, preparing each frame (host
letterbox into a tile of its `TilePool`, or the graph letterbox's plain frame) a few
frames ahead; the modes in `multistream` take `Frame`s (or a `ReadFailure`, or None
at the end) from it and give the tiles back when their request finishes.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, NamedTuple

import numpy as np

from yolo_slim.deploy.detector import Prepared
from yolo_slim.deploy.sources import FrameSource
from yolo_slim.errors import YoloSlimError

READ_AHEAD = 4  # frames each reader thread may hold ready (at least the requests in flight)


class TilePool:
    """Reusable letterbox tiles for one stream: a reader takes one per frame, the request's callback gives it back.

    Args:
        shape: (height, width, 3) of a tile.
        count: tiles in the pool (frames read ahead + requests in flight + 1).
    """

    def __init__(self, shape: tuple[int, int, int], count: int) -> None:
        self._free: queue.Queue = queue.Queue()
        for _ in range(count):
            self._free.put(np.empty(shape, dtype=np.uint8))

    def acquire(self, stop: threading.Event) -> np.ndarray | None:
        """A free tile, waiting for one; None once `stop` is set."""
        while not stop.is_set():
            try:
                return self._free.get(timeout=0.1)
            except queue.Empty:
                continue
        return None

    def release(self, tile: np.ndarray) -> None:
        self._free.put(tile)


class Frame(NamedTuple):
    """One decoded frame of a stream, readied for an input slot; `pool` owns the tile, if any."""

    index: int
    image: np.ndarray
    prepared: Prepared
    pool: TilePool | None = None

    def release(self) -> None:
        """Give the tile back (its request has finished)."""
        if self.pool is not None:
            self.pool.release(self.prepared.tensor)


class ReadFailure(NamedTuple):
    """A stream's source or preparation failed; the stream drops out with this message."""

    message: str


class StreamReader:
    """Decodes and prepares one source's frames in a daemon thread, `depth` frames ahead.

    Args:
        source: the frame source (used by this thread only).
        prepare: `(image, out) -> Prepared` (`OpenVINODetector.prepare`).
        pool: tiles to prepare into (host letterbox), or None (graph letterbox).
        max_frames: stop after this many frames (None: until the source ends).
        depth: most frames held ready.
        ready: if given, the stream's `key` is put there once per item made ready
            (frame, failure or end), so one consumer can serve many readers.
        key: what is put in `ready`.
    """

    def __init__(self, source: FrameSource, prepare: Callable[..., Prepared], pool: TilePool | None = None,
                 max_frames: int | None = None, depth: int = READ_AHEAD, ready: queue.Queue | None = None,
                 key: object = None) -> None:
        self.source, self.prepare, self.pool, self.max_frames = source, prepare, pool, max_frames
        self.items: queue.Queue = queue.Queue(maxsize=depth)
        self.ready, self.key = ready, key
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"reader-{getattr(source, 'name', '?')}", daemon=True)

    def start(self) -> "StreamReader":
        self.thread.start()
        return self

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self.items.put(item, timeout=0.1)
            except queue.Full:
                continue
            if self.ready is not None:
                self.ready.put(self.key)
            return True
        return False

    def _run(self) -> None:
        index = 0
        while not self._stop.is_set() and (self.max_frames is None or index < self.max_frames):
            try:
                image = self.source.read()
                if image is None:
                    break
                tile = self.pool.acquire(self._stop) if self.pool is not None else None
                if self.pool is not None and tile is None:
                    return
                frame = Frame(index, image, self.prepare(image, out=tile), self.pool)
            except (YoloSlimError, OSError, ValueError, RuntimeError) as err:
                self._put(ReadFailure(str(err)))
                return
            if not self._put(frame):
                return
            index += 1
        self._put(None)

    def get(self, block: bool = True) -> Frame | ReadFailure | None:
        """The next frame, a failure, or None at the end (blocks until one is ready unless `block` is False)."""
        return self.items.get(block=block)

    def stop(self) -> None:
        """Stop the thread (it may be blocked on a full queue) and wait for it."""
        self._stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5.0)
