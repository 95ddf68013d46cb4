"""The benchmark's interleaved timing: each runtime gets its own turn, every engine its median."""

from __future__ import annotations

import time

import pytest

from yolo_slim.pipeline.measure import interleaved_latency, runtime_of


def test_runtime_of_names_the_engine_family():
    assert runtime_of("baseline/openvino_fp32") == "openvino"
    assert runtime_of("slim/openvino_fp32_bf16") == "openvino"
    assert runtime_of("slim/onnxruntime") == "onnxruntime"
    assert runtime_of("sparse/pytorch") == "pytorch"


def test_each_runtime_runs_in_one_contiguous_turn_per_round():
    calls: list[str] = []
    names = ["baseline/pytorch", "baseline/onnxruntime", "baseline/openvino_fp32", "slim/pytorch", "slim/onnxruntime", "slim/openvino_fp32"]
    engines = {name: (lambda name=name: calls.append(name)) for name in names}
    interleaved_latency(engines, runs=4, warmup=0, block=2, settle_s=0.0)
    per_call = 1 + 2  # one untimed wake-up call, then the block
    round_len = per_call * len(names)
    assert len(calls) == 2 * round_len  # runs=4 in blocks of 2: two rounds
    for start in (0, round_len):
        families = [runtime_of(c) for c in calls[start:start + round_len]]
        # pytorch, onnxruntime, openvino: each family's calls are one run, in first-seen order
        changes = [f for i, f in enumerate(families) if i == 0 or families[i - 1] != f]
        assert changes == ["pytorch", "onnxruntime", "openvino"]
        assert calls[start:start + per_call] == ["baseline/pytorch"] * per_call
        assert calls[start + per_call:start + 2 * per_call] == ["slim/pytorch"] * per_call


def test_medians_are_per_engine_milliseconds():
    engines = {"a/openvino": lambda: time.sleep(0.002), "b/openvino": lambda: None}
    ms = interleaved_latency(engines, runs=5, warmup=1, block=5)
    assert ms["a/openvino"] == pytest.approx(2.0, abs=1.5) and ms["a/openvino"] > 1.5
    assert ms["b/openvino"] < 0.5


def test_turns_of_different_runtimes_are_separated_by_the_settle_sleep(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr("yolo_slim.pipeline.measure.time.sleep", slept.append)
    engines = {"a/pytorch": lambda: None, "a/openvino_fp32": lambda: None}
    interleaved_latency(engines, runs=10, warmup=0, block=5, settle_s=0.05)
    assert slept == [0.05] * 4  # two rounds, two turns each
    slept.clear()
    interleaved_latency({"a/openvino_fp32": lambda: None, "b/openvino_fp32": lambda: None}, runs=10, warmup=0, block=5, settle_s=0.05)
    assert slept == []  # one runtime: nothing to settle
