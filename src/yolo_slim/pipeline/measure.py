"""Measurements for the pipeline's tables: quality, cost and speed of one model.

A row holds the original tutorial's columns: P, R (at the score threshold), mAP@0.5,
Params, `.weights` size (MiB), inference time (ms, batch 1) and BFLOPs. Speeds of
compared engines are measured interleaved (round-robin), so a noisy shared machine
slows all of them alike and their ratios stay meaningful.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from yolo_slim import tables




def cost_row(cfg, hw: tuple[int, int]) -> dict[str, float]:
    """Params (a float, as the stage results have always held it), `.weights` MiB and
    darknet BFLOPs of a cfg at input `hw` (`yolo_slim.tables.cost_row`)."""
    row = tables.cost_row(cfg, hw)
    return {**row, "params": float(row["params"])}


def runtime_of(name: str) -> str:
    """The runtime of an engine named `model/engine` (`pytorch`, `onnxruntime`, `openvino`)."""
    return name.split("/")[-1].split("_")[0]


def interleaved_latency(
    engines: Mapping[str, Callable[[], Any]],
    runs: int = 30,
    warmup: int = 3,
    block: int = 5,
    group: Callable[[str], str] = runtime_of,
    settle_s: float = 0.02,
) -> dict[str, float]:
    """Median milliseconds per call of each engine, timed round-robin in blocks.

    Each round gives every runtime a turn (`group` of the engine's name), and in its
    turn every engine of that runtime runs `block` consecutive timed calls after one
    untimed one. Drifting machine load then hits all engines alike, while an engine's
    thread pool is not woken for a single call between two others' (which inflates every
    figure). Between two runtimes' turns the process sleeps `settle_s`, so that one
    runtime's idle threads are asleep when the next one's are timed (ONNX Runtime's spin
    for tens of milliseconds after a run unless told not to, see `onnxruntime_engine`).

    Args:
        engines: name -> a function running one batch-1 inference.
        runs: timed calls per engine (rounded up to whole blocks).
        warmup: untimed calls per engine first.
        block: consecutive calls of one engine per turn.
        group: engine name -> its runtime; engines of one runtime share a turn.
        settle_s: seconds of sleep between two runtimes' turns.
    """
    for fn in engines.values():
        for _ in range(warmup):
            fn()
    turns: dict[str, list[str]] = {}
    for name in engines:
        turns.setdefault(group(name), []).append(name)
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(max(1, -(-runs // block))):
        for names in turns.values():
            if len(turns) > 1:
                time.sleep(settle_s)
            for name in names:
                fn = engines[name]
                fn()  # re-wakes this engine's threads after the others ran
                for _ in range(block):
                    start = time.perf_counter()
                    fn()
                    times[name].append((time.perf_counter() - start) * 1000.0)
    return {name: statistics.median(t) for name, t in times.items()}


def torch_engine(model, hw: tuple[int, int]) -> Callable[[], Any]:
    """One eval-mode PyTorch forward of a zero batch-1 input."""
    x = torch.zeros(1, model.cfg.net.channels, *hw)
    model.eval()

    def run() -> Any:
        with torch.no_grad():
            return model(x)

    return run


def onnxruntime_engine(onnx_path, hw: tuple[int, int]) -> Callable[[], Any]:
    """One ONNX Runtime CPU inference of a zero batch-1 input.

    Its threads stop spinning when a run returns (`session.force_spinning_stop`): by default
    they spin on for tens of milliseconds, and on a 2-core machine that slowed the
    OpenVINO inferences timed after them by half (0.55 -> 0.8 ms, slim demo model)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.add_session_config_entry("session.force_spinning_stop", "1")
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = np.zeros((1, 3, *hw), dtype=np.float32)
    return lambda: session.run(None, {name: x})


def openvino_engine(xml_path, hw: tuple[int, int], device: str = "CPU", compute: str | None = None) -> Callable[[], Any]:
    """One OpenVINO inference (latency hint) of a zero batch-1 input on `device` (CPU, GPU, AUTO).

    Args:
        compute: `INFERENCE_PRECISION_HINT` (`f32`, `bf16`, `f16`); None keeps the
            device's default (bf16 for an FP32 IR on a CPU with AMX, f16 on a GPU).
    """
    from yolo_slim.openvino_core import compile_model

    properties = {"PERFORMANCE_HINT": "LATENCY"}
    if compute is not None:
        properties["INFERENCE_PRECISION_HINT"] = compute
    compiled = compile_model(xml_path, device, properties)
    request = compiled.create_infer_request()
    x = np.zeros((1, 3, *hw), dtype=np.float32)
    return lambda: request.infer({0: x}, share_inputs=True)  # as OpenVINODetector calls it
