"""Several video streams through one OpenVINO model, in three modes.

- `mosaic`: the frames of a round are letterboxed to the model size and tiled
  (2x2 for four streams) into one input of the grid's size; one inference; each
  detection goes back to the tile of its box centre (`yolo_slim.deploy.mosaic`).
- `async`: one inference request per stream through `openvino.AsyncInferQueue`.
- `batch`: the round's frames as one batch of N in one request.

Every mode overlaps host work with inference: while round k runs on the device,
round k+1 is read and letterboxed. A stream that ends or fails drops out; the others
go on; the run ends when every stream has ended and reports which failed.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Callable, Literal, Sequence

import numpy as np

from yolo_slim.deploy.detector import EMPTY, OpenVINODetector
from yolo_slim.deploy.mosaic import compose_mosaic, mosaic_grid, split_detections
from yolo_slim.deploy.sources import FrameSource
from yolo_slim.errors import DeployError, YoloSlimError
from yolo_slim.export.meta import META_NAME, read_meta
from yolo_slim.ops.letterbox import letterbox

log = logging.getLogger(__name__)
Mode = Literal["mosaic", "async", "batch"]
MODES = ("mosaic", "async", "batch")
Frames = Sequence["np.ndarray | None"]


class MosaicEngine:
    """All frames of a round tiled into one input (model reshaped to the grid's size)."""

    def __init__(self, xml: str, n: int, **kw) -> None:
        meta = read_meta(Path(xml).parent / META_NAME)
        self.tile_hw = tuple(meta["input_size"])
        self.grid = mosaic_grid(n)
        hw = (self.grid[0] * self.tile_hw[0], self.grid[1] * self.tile_hw[1])
        self.detector = OpenVINODetector(xml, input_hw=hw, batch=1, **kw)
        self.color = tuple(meta["letterbox"]["color"])
        self._pending: list | None = None

    def submit(self, frames: Frames) -> None:
        tiles, infos = [], []
        for f in frames:
            if f is None:
                tiles.append(None)
                infos.append(None)
                continue
            boxed, info = letterbox(f, self.tile_hw, color=self.color)
            tiles.append(boxed)
            infos.append((info, f.shape[:2]))
        mosaic = compose_mosaic(tiles, self.grid, self.tile_hw, fill=self.color[0])
        self.detector._request.start_async({0: mosaic[None]})
        self._pending = infos

    def collect(self) -> list[np.ndarray | None]:
        d = self.detector
        d._request.wait()
        rows = d.split_outputs(d._request, 1)[0]
        dets = rows if d.nms_in_graph else d.nms(rows)
        per_tile = split_detections(dets, self.grid, self.tile_hw)
        return [None if item is None else d.to_original(per_tile[i], *item) for i, item in enumerate(self._pending)]


class BatchEngine:
    """The round's frames as one batch (model reshaped to batch N)."""

    def __init__(self, xml: str, n: int, **kw) -> None:
        self.detector = OpenVINODetector(xml, batch=n, **kw)
        self._pending: list | None = None

    def submit(self, frames: Frames) -> None:
        d = self.detector
        tensor = np.zeros((d.batch, *d.input_hw, 3), dtype=np.uint8)
        infos = []
        for i, f in enumerate(frames):
            if f is None:
                infos.append(None)
                continue
            tensor[i], info = d.prepare(f)
            infos.append((info, f.shape[:2]))
        d._request.start_async({0: tensor})
        self._pending = infos

    def collect(self) -> list[np.ndarray | None]:
        d = self.detector
        d._request.wait()
        rows = d.split_outputs(d._request, d.batch)
        return [None if item is None else d.postprocess(rows[i], *item) for i, item in enumerate(self._pending)]


class AsyncEngine:
    """One inference request per stream through `openvino.AsyncInferQueue`."""

    def __init__(self, xml: str, n: int, **kw) -> None:
        import openvino as ov

        kw.setdefault("hint", "throughput")
        self.detector = OpenVINODetector(xml, batch=1, **kw)
        self.queue = ov.AsyncInferQueue(self.detector.compiled, n)
        self._rows: dict[int, np.ndarray] = {}
        self.queue.set_callback(self._done)
        self._pending: list | None = None

    def _done(self, request, stream: int) -> None:
        self._rows[stream] = self.detector.split_outputs(request, 1)[0]

    def submit(self, frames: Frames) -> None:
        d = self.detector
        infos = []
        self._rows.clear()
        for i, f in enumerate(frames):
            if f is None:
                infos.append(None)
                continue
            boxed, info = d.prepare(f)
            self.queue.start_async({0: boxed[None]}, i)
            infos.append((info, f.shape[:2]))
        self._pending = infos

    def collect(self) -> list[np.ndarray | None]:
        self.queue.wait_all()
        d = self.detector
        return [None if item is None else d.postprocess(self._rows[i], *item) for i, item in enumerate(self._pending)]


ENGINES = {"mosaic": MosaicEngine, "async": AsyncEngine, "batch": BatchEngine}


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
        on_result: called as `on_result(stream, frame_index, frame, dets)` for each
            frame, dets `[K, 6]` in frame pixels (writers hang here).
        max_frames: stop each stream after this many frames.
        log_every: seconds between FPS log lines.
        progress: show a rich progress bar (for sources of known length).
        names: stream names for logs; default the sources' names.
        detector_kw: passed to `OpenVINODetector` (device, hint, conf_thres, ...).

    Returns:
        The `RunReport`.

    Raises:
        DeployError: unknown mode, or no stream could be opened.
    """
    if mode not in ENGINES:
        raise DeployError(f"detect: mode must be one of {list(MODES)}, got {mode!r}")
    n = len(sources)
    stats = [StreamStats(names[i] if names else getattr(s, "name", f"stream{i}")) for i, s in enumerate(sources)]
    active = [not isinstance(s, BaseException) for s in sources]
    for i, s in enumerate(sources):
        if isinstance(s, BaseException):
            stats[i].error, stats[i].ended = str(s), True
    if not any(active):
        raise DeployError("detect: no source could be opened: " + "; ".join(f"{st.name}: {st.error}" for st in stats))
    engine = ENGINES[mode](xml, n, **detector_kw)
    start = time.perf_counter()
    report = RunReport(mode, stats)

    def read_round() -> list[np.ndarray | None]:
        frames: list[np.ndarray | None] = []
        for i, src in enumerate(sources):
            frame = None
            if active[i]:
                try:
                    frame = src.read()
                except (YoloSlimError, OSError, ValueError, RuntimeError) as err:
                    stats[i].error = str(err)
                if frame is None or (max_frames is not None and stats[i].frames >= max_frames):
                    frame = None
                    active[i] = False
                    stats[i].ended = True
                    stats[i].seconds = time.perf_counter() - start
            frames.append(frame)
        return frames

    bar = _progress(sources, max_frames) if progress else None
    last_log = start
    frames = read_round()
    if all(f is None for f in frames):
        return _finish(report, start, bar)
    engine.submit(frames)
    while True:
        upcoming = read_round()  # overlaps with the inference in flight
        results = engine.collect()
        report.rounds += 1
        for i, (frame, dets) in enumerate(zip(frames, results)):
            if frame is None:
                continue
            dets = EMPTY if dets is None else dets
            if on_result is not None:
                try:
                    on_result(i, stats[i].frames, frame, dets)
                except (YoloSlimError, OSError) as err:
                    stats[i].error, active[i], stats[i].ended = str(err), False, True
            stats[i].frames += 1
            stats[i].detections += len(dets)
            if active[i] or stats[i].seconds == 0:
                stats[i].seconds = time.perf_counter() - start
        if bar is not None:
            bar[0].update(bar[1], completed=report.frames)
        now = time.perf_counter()
        if now - last_log >= log_every:
            last_log = now
            per = " | ".join(f"{s.name} {s.fps:.1f}" for s in stats)
            log.info("fps: %s | total %.1f", per, report.frames / (now - start))
        if all(f is None for f in upcoming):
            break
        frames = upcoming
        engine.submit(frames)
    return _finish(report, start, bar)


def _progress(sources, max_frames):
    lengths = [getattr(s, "length", None) for s in sources if not isinstance(s, BaseException)]
    if not lengths or any(n is None for n in lengths):
        return None
    from rich.progress import Progress

    total = sum(min(n, max_frames) if max_frames else n for n in lengths)
    bar = Progress(transient=True)
    bar.start()
    return bar, bar.add_task("frames", total=total)


def _finish(report: RunReport, start: float, bar) -> RunReport:
    if bar is not None:
        bar[0].stop()
    report.seconds = time.perf_counter() - start
    report.failed = [s.name for s in report.streams if s.error]
    return report
