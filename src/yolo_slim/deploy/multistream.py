"""Several video streams through one OpenVINO model, in three modes.

The host does as little as it can, and none of it on the path between two
inferences:

- every stream has a reader thread that decodes and letterboxes (OpenCV releases
  the GIL), resizing straight into a tile from a small pool of reusable buffers,
  a few frames ahead;
- the tiles go into the requests as they are: each image has its own input, and
  stacking (batch) or tiling (mosaic), colour conversion and scaling run inside
  the compiled model (`OpenVINODetector`; with `preprocess="graph"` the letterbox
  too, and with `nms="graph"` the NMS);
- requests run through an `openvino.AsyncInferQueue` sized to the device's optimal
  number of requests (at least two, so one is filled while the other runs); its
  callback does the vectorised NMS and hands the tile back to its pool, and the
  main thread only starts requests and hands results out, in frame order per
  stream;
- drawing and writing belong in `on_result`'s own thread (`deploy.writers.AsyncWriter`).

Modes:

- `async`: free-running; whichever stream has a frame ready fills the next free
  request (batch 1), so a slow or live stream never holds the others back.
- `batch`: a round takes one frame of every stream, as one batch of N.
- `mosaic`: a round's frames letterboxed and tiled (2x2 for four streams) into one
  input of the grid's size; each detection goes back to the tile of its box centre
  (`yolo_slim.deploy.mosaic`).

A stream that ends or fails drops out; the others go on; the run ends when every
stream has ended and reports which failed.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Literal, NamedTuple, Sequence

import numpy as np

from yolo_slim.deploy.detector import EMPTY, OpenVINODetector, Prepared
from yolo_slim.deploy.sources import FrameSource
from yolo_slim.errors import DeployError, YoloSlimError

log = logging.getLogger(__name__)
Mode = Literal["mosaic", "async", "batch"]
MODES = ("mosaic", "async", "batch")
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


class _Failed(NamedTuple):
    message: str


class _Done(NamedTuple):
    """A finished request: its slots (stream, frame) and their detections, or the error."""

    slots: list
    dets: list | BaseException


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
                self._put(_Failed(str(err)))
                return
            if not self._put(frame):
                return
            index += 1
        self._put(None)

    def get(self, block: bool = True) -> Frame | _Failed | None:
        """The next frame, a failure, or None at the end (blocks until one is ready unless `block` is False)."""
        return self.items.get(block=block)

    def stop(self) -> None:
        """Stop the thread (it may be blocked on a full queue) and wait for it."""
        self._stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5.0)


@dataclass
class StreamStats:
    """What happened to one stream. `error` is None unless it failed."""

    name: str
    frames: int = 0
    detections: int = 0
    seconds: float = 0.0
    error: str | None = None
    ended: bool = False

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class RunReport:
    """The whole run: per-stream stats, wall time and aggregate frames per second.

    `cpu_seconds` is the process's CPU time over the run (all threads: readers,
    inference, callbacks), `requests` the inference requests in flight.
    """

    mode: str
    streams: list[StreamStats]
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    rounds: int = 0
    requests: int = 0
    failed: list[str] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.streams)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


OnResult = Callable[[int, int, np.ndarray, np.ndarray], None]


class _Run:
    """Book-keeping shared by the modes: readers, in-order delivery, stats, logs and the progress bar."""

    def __init__(self, mode, stats, readers, on_result, log_every, bar) -> None:
        self.stats, self.readers = stats, readers
        self.active = [r is not None for r in readers]
        self.dropped = [False] * len(readers)  # output or inference failed: later results are discarded
        self.on_result, self.log_every, self.bar = on_result, log_every, bar
        self.report = RunReport(mode, stats)
        self._next = [0] * len(readers)  # per stream, the next frame index to hand out
        self._held: list[dict[int, tuple[Frame, np.ndarray]]] = [{} for _ in readers]
        self.start = self.last_log = time.perf_counter()
        self.cpu_start = time.process_time()

    def take(self, i: int, block: bool = True) -> Frame | None:
        """Stream i's next frame, or None (and the stream marked ended) at its end or failure."""
        if not self.active[i]:
            return None
        item = self.readers[i].get(block)
        if isinstance(item, Frame):
            return item
        if isinstance(item, _Failed):
            self.stats[i].error = item.message
        self.end(i)
        return None

    def end(self, i: int) -> None:
        if self.active[i]:
            self.active[i] = False
            self.stats[i].ended = True
            self.readers[i].stop()
            if self.stats[i].frames == 0:
                self.stats[i].seconds = time.perf_counter() - self.start

    def fail(self, i: int, message: str) -> None:
        """Stream i failed downstream of its reader: record it, drop its later results, stop reading it."""
        if self.stats[i].error is None:
            self.stats[i].error = message
        self.dropped[i] = True
        self._held[i].clear()
        self.end(i)

    def deliver(self, done: _Done) -> None:
        """Hand a finished request's detections out, each stream's frames in order."""
        if isinstance(done.dets, BaseException):
            for i, _ in done.slots:
                self.fail(i, f"inference failed: {done.dets}")
            return
        for (i, frame), dets in zip(done.slots, done.dets):
            if self.dropped[i]:
                continue
            held = self._held[i]
            held[frame.index] = (frame, EMPTY if dets is None else dets)
            while self._next[i] in held and not self.dropped[i]:
                self._finish(i, *held.pop(self._next[i]))
                self._next[i] += 1

    def _finish(self, i: int, frame: Frame, dets: np.ndarray) -> None:
        st = self.stats[i]
        if self.on_result is not None:
            try:
                self.on_result(i, frame.index, frame.image, dets)
            except (YoloSlimError, OSError) as err:
                self.fail(i, str(err))
                return
        st.frames += 1
        st.detections += len(dets)
        now = time.perf_counter()
        st.seconds = now - self.start
        if self.bar is not None:
            self.bar[0].update(self.bar[1], completed=self.report.frames)
        if now - self.last_log >= self.log_every:
            self.last_log = now
            per = " | ".join(f"{s.name} {s.fps:.1f}" for s in self.stats)
            log.info("fps: %s | total %.1f", per, self.report.frames / (now - self.start))

    def close(self) -> RunReport:
        for r in self.readers:
            if r is not None:
                r.stop()
        if self.bar is not None:
            self.bar[0].stop()
        self.report.seconds = time.perf_counter() - self.start
        self.report.cpu_seconds = time.process_time() - self.cpu_start
        self.report.failed = [s.name for s in self.stats if s.error]
        return self.report


