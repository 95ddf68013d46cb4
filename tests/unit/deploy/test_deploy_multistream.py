"""Multi-stream detection end to end: generated MJPG videos, each stream's square found in that stream, every mode."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import centre_inside, square_frame

pytestmark = pytest.mark.openvino

FRAME_HW = (120, 160)
# one square per stream, in different places, moving 2 px per frame
BOXES = [(10, 10, 50, 50), (100, 60, 140, 100), (20, 70, 60, 110), (70, 20, 110, 60)]
LENGTHS = [6, 6, 4, 6]  # stream 2 ends early


def _box(k: int, t: int):
    x1, y1, x2, y2 = BOXES[k]
    return (x1 + 2 * t, y1, x2 + 2 * t, y2)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("videos")
    paths = []
    for k, n in enumerate(LENGTHS):
        path = folder / f"s{k}.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (FRAME_HW[1], FRAME_HW[0]))
        for t in range(n):
            writer.write(square_frame(FRAME_HW, _box(k, t)))
        writer.release()
        paths.append(path)
    return paths


def _run(square_ir, sources, mode, out: Path):
    from yolo_slim.deploy.task import detect

    from app_configs import compose_config

    cfg = compose_config("detect", values={"weights": str(square_ir), "source": [str(s) for s in sources], "mode": mode, "progress": False,
                                           "paths": {"output_dir": str(out)}})
    return detect(cfg)


@pytest.mark.parametrize("mode", ["mosaic", "async", "batch"])
def test_square_found_in_its_own_stream(square_ir, videos, tmp_path, mode):
    from yolo_slim.deploy.writers import read_jsonl

    metrics, artifacts = _run(square_ir, videos, mode, tmp_path)
    records = read_jsonl(artifacts["jsonl"])
    assert len(records) == sum(LENGTHS)
    for rec in records:
        k = int(rec["stream"].split("_")[0])
        dets = np.array(rec["detections"], np.float32).reshape(-1, 6)
        assert centre_inside(dets, _box(k, rec["frame"]), margin=2), (mode, rec)
    assert metrics["detect/failed"] == 0 and metrics["detect/frames"] == sum(LENGTHS)
    for i in range(4):
        video = artifacts[f"stream_{i}"]
        cap = cv2.VideoCapture(str(video))
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == LENGTHS[i]
        cap.release()


def test_failed_stream_does_not_stop_others(square_ir, videos, tmp_path):
    from yolo_slim.deploy.writers import read_jsonl

    sources = [videos[0], tmp_path / "missing.avi", videos[1]]
    metrics, artifacts = _run(square_ir, sources, "async", tmp_path / "out")
    assert metrics["detect/failed"] == 1
    streams = {r["stream"] for r in read_jsonl(artifacts["jsonl"])}
    assert streams == {"0_s0", "2_s1"}


def test_bad_mode_and_no_sources(square_ir, tmp_path):
    from yolo_slim.errors import ConfigError, DeployError

    with pytest.raises(ConfigError, match="mode must be one of"):
        _run(square_ir, [tmp_path], "tiles", tmp_path)
    with pytest.raises(DeployError, match="no source could be opened"):
        _run(square_ir, [tmp_path / "a.avi", tmp_path / "b.avi"], "async", tmp_path / "o")


class _Breaking:
    """A source that yields `good` frames, then raises (a stream that fails mid-way)."""

    def __init__(self, frame, good: int) -> None:
        self.frame, self.good, self.name, self.fps, self.length = frame, good, "breaking", None, None

    def read(self):
        if self.good == 0:
            raise OSError("decoder lost the stream")
        self.good -= 1
        return self.frame

    def close(self) -> None:
        """Nothing to release."""


class _Frames:
    """`n` frames with the first stream's square."""

    def __init__(self, n):
        self.n, self.name, self.fps, self.length = n, "ok", None, n

    def read(self):
        if self.n == 0:
            return None
        self.n -= 1
        return square_frame(FRAME_HW, BOXES[0])

    def close(self):
        """Nothing to release."""


