"""Several video streams through one OpenVINO model, in three modes.

Every stream has a reader thread that decodes and letterboxes its frames a few
frames ahead (OpenCV releases the GIL, so decoding overlaps inference). Then:

- `async`: a free-running pipeline through `openvino.AsyncInferQueue`, one request
  per stream in flight. A request's callback hands its output to the main thread,
  which starts the stream's next frame at once and only then runs NMS and the
  writers, so every stream keeps a request busy.
- `batch`: the round's frames as one batch of N; two requests with preallocated
  input tensors (shared with numpy, filled in place) alternate, so round k+1 runs
  while round k is post-processed.
- `mosaic`: the round's frames letterboxed to the model size and tiled (2x2 for
  four streams) into one input of the grid's size, double-buffered like `batch`;
  each detection goes back to the tile of its box centre (`yolo_slim.deploy.mosaic`).

A stream that ends or fails drops out; the others go on; the run ends when every
stream has ended and reports which failed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, NamedTuple, Sequence

import numpy as np

from yolo_slim.deploy.detector import EMPTY, OpenVINODetector
from yolo_slim.deploy.mosaic import mosaic_grid, split_detections, tile_origins
from yolo_slim.deploy.sources import FrameSource
from yolo_slim.errors import DeployError, YoloSlimError
from yolo_slim.export.meta import META_NAME, read_meta
from yolo_slim.ops.letterbox import LetterboxInfo, letterbox

log = logging.getLogger(__name__)
Mode = Literal["mosaic", "async", "batch"]
MODES = ("mosaic", "async", "batch")
READ_AHEAD = 4  # frames each reader thread may hold ready


class Frame(NamedTuple):
    """One decoded frame: the image, its letterboxed copy and the letterbox parameters."""

    index: int
    image: np.ndarray
    boxed: np.ndarray
    info: LetterboxInfo


class _Failed(NamedTuple):
    message: str


class StreamReader:
    """Reads and letterboxes one source's frames in a daemon thread, `depth` frames ahead.

    Args:
        source: the frame source (used by this thread only).
        prepare: `image -> (letterboxed image, LetterboxInfo)`.
        max_frames: stop after this many frames (None: until the source ends).
        depth: most frames held ready.
    """

    def __init__(self, source: FrameSource, prepare: Callable, max_frames: int | None = None, depth: int = READ_AHEAD) -> None:
        self.source, self.prepare, self.max_frames = source, prepare, max_frames
        self.items: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"reader-{getattr(source, 'name', '?')}", daemon=True)
        self.thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self.items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        index = 0
        while not self._stop.is_set() and (self.max_frames is None or index < self.max_frames):
            try:
                image = self.source.read()
                if image is None:
                    break
                boxed, info = self.prepare(image)
            except (YoloSlimError, OSError, ValueError, RuntimeError) as err:
                self._put(_Failed(str(err)))
                return
            if not self._put(Frame(index, image, boxed, info)):
                return
            index += 1
        self._put(None)

    def get(self) -> Frame | _Failed | None:
        """The next frame, a failure, or None at the end (blocks until one is ready)."""
        return self.items.get()

    def stop(self) -> None:
        """Stop the thread (it may be blocked on a full queue) and wait for it."""
        self._stop.set()
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
    """The whole run: per-stream stats, wall time and aggregate frames per second."""

    mode: str
    streams: list[StreamStats]
    seconds: float = 0.0
    rounds: int = 0
    failed: list[str] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.streams)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


OnResult = Callable[[int, int, np.ndarray, np.ndarray], None]


class _Run:
    """Book-keeping shared by the modes: readers, stats, results, logs and the progress bar."""

    def __init__(self, sources, mode, stats, readers, on_result, log_every, bar) -> None:
        self.sources, self.stats, self.readers = sources, stats, readers
        self.active = [r is not None for r in readers]
        self.dropped = [False] * len(readers)  # output failed: later results are discarded
        self.on_result, self.log_every, self.bar = on_result, log_every, bar
        self.report = RunReport(mode, stats)
        self.start = self.last_log = time.perf_counter()

    def next_frame(self, i: int) -> Frame | None:
        """Stream i's next frame, or None (and the stream marked ended) at its end or failure."""
        if not self.active[i]:
            return None
        item = self.readers[i].get()
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

    def finish(self, i: int, frame: Frame, dets: np.ndarray | None) -> None:
        """Hand one frame's detections to `on_result` and count them."""
        st = self.stats[i]
        if self.dropped[i]:
            return
        dets = EMPTY if dets is None else dets
        if self.on_result is not None:
            try:
                self.on_result(i, frame.index, frame.image, dets)
            except (YoloSlimError, OSError) as err:
                st.error, self.dropped[i] = str(err), True
                self.end(i)
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
        for i, r in enumerate(self.readers):
            if r is not None:
                r.stop()
        if self.bar is not None:
            self.bar[0].stop()
        self.report.seconds = time.perf_counter() - self.start
        self.report.failed = [s.name for s in self.stats if s.error]
        return self.report