# ---------------------------------------------------------------------- modes


class _Engine:
    """One detector and its AsyncInferQueue; finished requests arrive as `_Done` in `events`."""

    rounds: bool  # a request holds one frame of every stream (batch, mosaic) or one frame (async)

    def __init__(self, detector: OpenVINODetector, requests: int | None, events: queue.Queue) -> None:
        import openvino as ov

        self.detector, self.events = detector, events
        self.jobs = int(requests) if requests else max(2, detector.optimal_requests)
        self.queue = ov.AsyncInferQueue(detector.compiled, self.jobs)
        self.queue.set_callback(self._callback)
        self.in_flight = 0

    def _callback(self, request, userdata) -> None:
        slots, _inputs = userdata  # the inputs ride along: shared memory must outlive the request
        try:
            dets: list | BaseException = self.detector.results(request, [None if s is None else s[1].prepared for s in slots])
        except Exception as err:  # noqa: BLE001 - must not escape into OpenVINO's thread
            dets = err
        for s in slots:
            if s is not None:
                s[1].release()
        taken = [s for s in slots if s is not None]
        self.events.put(_Done(taken, dets if isinstance(dets, BaseException) else [d for s, d in zip(slots, dets) if s is not None]))

    def submit(self, slots: list[tuple[int, Frame] | None]) -> None:
        """Start one request on `slots` (per input slot: (stream, frame), or None for a blank one)."""
        inputs = self.detector.inputs([None if s is None else s[1].prepared for s in slots])
        self.queue.start_async(inputs, (slots, inputs), share_inputs=True)
        self.in_flight += 1

    def wait_all(self) -> None:
        self.queue.wait_all()


class AsyncMode(_Engine):
    """Free-running: a free request takes whichever stream's frame is ready first (batch 1)."""

    rounds = False

    def __init__(self, xml: str, n: int, events: queue.Queue, requests: int | None = None, **kw) -> None:
        kw.setdefault("hint", "throughput")
        super().__init__(OpenVINODetector(xml, batch=1, **kw), requests, events)


class BatchMode(_Engine):
    """The round's frames as one batch of N (network reshaped to batch N)."""

    rounds = True

    def __init__(self, xml: str, n: int, events: queue.Queue, requests: int | None = None, **kw) -> None:
        super().__init__(OpenVINODetector(xml, batch=n, **kw), requests, events)


class MosaicMode(_Engine):
    """The round's frames tiled into one input of the grid's size (IR reshaped to it)."""

    rounds = True

    def __init__(self, xml: str, n: int, events: queue.Queue, requests: int | None = None, **kw) -> None:
        super().__init__(OpenVINODetector(xml, mosaic=n, **kw), requests, events)


ENGINES = {"mosaic": MosaicMode, "async": AsyncMode, "batch": BatchMode}


