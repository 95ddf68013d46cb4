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


def interleaved_latency(engines: Mapping[str, Callable[[], Any]], runs: int = 30, warmup: int = 3, block: int = 5) -> dict[str, float]:
    """Median milliseconds per call of each engine, timed round-robin in blocks.

    Each round runs `block` consecutive calls of every engine in turn: drifting
    machine load then hits all engines alike, while an engine's thread pool is not
    woken for a single call between two others' (which inflates every figure).

    Args:
        engines: name -> a function running one batch-1 inference.
        runs: timed calls per engine (rounded up to whole blocks).
        warmup: untimed calls per engine first.
        block: consecutive calls of one engine per turn.
    """
    for fn in engines.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(max(1, -(-runs // block))):
        for name, fn in engines.items():
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
    """One ONNX Runtime CPU inference of a zero batch-1 input."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = np.zeros((1, 3, *hw), dtype=np.float32)
    return lambda: session.run(None, {name: x})


def openvino_engine(xml_path, hw: tuple[int, int], device: str = "CPU") -> Callable[[], Any]:
    """One OpenVINO inference (latency hint) of a zero batch-1 input on `device` (CPU, GPU, AUTO)."""
    from yolo_slim.openvino_core import compile_model

    compiled = compile_model(xml_path, device, {"PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    x = np.zeros((1, 3, *hw), dtype=np.float32)
    return lambda: request.infer({0: x})
