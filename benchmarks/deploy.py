"""Deployment speed benchmark: baseline vs pruned, PyTorch / ONNX Runtime / OpenVINO FP32, FP16, INT8, multi-stream.

    python benchmarks/deploy.py [--baseline yolov4] [--img-size 320] [--global-percent 0.8]
        [--shortcuts 18] [--channel-multiple 8] [--reps 5] [--quick] [--out benchmarks/deploy.md]
    python benchmarks/deploy.py --streams-only [--stream-img-size 416] [--variants]   # about a minute

The pruned model comes from the real pruning engine: the baseline's BN gammas are
given a seeded sparse-training-like distribution (per conv, a fraction of channels
alive with log-normal gammas, the rest near 0; narrow early convs keep most channels,
wide deep ones few, as L1 sparsity training leaves them), then
`plan_layer_channel_pruning` (global threshold + the weakest residual units) and
`apply_plan` build the compact model. Weights are otherwise random: speed does not
depend on them, so no mAP here (`export.py data=...` reports INT8 vs FP32 mAP).

Fairness on a noisy shared machine: every engine is pinned (torch threads, ONNX
Runtime intra-op threads, OpenVINO INFERENCE_NUM_THREADS and NUM_STREAMS, FP32
inference precision), warmed up, and measured round-robin: each repetition takes
one sample of every engine in turn, and the table gives the median per engine, so
load changes hit all engines alike. Ratios come from this one run.

- latency: one batch-1 synchronous inference (OpenVINO: LATENCY hint, 1 stream).
- throughput: PyTorch and ONNX Runtime: a synchronous batch of 4; OpenVINO: 8
  batch-1 requests through an AsyncInferQueue (THROUGHPUT hint, 2 streams).
- multi-stream: `deploy_streams.py` (4 MJPG videos through `detect.py`'s modes
  against the engine alone on ready-made input, interleaved; its docstring says
  how), also alone with `--streams-only`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from yolo_slim.darknet.cfg import load_cfg
from yolo_slim.metrics.cost import count_cost
from yolo_slim.model import Darknet


def sparsify_gammas(model: Darknet, seed: int = 0) -> None:
    """Give `model`'s BN layers a sparse-training-like gamma distribution (in place).

    Per conv with C channels, the alive fraction is drawn from a Beta around
    `clip(1.15 - 0.35 * (log2 C - 5), 0.02, 0.95)` (32 channels: ~95 % alive,
    1024: ~2 %); alive gammas are log-normal (median 0.6), dead ones |N(0, 0.01)|;
    betas N(0, 0.1).
    """
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for block in model.conv_blocks().values():
            if block.bn is None:
                continue
            c = block.bn.num_features
            mean = float(np.clip(1.15 - 0.35 * (np.log2(c) - 5), 0.02, 0.95))
            alive = rng.random(c) < rng.beta(20 * mean, 20 * (1 - mean))
            gamma = np.where(alive, rng.lognormal(-0.5, 0.5, c), np.abs(rng.normal(0, 0.01, c)))
            block.bn.weight.copy_(torch.from_numpy(gamma.astype(np.float32)))
            block.bn.bias.copy_(torch.from_numpy(rng.normal(0, 0.1, c).astype(np.float32)))


def prune_model(model: Darknet, global_percent: float, shortcuts: int, multiple: int) -> Darknet:
    """The compact model the pruning engine makes from `model` (channels + residual units)."""
    from yolo_slim.graph import build_graph
    from yolo_slim.prune import apply_plan, plan_layer_channel_pruning

    graph = build_graph(model.cfg)
    plan = plan_layer_channel_pruning(model, shortcuts, graph, global_percent=global_percent, channel_multiple=multiple)
    return apply_plan(model, plan, graph=graph)


def export_variant(model: Darknet, out: Path, hw: int, calib: list[np.ndarray]) -> dict[str, Path]:
    """model.onnx and FP32/FP16/INT8 IRs (dynamic batch and spatial) with meta.json in `out/<precision>/`."""
    from yolo_slim.export.meta import build_meta, write_meta
    from yolo_slim.export.onnx import export_onnx
    from yolo_slim.export.openvino import convert_onnx, save_ir
    from yolo_slim.export.quantize import quantize_int8

    out.mkdir(parents=True, exist_ok=True)
    onnx_path = export_onnx(model, out / "model.onnx", img_hw=(hw, hw), dynamic=["batch", "spatial"], exporter="torchscript")
    paths = {"onnx": onnx_path}
    for prec in ("fp32", "fp16", "int8"):
        ov_model = convert_onnx(onnx_path)
        if prec == "int8":
            ov_model = quantize_int8(ov_model, calib, len(calib))
        paths[prec] = save_ir(ov_model, out / prec / "model.xml", fp16=prec == "fp16")
        meta = build_meta(model.cfg, img_hw=(hw, hw), names=None, precision=prec, weights=None, batch=1, dynamic=["batch", "spatial"], nms=None)
        write_meta(out / prec / "meta.json", meta)
    return paths


# ---------------------------------------------------------------------- engines


class Engine:
    """One way to run one model: `latency()` and `throughput()` each run once and return seconds / images per second."""

    def __init__(self, model: str, name: str, latency: Callable[[], None], burst: Callable[[], int]) -> None:
        self.model, self.name, self._latency, self._burst = model, name, latency, burst
        self.lat: list[float] = []
        self.fps: list[float] = []

    def sample(self) -> None:
        t = time.perf_counter()
        self._latency()
        self.lat.append(time.perf_counter() - t)
        t = time.perf_counter()
        n = self._burst()
        self.fps.append(n / (time.perf_counter() - t))

    def warm_up(self) -> None:
        self._latency()
        self._burst()


def ov_config(threads: int, streams: int, latency: bool) -> dict:
    import openvino.properties.hint as hints

    mode = hints.PerformanceMode.LATENCY if latency else hints.PerformanceMode.THROUGHPUT
    return {"PERFORMANCE_HINT": mode, "NUM_STREAMS": streams, "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"}


def ov_burst(compiled, x: np.ndarray, count: int, requests: int) -> Callable[[], int]:
    """A callable running `count` inputs through an AsyncInferQueue of `requests`; returns images done."""
    import openvino as ov

    q = ov.AsyncInferQueue(compiled, requests)

    def run() -> int:
        for _ in range(count):
            q.start_async({0: x})
        q.wait_all()
        return count * x.shape[0]

    return run


def make_engines(name: str, model: Darknet, paths: dict[str, Path], hw: int, threads: int) -> list[Engine]:
    import onnxruntime as ort
    import openvino as ov

    from yolo_slim.openvino_core import compile_model
    from yolo_slim.openvino_core import core as openvino_core

    x1 = torch.rand(1, 3, hw, hw, generator=torch.Generator().manual_seed(0))
    x4 = torch.rand(4, 3, hw, hw, generator=torch.Generator().manual_seed(1))

    def torch_run(x):
        def run():
            with torch.no_grad():
                model(x)
            return x.shape[0]

        return run

    engines = [Engine(name, "PyTorch eager", torch_run(x1), torch_run(x4))]
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.add_session_config_entry("session.force_spinning_stop", "1")  # its spinning threads slow the engines timed next
    sess = ort.InferenceSession(str(paths["onnx"]), so, providers=["CPUExecutionProvider"])
    a1, a4 = x1.numpy(), x4.numpy()
    engines.append(Engine(name, "ONNX Runtime", lambda: sess.run(None, {"images": a1}), lambda: len(sess.run(None, {"images": a4})[0])))
    core = openvino_core()
    for prec in ("fp32", "fp16", "int8"):
        m = core.read_model(str(paths[prec]))
        m.reshape({0: [1, 3, hw, hw]})
        lat_c = compile_model(m, "CPU", ov_config(threads, 1, latency=True))
        thr_c = compile_model(m, "CPU", ov_config(threads, 2, latency=False))
        engines.append(Engine(name, f"OpenVINO {prec.upper()}", lambda c=lat_c: c(a1), ov_burst(thr_c, a1, 8, 2)))
    return engines


# ---------------------------------------------------------------------- report


def verdict(value: float, goal: float) -> str:
    return f"{value:.2f} (goal >= {goal:.2f}: {'met' if value >= goal else 'missed'})"


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """The model and timing options (shared with deploy_streams.py)."""
    p.add_argument("--baseline", default="yolov4", help="zoo name or .cfg")
    p.add_argument("--classes", type=int, default=2)
    p.add_argument("--img-size", type=int, default=320)
    p.add_argument("--global-percent", type=float, default=0.8)
    p.add_argument("--shortcuts", type=int, default=18, help="residual units removed")
    p.add_argument("--channel-multiple", type=int, default=8, help="kept channels per conv rounded up to this (SIMD-friendly)")
    p.add_argument("--threads", type=int, default=2, help="threads for every engine")
    p.add_argument("--reps", type=int, default=5, help="round-robin repetitions (median reported)")


def main(argv: list[str] | None = None) -> int:
    import deploy_streams

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(p)
    deploy_streams.add_arguments(p)
    p.add_argument("--calib", type=int, default=32, help="INT8 calibration images (synthetic scenes)")
    p.add_argument("--quick", action="store_true", help="3 repetitions")
    p.add_argument("--streams-only", action="store_true", help="only the multi-stream part (deploy_streams.py), about a minute")
    p.add_argument("--out", default=None, help="default benchmarks/deploy.md (benchmarks/deploy_streams.md with --streams-only)")
    args = p.parse_args(argv)
    if args.quick:
        args.reps = 3
    command = ["python", "benchmarks/deploy.py", *(argv if argv is not None else sys.argv[1:])]
    if args.streams_only:
        deploy_streams.write_report(deploy_streams.run(args, command), Path(args.out or "benchmarks/deploy_streams.md"))
        return 0
    hw = args.img_size
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from yolo_slim.data.synthetic import render_image
    from yolo_slim.export.quantize import preprocess_nchw

    rng = np.random.default_rng(1)
    calib = [preprocess_nchw(render_image(rng, hw)[0], (hw, hw)) for _ in range(args.calib)]
    base_cfg = load_cfg(args.baseline, classes=args.classes, img_size=hw)
    baseline = Darknet(base_cfg).eval()
    sparsify_gammas(baseline, seed=0)
    t = time.perf_counter()
    pruned = prune_model(baseline, args.global_percent, args.shortcuts, args.channel_multiple)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)
    log(f"pruned in {time.perf_counter() - t:.1f} s")
    models = {"baseline": baseline, "pruned": pruned}
    cost = {k: count_cost(m.cfg, hw) for k, m in models.items()}
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}
    with tempfile.TemporaryDirectory() as tmp:
        engines, paths = [], {}
        for name, model in models.items():
            t = time.perf_counter()
            paths[name] = export_variant(model, Path(tmp) / name, hw, calib)
            log(f"{name}: exported in {time.perf_counter() - t:.0f} s")
            engines += make_engines(name, model, paths[name], hw, args.threads)
        for e in engines:
            e.warm_up()
        for rep in range(args.reps):
            t = time.perf_counter()
            for e in engines:
                e.sample()
            log(f"engines: repetition {rep + 1}/{args.reps} in {time.perf_counter() - t:.0f} s")
    stream_lines = deploy_streams.run(args, command)
    med = {(e.model, e.name): (statistics.median(e.lat), statistics.median(e.fps)) for e in engines}
    ref = med[("baseline", "OpenVINO FP32")][1]
    bflops_ratio = cost["baseline"].bflops / cost["pruned"].bflops
    lines = [
        f"# Deployment benchmark: {args.baseline} @ {hw}, {args.classes} classes",
        "",
        f"One run of `{' '.join(command)}`: "
        f"{args.threads} threads per engine, {args.reps} round-robin repetitions, medians. "
        f"Pruned: `plan_layer_channel_pruning` at global_percent {args.global_percent}, {args.shortcuts} residual units, "
        f"channel multiple {args.channel_multiple}, on seeded sparse-training-like gammas: "
        f"{params['baseline'] / 1e6:.1f} M -> {params['pruned'] / 1e6:.2f} M params, {len(base_cfg.layers)} -> {len(pruned.cfg.layers)} layers, "
        f"BFLOPs ratio {bflops_ratio:.1f}x (darknet's rule). Speedup: throughput vs baseline OpenVINO FP32.",
        "",
        "| model | engine | BFLOPs | latency ms (b=1) | FPS (b=1 latency) | throughput FPS | speedup |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for e in engines:
        lat, fps = med[(e.model, e.name)]
        lines.append(f"| {e.model} | {e.name} | {cost[e.model].bflops:.2f} | {lat * 1e3:.1f} | {1 / lat:.1f} | {fps:.1f} | {fps / ref:.2f}x |")
    lines += ["", *stream_lines]
    f = lambda m, e, i=1: med[(m, e)][i]
    lines += [
        "",
        "Goals of the deployment issue (ratios within this run):",
        "",
        "| goal | measured |",
        "|---|---|",
        (f"| pruned / baseline OpenVINO FP32 speedup >= 0.7 x BFLOPs ratio ({0.7 * bflops_ratio:.2f}) | throughput "
        f"{verdict(f('pruned', 'OpenVINO FP32') / ref, 0.7 * bflops_ratio)}; latency "
        f"{verdict(f('baseline', 'OpenVINO FP32', 0) / f('pruned', 'OpenVINO FP32', 0), 0.7 * bflops_ratio)} |"),
    ]
    for m in models:
        lines.append(
            f"| {m}: OpenVINO FP32 >= 1.5x PyTorch eager | throughput {verdict(f(m, 'OpenVINO FP32') / f(m, 'PyTorch eager'), 1.5)}; "
            f"latency {verdict(f(m, 'PyTorch eager', 0) / f(m, 'OpenVINO FP32', 0), 1.5)} |"
        )
    for m in models:
        lines.append(
            f"| {m}: INT8 >= 1.5x FP32 IR | throughput {verdict(f(m, 'OpenVINO INT8') / f(m, 'OpenVINO FP32'), 1.5)}; "
            f"latency {verdict(f(m, 'OpenVINO FP32', 0) / f(m, 'OpenVINO INT8', 0), 1.5)} |"
        )
    lines += [
        "| INT8 mAP@0.5 within 1 point of FP32 | not measured here (random weights); `export.py export.precision=int8 data=...` reports both |",
        "| 4 streams >= 0.9 x engine on a batch of 4 | see the multi-stream goal line above |",
    ]
    deploy_streams.write_report(lines, Path(args.out or "benchmarks/deploy.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
