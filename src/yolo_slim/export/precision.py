"""Which precision is fastest on this device: measured, recorded, explained.

A lower precision is not always faster. On small networks the fixed cost of an
inference call dominates, INT8 adds quantize/dequantize layers around the float
decode head, and narrow convolutions leave the wide integer SIMD lanes idle; an
FP16-compressed IR runs in FP32 on a CPU without FP16 arithmetic. So the exported
IRs are timed on the device, interleaved (round-robin blocks, so machine load hits
all alike), in the two ways they are deployed:

- latency: one batch-1 synchronous inference, LATENCY hint;
- throughput: batch-1 requests through an `AsyncInferQueue` of the device's
  optimal size, THROUGHPUT hint.

`measure_precisions` returns a `PrecisionReport`: per precision the medians and
the inference precision the plugin actually used, the fastest precision by each
measure (`choose_fastest`: the most accurate precision within `TOLERANCE` of the
best), the fixed per-inference cost (a trivial network's latency on the same input)
and, for every precision slower than FP32, the measured reasons. Export writes it
into `meta.json` (`speed`); `detect.py` reads it to pick the fastest IR or to warn.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from yolo_slim.errors import ExportError

Metric = Literal["latency", "throughput"]
#: preference when speeds are within TOLERANCE: the most accurate first
ORDER = ("fp32", "fp16", "int8")
#: relative speed difference below which two precisions count as equally fast
TOLERANCE = 0.05


@dataclass(frozen=True)
class PrecisionTiming:
    """One IR's speed on the device.

    Attributes:
        precision: `fp32`, `fp16` or `int8` (the IR's weights).
        xml: the IR's path as given (export records it relative to its folder).
        latency_ms: median batch-1 latency, milliseconds.
        throughput_fps: median throughput, images per second.
        inference_precision: the element type the plugin computes in (`f32`,
            `bf16`, `f16`; INT8 layers run in int8 whatever this says).
    """

    precision: str
    xml: str
    latency_ms: float
    throughput_fps: float
    inference_precision: str


@dataclass(frozen=True)
class PrecisionReport:
    """Timings of several precisions of one model on one device, and what follows from them.

    Attributes:
        device: the OpenVINO device name used (`CPU`, ...).
        device_name: its full name (the CPU model), to tell records of other machines.
        openvino: the OpenVINO version.
        timings: one per precision, in `ORDER`.
        fastest_latency: the precision to deploy for batch-1 latency.
        fastest_throughput: the precision to deploy for throughput.
        overhead_ms: latency of a trivial network on the same input, milliseconds:
            the fixed cost of one inference call on this device.
        notes: for each precision slower than FP32, why (one sentence each).
    """

    device: str
    device_name: str
    openvino: str
    timings: tuple[PrecisionTiming, ...]
    fastest_latency: str
    fastest_throughput: str
    overhead_ms: float
    notes: tuple[str, ...] = field(default=())

    def timing(self, precision: str) -> PrecisionTiming:
        for t in self.timings:
            if t.precision == precision:
                return t
        raise KeyError(precision)

    def fastest(self, metric: Metric) -> str:
        return self.fastest_latency if metric == "latency" else self.fastest_throughput

    def as_dict(self, relative_to: str | os.PathLike | None = None) -> dict[str, Any]:
        """A JSON-ready dict (the `speed` entry of `meta.json`), IR paths relative to `relative_to` if given."""
        out = asdict(self)
        out["timings"] = [asdict(t) | ({"xml": os.path.relpath(t.xml, relative_to)} if relative_to is not None else {}) for t in self.timings]
        out["notes"] = list(self.notes)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PrecisionReport":
        """The inverse of `as_dict`.

        Raises:
            ExportError: a key is missing or of the wrong kind.
        """
        try:
            timings = tuple(PrecisionTiming(**{k: t[k] for k in PrecisionTiming.__dataclass_fields__}) for t in data["timings"])
            return cls(
                device=str(data["device"]), device_name=str(data["device_name"]), openvino=str(data["openvino"]),
                timings=timings, fastest_latency=str(data["fastest_latency"]), fastest_throughput=str(data["fastest_throughput"]),
                overhead_ms=float(data["overhead_ms"]), notes=tuple(str(n) for n in data.get("notes", ())),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ExportError(f"speed record: missing or invalid entry ({err})") from None

    def summary(self) -> list[str]:
        """Human-readable lines: one per precision, the choice, and the notes."""
        lines = [f"{t.precision.upper()}: {t.latency_ms:.2f} ms batch-1, {t.throughput_fps:.1f} FPS (computes in {t.inference_precision})"
                 for t in self.timings]
        lines.append(f"fastest on {self.device_name} ({self.device}): {self.fastest_latency.upper()} for latency, "
                     f"{self.fastest_throughput.upper()} for throughput")
        return lines + list(self.notes)


def choose_fastest(timings: Mapping[str, float], metric: Metric, tolerance: float = TOLERANCE) -> str:
    """The precision to deploy: the most accurate one (`ORDER`) within `tolerance` of the fastest.

    Args:
        timings: precision -> latency in ms (`metric="latency"`: lower is better)
            or throughput in images/s (`"throughput"`: higher is better).
        metric: which kind of figure `timings` holds.
        tolerance: relative margin inside which speeds count as equal (timing noise;
            a lower precision must be clearly faster to be worth its accuracy cost).

    Raises:
        ExportError: no timings, an unknown precision, or a figure that is not positive.
    """
    if not timings:
        raise ExportError("choose_fastest: no timings")
    bad = sorted(set(timings) - set(ORDER))
    if bad:
        raise ExportError(f"choose_fastest: unknown precisions {bad}; expected some of {list(ORDER)}")
    if any(not v > 0 for v in timings.values()):
        raise ExportError(f"choose_fastest: timings must be positive, got {dict(timings)}")
    if metric == "latency":
        best = min(timings.values())
        good = {p for p, v in timings.items() if v <= best * (1 + tolerance)}
    elif metric == "throughput":
        best = max(timings.values())
        good = {p for p, v in timings.items() if v >= best * (1 - tolerance)}
    else:
        raise ExportError(f"choose_fastest: metric must be 'latency' or 'throughput', got {metric!r}")
    return next(p for p in ORDER if p in good)


# ---------------------------------------------------------------------- facts about an IR


@dataclass(frozen=True)
class GraphFacts:
    """What in an IR's graph explains its speed.

    Attributes:
        convolutions: Convolution / GroupConvolution ops.
        narrow: of those, how many have fewer than `NARROW` output channels.
        median_channels: median output channels of the convolutions.
        quantized: convolutions fed by an activation FakeQuantize (INT8 ones).
        fake_quantize: FakeQuantize ops on activations (each a quantize + dequantize).
    """

    convolutions: int
    narrow: int
    median_channels: float
    quantized: int
    fake_quantize: int


NARROW = 32
#: the per-inference cost counts as a reason from this share of FP32's latency on
OVERHEAD_SHARE = 0.2


def graph_facts(model) -> GraphFacts:
    """Count the convolutions, their widths and the INT8 quantize layers of an `ov.Model`."""
    convs, quantized, fq = [], 0, 0
    for op in model.get_ops():
        kind = op.get_type_name()
        if kind == "FakeQuantize" and op.input_value(0).get_node().get_type_name() != "Constant":
            fq += 1
        if kind in ("Convolution", "GroupConvolution"):
            shape = op.get_output_partial_shape(0)
            if shape.rank.is_static and shape[1].is_static:
                convs.append(shape[1].get_length())
            if op.input_value(0).get_node().get_type_name() == "FakeQuantize":
                quantized += 1
    return GraphFacts(len(convs), sum(c < NARROW for c in convs), float(statistics.median(convs)) if convs else 0.0, quantized, fq)


def explain_slower(precision: str, timing: PrecisionTiming, fp32: PrecisionTiming, facts: GraphFacts, overhead_ms: float) -> str:
    """One sentence: how much slower `precision` is than FP32 and the measured reasons."""
    lat, thr = timing.latency_ms / fp32.latency_ms, fp32.throughput_fps / timing.throughput_fps
    figures = (f"{timing.latency_ms:.2f} vs {fp32.latency_ms:.2f} ms batch-1, {lat:.2f}x; "
               f"throughput {timing.throughput_fps:.1f} vs {fp32.throughput_fps:.1f} FPS, {thr:.2f}x")
    slower_latency, slower_throughput = lat > 1 + TOLERANCE, thr > 1 + TOLERANCE
    if slower_latency == slower_throughput:  # both (or, called directly, neither beyond the tolerance)
        where = ""
    elif slower_latency:
        where = " in batch-1 latency, not in throughput"
    else:
        where = " in throughput, not in batch-1 latency"
    parts = [f"{precision.upper()} is slower than FP32 on this device{where} ({figures}):"]
    reasons = []
    if overhead_ms >= OVERHEAD_SHARE * fp32.latency_ms:
        reasons.append(f"a fixed cost of {overhead_ms:.2f} ms per inference (a trivial network's latency here) is "
                       f"{100 * overhead_ms / fp32.latency_ms:.0f}% of FP32's latency, so there is little arithmetic to save")
    if precision == "int8":
        if facts.fake_quantize:
            reasons.append(f"{facts.fake_quantize} quantize/dequantize (FakeQuantize) layers for {facts.quantized} INT8 convolutions, "
                           f"{facts.convolutions - facts.quantized} left in float (the decode head among them) with conversions between")
        if facts.narrow:
            reasons.append(f"{facts.narrow} of {facts.convolutions} convolutions have fewer than {NARROW} output channels "
                           f"(median {facts.median_channels:.0f}), too narrow to fill the integer SIMD lanes")
    if precision == "fp16" and timing.inference_precision == fp32.inference_precision:
        reasons.append(f"the FP16-compressed weights are expanded at load and it computes in {timing.inference_precision} like FP32, "
                       "so it only saves disk space")
    return " ".join(parts) + " " + ("; ".join(reasons) if reasons else "no structural reason found; timing noise is possible") + "."


# ---------------------------------------------------------------------- measurement


def _trivial_model(shape: list[int]):
    """Input `shape` f32 -> its sum: the cost of an inference call that does almost nothing."""
    import openvino as ov
    import openvino.opset13 as ops

    x = ops.parameter(shape, ov.Type.f32, name="x")
    axes = np.arange(len(shape), dtype=np.int64)
    return ov.Model([ops.result(ops.reduce_sum(x, axes, keep_dims=False))], [x], "trivial")


def _inference_precision(compiled) -> str:
    """The element type a compiled model computes in (`f32`, `bf16`, `f16`), or `device default`."""
    try:
        return str(compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name())
    except (RuntimeError, AttributeError, TypeError):  # a device without the property
        return "device default"


def _burst(compiled, x: np.ndarray, count: int) -> Callable[[], float]:
    """`count` requests through an AsyncInferQueue of the optimal size; returns images per second."""
    import openvino as ov

    jobs = max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
    q = ov.AsyncInferQueue(compiled, jobs)

    def run() -> float:
        start = time.perf_counter()
        for _ in range(count):
            q.start_async({0: x})
        q.wait_all()
        return count / (time.perf_counter() - start)

    return run


def measure_precisions(
    irs: Mapping[str, str | os.PathLike],
    device: str = "CPU",
    rounds: int = 5,
    block: int = 5,
    config: Mapping[str, Any] | None = None,
    input_shape: list[int] | None = None,
) -> PrecisionReport:
    """Time several precisions of one model, interleaved, and choose the fastest.

    Args:
        irs: precision (`fp32`, `fp16`, `int8`) -> its `model.xml`. FP32 is the
            reference of the notes; without it there are none.
        device: OpenVINO device.
        rounds: round-robin rounds; each takes, per IR, `block` batch-1 latency
            calls and one throughput burst (4 requests per optimal request).
        block: consecutive latency calls per IR and round.
        config: extra compile properties for both compilations (threads, ...).
        input_shape: reshape every IR's input to this (e.g. `[1, 3, H, W]` for an
            IR with dynamic axes); default the first IR's own static shape.

    Returns:
        The `PrecisionReport`; `xml` entries are the given paths as strings.

    Raises:
        ExportError: an unknown precision, an IR that cannot be read or compiled,
            or an input shape that is not static after reshaping to batch 1.
    """
    import openvino as ov

    from yolo_slim.openvino_core import compile_model
    from yolo_slim.openvino_core import core as openvino_core

    bad = sorted(set(irs) - set(ORDER))
    if bad or not irs:
        raise ExportError(f"measure_precisions: precisions must be some of {list(ORDER)}, got {sorted(irs)}")
    core = openvino_core()
    lat_cfg = {"PERFORMANCE_HINT": "LATENCY", **(config or {})}
    thr_cfg = {"PERFORMANCE_HINT": "THROUGHPUT", **(config or {})}
    engines: dict[str, tuple[Callable[[], Any], Callable[[], float]]] = {}
    compute: dict[str, str] = {}
    facts: dict[str, GraphFacts] = {}
    shape: list[int] | None = list(input_shape) if input_shape is not None else None
    for prec in (p for p in ORDER if p in irs):
        xml = Path(irs[prec])
        try:
            model = core.read_model(str(xml))
            facts[prec] = graph_facts(model)
            in_shape = model.input(0).get_partial_shape()
            if shape is None and in_shape.is_dynamic:
                raise ExportError(f"{xml}: dynamic input {in_shape}; pass input_shape")
            if shape is not None and (in_shape.is_dynamic or [int(d) for d in in_shape.to_shape()] != shape):
                model.reshape({model.input(0): ov.PartialShape(shape)})
            shape = shape or [int(d) for d in in_shape.to_shape()]
            lat = compile_model(model, device, lat_cfg)
            thr = compile_model(model, device, thr_cfg)
        except ExportError:
            raise
        except Exception as err:  # noqa: BLE001 - OpenVINO raises RuntimeError and others
            raise ExportError(f"{xml}: cannot time it on {device}: {str(err).strip().splitlines()[0] if str(err).strip() else err}") from None
        compute[prec] = _inference_precision(lat)
        x = np.random.default_rng(0).random(shape, dtype=np.float32)
        request = lat.create_infer_request()
        jobs = max(1, int(thr.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        engines[prec] = (lambda r=request, x=x: r.infer({0: x}), _burst(thr, x, 4 * jobs))
    trivial = compile_model(_trivial_model(shape), device, lat_cfg).create_infer_request()
    x0 = np.zeros(shape, dtype=np.float32)
    engines["_trivial"] = (lambda: trivial.infer({0: x0}), lambda: 0.0)
    lat_ms, fps = _interleave(engines, rounds, block)
    overhead = lat_ms.pop("_trivial")
    fps.pop("_trivial")
    timings = tuple(PrecisionTiming(p, str(irs[p]), lat_ms[p], fps[p], compute[p]) for p in ORDER if p in irs)
    by = {t.precision: t for t in timings}
    report_notes = []
    if "fp32" in by:
        for t in timings:
            slower = t.latency_ms > by["fp32"].latency_ms * (1 + TOLERANCE) or t.throughput_fps < by["fp32"].throughput_fps * (1 - TOLERANCE)
            if t.precision != "fp32" and slower:
                report_notes.append(explain_slower(t.precision, t, by["fp32"], facts[t.precision], overhead))
    return PrecisionReport(
        device=device, device_name=str(core.get_property(device, "FULL_DEVICE_NAME")) if device.upper() != "AUTO" else "AUTO",
        openvino=ov.__version__, timings=timings,
        fastest_latency=choose_fastest({t.precision: t.latency_ms for t in timings}, "latency"),
        fastest_throughput=choose_fastest({t.precision: t.throughput_fps for t in timings}, "throughput"),
        overhead_ms=overhead, notes=tuple(report_notes),
    )


def _interleave(engines: Mapping[str, tuple[Callable[[], Any], Callable[[], float]]], rounds: int, block: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median latency (ms) and throughput (images/s) per engine, round-robin after one warm-up each."""
    for latency, burst in engines.values():
        latency()
        burst()
    lat: dict[str, list[float]] = {k: [] for k in engines}
    fps: dict[str, list[float]] = {k: [] for k in engines}
    for _ in range(max(1, rounds)):
        for name, (latency, burst) in engines.items():
            latency()  # re-wakes this engine's threads after the others ran
            for _ in range(block):
                start = time.perf_counter()
                latency()
                lat[name].append(1000 * (time.perf_counter() - start))
            fps[name].append(burst())
    return {k: statistics.median(v) for k, v in lat.items()}, {k: statistics.median(v) for k, v in fps.items()}