# ---------------------------------------------------------------------- modes


def _shared_input(request, shape: tuple[int, ...]) -> np.ndarray:
    """A preallocated u8 array bound to `request`'s input (written in place, never copied)."""
    import openvino as ov

    buf = np.zeros(shape, dtype=np.uint8)
    request.set_input_tensor(ov.Tensor(buf, shared_memory=True))
    return buf


class _RoundMode(ABC):
    """Double-buffered rounds (batch, mosaic): two requests with their own input arrays."""

    detector: OpenVINODetector

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.requests = [self.detector.compiled.create_infer_request() for _ in range(2)]
        self.buffers = [_shared_input(r, shape) for r in self.requests]

    @abstractmethod
    def fill(self, buf: np.ndarray, frames: list[Frame | None]) -> None:
        """Write this round's frames into the request's input array."""

    @abstractmethod
    def results(self, request, frames: list[Frame | None]) -> list[np.ndarray | None]:
        """Per stream, the detections of a finished request (None for an ended stream)."""

    def run(self, run: _Run, n: int) -> None:
        pending: deque = deque()
        slot = 0
        while True:
            frames = [run.next_frame(i) for i in range(n)]
            if any(f is not None for f in frames):
                self.fill(self.buffers[slot], frames)
                self.requests[slot].start_async()
                pending.append((slot, frames))
                slot ^= 1
                run.report.rounds += 1
            # with two in flight, finish the older one while the newer one runs
            while pending and (len(pending) == 2 or all(f is None for f in frames)):
                done, done_frames = pending.popleft()
                self.requests[done].wait()
                for i, (f, dets) in enumerate(zip(done_frames, self.results(self.requests[done], done_frames))):
                    if f is not None:
                        run.finish(i, f, dets)
            if all(f is None for f in frames) and not pending:
                return


class BatchMode(_RoundMode):
    """The round's frames as one batch of N (model reshaped to batch N)."""

    def __init__(self, xml: str, n: int, **kw) -> None:
        self.detector = OpenVINODetector(xml, batch=n, **kw)
        self.prepare = self.detector.prepare
        super().__init__((n, *self.detector.input_hw, 3))

    def fill(self, buf: np.ndarray, frames: list[Frame | None]) -> None:
        for i, f in enumerate(frames):
            if f is not None:
                buf[i] = f.boxed  # an ended stream's slot keeps stale pixels; its rows are ignored

    def results(self, request, frames):
        d = self.detector
        rows = d.split_outputs(request, d.batch)
        return [None if f is None else d.postprocess(rows[i], f.info, f.image.shape[:2]) for i, f in enumerate(frames)]