@pytest.mark.parametrize("mode", ["mosaic", "async", "batch"])
def test_stream_failing_midway_leaves_others_complete(square_ir, mode):
    from yolo_slim.deploy.multistream import run_streams

    seen: dict[int, list[int]] = {0: [], 1: []}
    report = run_streams(
        str(square_ir), [_Frames(7), _Breaking(square_frame(FRAME_HW, BOXES[1]), 2)], mode,
        on_result=lambda s, i, frame, dets: seen[s].append(i), log_every=1e9,
    )
    assert seen == {0: list(range(7)), 1: [0, 1]}  # in order, nothing lost
    assert report.failed == ["breaking"] and "decoder lost" in report.streams[1].error
    assert report.streams[0].frames == 7 and report.fps > 0


@pytest.mark.parametrize("mode", ["mosaic", "batch", "async"])
def test_graph_letterbox_and_nms_find_the_same_squares(square_ir, videos, tmp_path, mode):
    from app_configs import compose_config

    from yolo_slim.deploy.task import detect
    from yolo_slim.deploy.writers import read_jsonl

    cfg = compose_config("detect", values={"weights": str(square_ir), "source": [str(s) for s in videos], "mode": mode, "progress": False,
                                           "preprocess": "graph", "nms": "graph", "output": {"video": False}, "paths": {"output_dir": str(tmp_path)}})
    metrics, artifacts = detect(cfg)
    records = read_jsonl(artifacts["jsonl"])
    assert len(records) == sum(LENGTHS) and metrics["detect/failed"] == 0
    for rec in records:
        k = int(rec["stream"].split("_")[0])
        assert centre_inside(np.array(rec["detections"], np.float32).reshape(-1, 6), _box(k, rec["frame"]), margin=2), rec


@pytest.mark.parametrize("mode,requests", [("async", 3), ("batch", 3), ("mosaic", 1)])
def test_results_in_frame_order_with_several_requests_in_flight(square_ir, mode, requests):
    from yolo_slim.deploy.multistream import run_streams

    class _Moving:
        """The square moves 3 px per frame: a frame delivered out of order has its detection in the wrong place."""

        def __init__(self, n):
            self.t, self.n, self.name, self.fps, self.length = 0, n, "moving", None, n

        def read(self):
            if self.t == self.n:
                return None
            self.t += 1
            x = 3 * (self.t - 1)
            return square_frame(FRAME_HW, (10 + x, 40, 50 + x, 80))

        def close(self):
            """Nothing to release."""

    got: dict[int, list] = {0: [], 1: []}
    report = run_streams(str(square_ir), [_Moving(12), _Moving(9)], mode, requests=requests, log_every=1e9,
                         on_result=lambda s, i, frame, dets: got[s].append((i, dets)))
    assert report.requests == requests and report.cpu_seconds > 0 and report.failed == []
    for s, n in ((0, 12), (1, 9)):
        assert [i for i, _ in got[s]] == list(range(n))
        for i, dets in got[s]:
            assert centre_inside(dets, (10 + 3 * i, 40, 50 + 3 * i, 80), margin=2), (mode, s, i, dets)


def test_output_failure_drops_only_that_stream(square_ir):
    from yolo_slim.deploy.multistream import run_streams
    from yolo_slim.deploy.writers import AsyncWriter
    from yolo_slim.errors import DeployError

    written: dict[int, list[int]] = {0: [], 1: []}

    def write(stream, index, frame, dets):
        if stream == 1 and index == 1:
            raise DeployError("out1.avi: OpenCV cannot write this video")
        written[stream].append(index)

    writer = AsyncWriter(write, 2, depth=1)
    report = run_streams(str(square_ir), [_Frames(8), _Frames(8)], "batch", on_result=writer, log_every=1e9)
    errors = writer.close()
    assert written[0] == list(range(8)) and written[1] == [0]
    assert errors == {1: "out1.avi: OpenCV cannot write this video"}
    assert report.streams[0].frames == 8 and report.streams[0].error is None