def _run_rounds(engine: _Engine, run: _Run, events: queue.Queue, n: int) -> None:
    """Batch and mosaic: a request per round of one frame from every active stream."""
    while True:
        slots = [(i, f) if (f := run.take(i)) is not None else None for i in range(n)]
        if any(s is not None for s in slots):
            engine.submit(slots)
            run.report.rounds += 1
        finished = all(s is None for s in slots)
        while engine.in_flight and (engine.in_flight >= engine.jobs or finished):
            run.deliver(events.get())
            engine.in_flight -= 1
        if finished:
            return


def _run_free(engine: _Engine, run: _Run, events: queue.Queue, n: int) -> None:
    """Async: readers announce ready frames in `events`; a free request takes the first one announced."""
    ready: deque[int] = deque()
    while True:
        while ready and engine.in_flight < engine.jobs:
            i = ready.popleft()
            frame = run.take(i, block=False)
            if frame is not None and run.dropped[i]:
                frame.release()
            elif frame is not None:
                engine.submit([(i, frame)])
                run.report.rounds += 1
        if not engine.in_flight and not any(run.active):
            return
        event = events.get()
        if isinstance(event, _Done):
            engine.in_flight -= 1
            run.deliver(event)
        else:
            ready.append(event)


def run_streams(
    xml: str,
    sources: Sequence[FrameSource | DeployError],
    mode: Mode,
    *,
    on_result: OnResult | None = None,
    max_frames: int | None = None,
    log_every: float = 2.0,
    progress: bool = False,
    names: Sequence[str] | None = None,
    requests: int | None = None,
    **detector_kw,
) -> RunReport:
    """Run detection over several streams until all have ended.

    Args:
        xml: the `model.xml` to use.
        sources: opened sources, or the `DeployError` of one that failed to open
            (reported as failed, not fatal).
        mode: `mosaic`, `async` or `batch`.
        on_result: called from the calling thread as `on_result(stream, frame_index,
            frame, dets)` for each frame in stream order, dets `[K, 6]` in frame pixels;
            keep it short (hand drawing and writing to `AsyncWriter`).
        max_frames: stop each stream after this many frames.
        log_every: seconds between FPS log lines.
        progress: show a rich progress bar (for sources of known length).
        names: stream names for logs; default the sources' names.
        requests: inference requests in flight; default the device's optimal number
            (at least 2).
        detector_kw: passed to `OpenVINODetector` (device, hint, conf_thres,
            preprocess, nms, config, ...).

    Returns:
        The `RunReport`; its clock starts once the model is compiled.

    Raises:
        DeployError: unknown mode, no stream could be opened, or the model cannot
            be loaded.
    """
    if mode not in ENGINES:
        raise DeployError(f"detect: mode must be one of {list(MODES)}, got {mode!r}")
    n = len(sources)
    stats = [StreamStats(names[i] if names else getattr(s, "name", f"stream{i}")) for i, s in enumerate(sources)]
    for i, s in enumerate(sources):
        if isinstance(s, BaseException):
            stats[i].error, stats[i].ended = str(s), True
    if all(isinstance(s, BaseException) for s in sources):
        raise DeployError("detect: no source could be opened: " + "; ".join(f"{st.name}: {st.error}" for st in stats))
    events: queue.Queue = queue.Queue()
    engine = ENGINES[mode](xml, n, events, requests, **detector_kw)
    depth = max(READ_AHEAD, engine.jobs + 1)
    announce = None if engine.rounds else events
    det = engine.detector
    readers = []
    for i, s in enumerate(sources):
        if isinstance(s, BaseException):
            readers.append(None)
            continue
        pool = TilePool((*det.tile_hw, 3), depth + engine.jobs + 2) if det.preprocess == "host" else None
        readers.append(StreamReader(s, det.prepare, pool, max_frames, depth, announce, i))
    bar = _progress(sources, max_frames) if progress else None
    run = _Run(mode, stats, readers, on_result, log_every, bar)  # the clocks start here
    run.report.requests = engine.jobs
    for r in readers:
        if r is not None:
            r.start()
    try:
        (_run_rounds if engine.rounds else _run_free)(engine, run, events, n)
        engine.wait_all()
    finally:
        report = run.close()
    return report


def _progress(sources, max_frames):
    lengths = [getattr(s, "length", None) for s in sources if not isinstance(s, BaseException)]
    if not lengths or any(n is None for n in lengths):
        return None
    from rich.progress import Progress

    total = sum(min(n, max_frames) if max_frames else n for n in lengths)
    bar = Progress(transient=True)
    bar.start()
    return bar, bar.add_task("frames", total=total)
