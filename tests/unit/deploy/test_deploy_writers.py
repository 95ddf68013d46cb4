"""Writers: JSON lines in the documented format, and AsyncWriter's order, back-pressure and failure reporting."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest


def test_jsonl_rounds_boxes_and_keeps_integer_classes(tmp_path):
    from yolo_slim.deploy.writers import JsonlWriter, read_jsonl

    w = JsonlWriter(tmp_path / "d.jsonl")
    w.write("0_a", 3, np.array([[1.234, 2.0, 3.456, 4.0, 0.98765, 1.0]], np.float32))
    w.write("0_a", 4, np.zeros((0, 6), np.float32))
    w.close()
    a, b = read_jsonl(tmp_path / "d.jsonl")
    assert a == {"stream": "0_a", "frame": 3, "detections": [[1.23, 2.0, 3.46, 4.0, 0.99, 1]]}
    assert isinstance(a["detections"][0][5], int) and b["detections"] == []


def test_async_writer_keeps_each_stream_in_order_off_the_caller():
    from yolo_slim.deploy.writers import AsyncWriter

    seen: dict[int, list[int]] = {0: [], 1: []}
    threads = set()

    def write(stream, index, frame, dets):
        time.sleep(0.002 if stream == 0 else 0.0)  # a slow stream must not reorder or block the other
        threads.add(threading.current_thread().name)
        seen[stream].append(index)

    w = AsyncWriter(write, 2, depth=2)
    for i in range(20):
        for s in (0, 1):
            w(s, i, None, None)
    assert w.close() == {}
    assert seen == {0: list(range(20)), 1: list(range(20))}
    assert threading.current_thread().name not in threads and len(threads) == 2


def test_async_writer_reports_a_failing_stream_and_goes_on_with_the_others():
    from yolo_slim.deploy.writers import AsyncWriter
    from yolo_slim.errors import DeployError

    done: list[tuple[int, int]] = []

    def write(stream, index, frame, dets):
        if stream == 1 and index == 2:
            raise OSError("disk full")
        done.append((stream, index))

    w = AsyncWriter(write, 2)
    for i in range(3):
        w(0, i, None, None)
        w(1, i, None, None)
    deadline = time.time() + 5
    while 1 not in w.errors and time.time() < deadline:
        time.sleep(0.01)
    with pytest.raises(DeployError, match="disk full"):
        w(1, 3, None, None)
    w(0, 3, None, None)
    assert w.close() == {1: "disk full"}
    assert [i for s, i in done if s == 0] == [0, 1, 2, 3] and [i for s, i in done if s == 1] == [0, 1]