class MosaicMode(_RoundMode):
    """The round's frames tiled into one input of the grid's size (IR reshaped to it)."""

    def __init__(self, xml: str, n: int, **kw) -> None:
        meta = read_meta(Path(xml).parent / META_NAME)
        self.tile_hw = tuple(int(v) for v in meta["input_size"])
        self.grid = mosaic_grid(n)
        hw = (self.grid[0] * self.tile_hw[0], self.grid[1] * self.tile_hw[1])
        self.detector = OpenVINODetector(xml, input_hw=hw, batch=1, **kw)
        self.color = tuple(meta["letterbox"].get("color", (114, 114, 114)))
        self.origins = tile_origins(self.grid, self.tile_hw)
        super().__init__((1, *hw, 3))
        for buf in self.buffers:
            buf[...] = np.asarray(self.color, dtype=np.uint8)

    def prepare(self, image: np.ndarray):
        return letterbox(image, self.tile_hw, color=self.color)

    def fill(self, buf: np.ndarray, frames: list[Frame | None]) -> None:
        th, tw = self.tile_hw
        for (x, y), f in zip(self.origins, frames):
            if f is None:
                buf[0, y : y + th, x : x + tw] = self.color
            else:
                buf[0, y : y + th, x : x + tw] = f.boxed

    def results(self, request, frames):
        d = self.detector
        rows = d.split_outputs(request, 1)[0]
        dets = rows if d.nms_in_graph else d.nms(rows)
        per_tile = split_detections(dets, self.grid, self.tile_hw)
        return [None if f is None else d.to_original(per_tile[i], f.info, f.image.shape[:2]) for i, f in enumerate(frames)]


class AsyncMode:
    """A free-running pipeline: one request per stream in flight through `AsyncInferQueue`."""

    def __init__(self, xml: str, n: int, **kw) -> None:
        import openvino as ov

        kw.setdefault("hint", "throughput")
        self.detector = OpenVINODetector(xml, batch=1, **kw)
        self.prepare = self.detector.prepare
        self.queue = ov.AsyncInferQueue(self.detector.compiled, n)
        self.done: queue.Queue = queue.Queue()
        self.queue.set_callback(self._callback)

    def _callback(self, request, userdata) -> None:
        stream, frame = userdata
        try:
            self.done.put((stream, frame, self.detector.split_outputs(request, 1)[0]))
        except Exception as err:  # noqa: BLE001 - must not escape into OpenVINO's thread
            self.done.put((stream, frame, err))

    def _submit(self, run: _Run, i: int) -> bool:
        frame = run.next_frame(i)
        if frame is None:
            return False
        self.queue.start_async({0: frame.boxed[None]}, (i, frame))
        return True

    def run(self, run: _Run, n: int) -> None:
        in_flight = sum(self._submit(run, i) for i in range(n))
        while in_flight:
            i, frame, rows = self.done.get()
            in_flight -= 1
            if isinstance(rows, BaseException):
                run.stats[i].error, run.dropped[i] = f"inference failed: {rows}", True
                run.end(i)
                continue
            in_flight += self._submit(run, i)  # keep the stream's request busy before host work
            run.report.rounds += 1
            run.finish(i, frame, self.detector.postprocess(rows, frame.info, frame.image.shape[:2]))
        self.queue.wait_all()


ENGINES = {"mosaic": MosaicMode, "async": AsyncMode, "batch": BatchMode}


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
    **detector_kw,
) -> RunReport:
    """Run detection over several streams until all have ended.

    Args:
        xml: the `model.xml` to use.
        sources: opened sources, or the `DeployError` of one that failed to open
            (reported as failed, not fatal).
        mode: `mosaic`, `async` or `batch`.
        on_result: called from the calling thread as `on_result(stream, frame_index,
            frame, dets)` for each frame in stream order, dets `[K, 6]` in frame pixels
            (writers hang here).
        max_frames: stop each stream after this many frames.
        log_every: seconds between FPS log lines.
        progress: show a rich progress bar (for sources of known length).
        names: stream names for logs; default the sources' names.
        detector_kw: passed to `OpenVINODetector` (device, hint, conf_thres, ...).

    Returns:
        The `RunReport`; its clock starts once the model is compiled.

    Raises:
        DeployError: unknown mode, or no stream could be opened.
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
    engine = ENGINES[mode](xml, n, **detector_kw)
    readers = [None if isinstance(s, BaseException) else StreamReader(s, engine.prepare, max_frames) for s in sources]
    bar = _progress(sources, max_frames) if progress else None
    run = _Run(sources, mode, stats, readers, on_result, log_every, bar)
    try:
        engine.run(run, n)
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
