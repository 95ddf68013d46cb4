"""Timing OpenVINO models the way the deployment runs them, interleaved.

`DeviceSettings` are the compile properties every timed model gets: the device, the
LATENCY performance hint, the thread count and the inference precision
(`prune.latency.precision: auto` is `deployed_precision`: what the deployment computes an
FP32 IR in, bf16 on CPUs with native bf16 such as AMD Zen 4 and Intel Xeon with AMX).
A `WallTimer` samples the wall-clock time of one batch-1 inference (`start_async()`
+ `wait()` on a request whose inputs are set once: the engine's time, no Python
copies).

`measure_round_robin` runs many timers in rounds (each round: every timer in turn,
a few untimed inferences, then a block of timed ones), so load changes on a shared
machine hit all of them alike, and returns a quantile of each timer's samples (the
median by default).

OpenVINO's own per-node profiling (`PERF_COUNT`) is not used: its `real_time` is
the running mean since compilation truncated to whole microseconds, which carries
the first, cold inference along and cannot give per-inference samples.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from yolo_slim.errors import LatencyError


@dataclass(frozen=True)
class DeviceSettings:
    """How timed models are compiled.

    Attributes:
        device: OpenVINO device string (`CPU`, `GPU`, `GPU.1`, ...).
        threads: `INFERENCE_NUM_THREADS` on CPU; None keeps OpenVINO's choice for the
            latency hint (then `describe()` records the number it chose).
        precision: `INFERENCE_PRECISION_HINT` (`f32`, `bf16`, `f16`).
    """

    device: str = "CPU"
    threads: int | None = None
    precision: str = "f32"

    def __post_init__(self) -> None:
        if not isinstance(self.device, str) or not self.device:
            raise LatencyError(f"latency device must be an OpenVINO device string such as CPU, got {self.device!r}")
        if self.threads is not None and (int(self.threads) != self.threads or self.threads < 1):
            raise LatencyError(f"latency threads={self.threads!r} must be an integer >= 1 or null")
        if self.precision not in ("f32", "bf16", "f16"):
            raise LatencyError(f"latency precision={self.precision!r}; expected f32, bf16 or f16")

    @property
    def is_cpu(self) -> bool:
        return self.device.split(".")[0].upper() == "CPU"

    def properties(self) -> dict[str, Any]:
        """The compile properties."""
        props: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": self.precision}
        if self.threads is not None and self.is_cpu:
            props["INFERENCE_NUM_THREADS"] = int(self.threads)
        return props


def deployed_precision(device: str) -> str:
    """The element type `device` computes an FP32 IR in when nothing is asked (`f32`, `bf16`
    or `f16`): what the deployment (`OpenVINODetector`, the pipeline's benchmark) runs.
    bf16 on CPUs with AMX or native bf16, f16 on GPUs; `f32` where the device does not say
    (``AUTO``)."""
    try:
        name = _core().get_property(device, "INFERENCE_PRECISION_HINT").get_type_name()
    except Exception:  # noqa: BLE001 - AUTO and older plugins have no such property
        return "f32"
    return str(name) if str(name) in ("f32", "bf16", "f16") else "f32"


def _core():
    from yolo_slim.openvino_core import core

    return core()


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(settings: DeviceSettings) -> dict[str, Any]:
    """What a latency table is only valid for: device, its full name, the CPU model,
    OpenVINO version, the thread count actually used and the precision.

    Raises:
        LatencyError: OpenVINO does not know the device.
    """
    import openvino as ov

    from yolo_slim.deploy.select import device_name
    from yolo_slim.latency.micro import chain_model

    core = _core()
    if settings.device.split(".")[0] not in {d.split(".")[0] for d in core.available_devices} and settings.device not in ("AUTO",):
        raise LatencyError(f"latency device {settings.device!r} is not available here; OpenVINO sees {', '.join(core.available_devices)}")
    full_name = device_name(settings.device) or settings.device
    threads: Any = settings.threads
    if settings.is_cpu:
        compiled = compile_model(chain_model(1), settings)
        threads = int(compiled.get_property("INFERENCE_NUM_THREADS"))
    return {
        "device": settings.device,
        "device_name": full_name,
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "openvino": ov.get_version(),
        "threads": threads,
        "precision": settings.precision,
        "hint": "LATENCY",
        "batch": 1,
    }


def compile_model(model: Any, settings: DeviceSettings, core: Any = None):
    """`yolo_slim.openvino_core.compile_model` with `settings`; `model` is an `ov.Model` or an IR/ONNX path.

    Raises:
        LatencyError: OpenVINO cannot compile it (its first message line).
    """
    from yolo_slim.openvino_core import compile_model as compile_kept

    try:
        return compile_kept(model, settings.device, settings.properties(), on=core)
    except Exception as err:  # noqa: BLE001 - OpenVINO raises RuntimeError and others
        first = next((ln for ln in str(err).splitlines() if ln.strip() and not ln.startswith("Exception from")), type(err).__name__)
        raise LatencyError(f"OpenVINO cannot compile a timed model for {settings.device}: {first}") from err


def _request(compiled):
    import openvino as ov

    request = compiled.create_infer_request()
    for i, port in enumerate(compiled.inputs):
        shape = tuple(int(d) for d in port.get_partial_shape().to_shape())
        request.set_input_tensor(i, ov.Tensor(np.zeros(shape, np.float32)))
    return request


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
"""`wall`: elapsed time; `cpu`: this process's CPU time (all its threads), which
leaves out the time other processes hold the cores: with one inference thread it
is the elapsed time of an otherwise idle machine."""


class WallTimer:
    """Samples the time (microseconds) of one inference of a compiled model.

    Args:
        compiled: the compiled model.
        clock: a key of `CLOCKS`.
    """

    def __init__(self, compiled, clock: str = "wall") -> None:
        if clock not in CLOCKS:
            raise LatencyError(f"latency clock={clock!r}; expected one of {', '.join(CLOCKS)}")
        self.compiled = compiled
        self.clock = CLOCKS[clock]
        self.request = _request(compiled)
        self.samples: list[float] = []

    def call(self) -> None:
        self.request.start_async()
        self.request.wait()

    def sample(self) -> None:
        start = self.clock()
        self.request.start_async()
        self.request.wait()
        self.samples.append((self.clock() - start) * 1e6)

    def summary(self, quantile: float = 0.5) -> float:
        return float(np.quantile(self.samples, quantile))

    def spread(self) -> float:
        """Interquartile range over median of the samples (0 when they agree)."""
        q25, q50, q75 = np.quantile(self.samples, (0.25, 0.5, 0.75))
        return float((q75 - q25) / q50) if q50 > 0 else 0.0


def measure_round_robin(
    timers: Mapping[Any, WallTimer],
    runs: int,
    *,
    block: int = 2,
    settle_us: float = 2000.0,
    quantile: float = 0.5,
) -> dict[Any, float]:
    """Sample every timer `runs` times in interleaved rounds; their summaries.

    In each round every timer takes its turn: untimed inferences until `settle_us`
    have passed (at least two), then `block` timed ones. The untimed ones matter:
    right after other compiled models ran, a model's first inferences are slow (a
    network by 30 % on the 2-core development machine; the others' worker threads
    still spinning is the likely cause).

    Args:
        timers: key -> timer.
        runs: timed samples per timer (rounded up to whole blocks).
        block: timed inferences per turn.
        settle_us: untimed time per turn before them, microseconds.
        quantile: which quantile of each timer's samples to return (0.5: median).

    Returns:
        key -> microseconds.
    """
    if runs < 1 or block < 1 or settle_us < 0 or not 0.0 <= quantile <= 1.0:
        raise LatencyError(
            f"measure_round_robin: runs and block must be >= 1, settle_us >= 0 and quantile in [0, 1], got {runs}, {block}, {settle_us}, {quantile}"
        )
    for _ in range(-(-runs // block)):
        for timer in timers.values():
            start = time.perf_counter()
            calls = 0
            while calls < 2 or (time.perf_counter() - start) * 1e6 < settle_us:
                timer.call()
                calls += 1
            for _ in range(block):
                timer.sample()
    return {key: timer.summary(quantile) for key, timer in timers.items()}


def fit_line(xs: Iterable[float], ys: Iterable[float]) -> tuple[float, float]:
    """Least-squares (intercept, slope) of y against x."""
    x = np.asarray(list(xs), dtype=np.float64)
    y = np.asarray(list(ys), dtype=np.float64)
    slope, intercept = np.polyfit(x, y, 1)
    return float(intercept), float(slope)
