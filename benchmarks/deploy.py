"""Deployment speed benchmark: baseline vs pruned, PyTorch / ONNX Runtime / OpenVINO FP32, FP16, INT8, multi-stream.

    python benchmarks/deploy.py --baseline yolov4 --img-size 320 [--quick] [--out benchmarks/deploy.md]

The pruned model is, when `yolo_slim.prune` is not available, the same cfg with every
non-head convolution's filters scaled by --width (default 0.5, rounded to even so
split routes stay valid), which the table says. Weights are random (speed does not
depend on them), so no mAP is reported here; `export.py` reports INT8 vs FP32 mAP
on a real dataset. Latency: batch 1, synchronous, LATENCY hint. Throughput: batch 1
requests through an AsyncInferQueue with the THROUGHPUT hint (PyTorch and ONNX
Runtime: batch 4, synchronous). Multi-stream: four synthetic streams in each mode of
`detect.py` (host letterbox and NMS included) vs one stream, and vs the engine's own
throughput on a batch of four (no host work).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from yolo_slim.darknet.cfg import DarknetCfg, load_cfg
from yolo_slim.darknet.sections import ConvSection, YoloSection
from yolo_slim.metrics.cost import count_cost
from yolo_slim.model import Darknet


def scaled_cfg(cfg: DarknetCfg, width: float) -> DarknetCfg:
    """`cfg` with every conv not feeding a [yolo] head at `width` x its filters (even, >= 2)."""
    layers = list(cfg.layers)
    for i, s in enumerate(layers):
        head_conv = i + 1 < len(layers) and isinstance(layers[i + 1], YoloSection)
        if isinstance(s, ConvSection) and not head_conv:
            layers[i] = dataclasses.replace(s, filters=max(2, 2 * round(s.filters * width / 2)))
    return dataclasses.replace(cfg, layers=tuple(layers))


def timed(fn, runs: int, warmup: int) -> float:
    """Median seconds of `fn()`."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def ov_throughput(compiled, x: np.ndarray, seconds: float) -> float:
    """Inputs per second through an AsyncInferQueue of the optimal size for `seconds`."""
    import openvino as ov

    queue = ov.AsyncInferQueue(compiled)
    for _ in range(len(queue)):
        queue.start_async({0: x})
    queue.wait_all()
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        queue.start_async({0: x})
        done += 1
    queue.wait_all()
    return done * x.shape[0] / (time.perf_counter() - t0)


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


def bench_variant(name: str, model: Darknet, paths: dict[str, Path], hw: int, runs: int, seconds: float) -> list[dict]:
    import onnxruntime as ort
    import openvino as ov
    import openvino.properties.hint as hints

    rows = []
    x1 = torch.rand(1, 3, hw, hw)
    x4 = torch.rand(4, 3, hw, hw)
    with torch.no_grad():
        lat = timed(lambda: model(x1), runs, 2)
        thr = 4 / timed(lambda: model(x4), max(2, runs // 4), 1)
    rows.append({"model": name, "engine": "PyTorch eager", "ms": lat * 1e3, "fps": thr})
    sess = ort.InferenceSession(str(paths["onnx"]), providers=["CPUExecutionProvider"])
    lat = timed(lambda: sess.run(None, {"images": x1.numpy()}), runs, 2)
    thr = 4 / timed(lambda: sess.run(None, {"images": x4.numpy()}), max(2, runs // 4), 1)
    rows.append({"model": name, "engine": "ONNX Runtime", "ms": lat * 1e3, "fps": thr})
    core = ov.Core()
    for prec in ("fp32", "fp16", "int8"):
        m = core.read_model(str(paths[prec]))
        m.reshape({0: [1, 3, hw, hw]})
        lat_c = core.compile_model(m, "CPU", {hints.performance_mode: hints.PerformanceMode.LATENCY})
        x = x1.numpy()
        lat = timed(lambda: lat_c(x), runs, 3)
        thr_c = core.compile_model(m, "CPU", {hints.performance_mode: hints.PerformanceMode.THROUGHPUT})
        thr = ov_throughput(thr_c, x, seconds)
        rows.append({"model": name, "engine": f"OpenVINO {prec.upper()}", "ms": lat * 1e3, "fps": thr})
    return rows


class ListSource:
    """Frames from a list (a stand-in for a video file)."""

    def __init__(self, frames: list[np.ndarray], name: str) -> None:
        self.frames, self.name, self.fps, self.length, self._i = frames, name, None, len(frames), 0

    def read(self):
        if self._i >= len(self.frames):
            return None
        self._i += 1
        return self.frames[self._i - 1]

    def close(self) -> None:
        """Nothing to release."""


def bench_streams(xml: Path, hw: int, frames: int, seconds: float) -> list[dict]:
    import openvino as ov
    import openvino.properties.hint as hints

    from yolo_slim.data.synthetic import render_image
    from yolo_slim.deploy.multistream import run_streams

    rng = np.random.default_rng(0)
    videos = [[render_image(rng, 2 * hw)[0][: hw * 3 // 2] for _ in range(8)] * (frames // 8 + 1) for _ in range(4)]
    videos = [v[:frames] for v in videos]
    rows = []
    single = run_streams(str(xml), [ListSource(videos[0], "s0")], "async", log_every=1e9, conf_thres=0.5)
    rows.append({"setup": "1 stream (async)", "fps": single.fps})
    for mode in ("mosaic", "async", "batch"):
        rep = run_streams(str(xml), [ListSource(v, f"s{i}") for i, v in enumerate(videos)], mode, log_every=1e9, conf_thres=0.5)
        rows.append({"setup": f"4 streams, {mode}", "fps": rep.fps})
    core = ov.Core()
    m = core.read_model(str(xml))
    m.reshape({0: [4, 3, hw, hw]})
    c = core.compile_model(m, "CPU", {hints.performance_mode: hints.PerformanceMode.THROUGHPUT})
    rows.append({"setup": "engine, batch of 4 (no host work)", "fps": ov_throughput(c, np.random.rand(4, 3, hw, hw).astype(np.float32), seconds)})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", default="yolov4", help="zoo name or .cfg")
    p.add_argument("--classes", type=int, default=2)
    p.add_argument("--img-size", type=int, default=320)
    p.add_argument("--width", type=float, default=0.5, help="filter scale of the stand-in pruned model")
    p.add_argument("--quick", action="store_true", help="fewer runs and shorter throughput windows")
    p.add_argument("--out", default="benchmarks/deploy.md")
    args = p.parse_args(argv)
    runs, seconds, frames = (5, 3.0, 24) if args.quick else (20, 10.0, 80)
    hw = args.img_size
    torch.manual_seed(0)
    from yolo_slim.data.synthetic import render_image
    from yolo_slim.export.quantize import preprocess_nchw

    rng = np.random.default_rng(1)
    calib = [preprocess_nchw(render_image(rng, hw)[0], (hw, hw)) for _ in range(16 if args.quick else 64)]
    base_cfg = load_cfg(args.baseline, classes=args.classes, img_size=hw)
    pruned_cfg = scaled_cfg(base_cfg, args.width)
    pruned_note = f"a stand-in, not the pruning engine: filters x{args.width} on every non-head conv, no layers removed"
    table, bflops = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        xml_for_streams = None
        for name, cfg in (("baseline", base_cfg), ("pruned", pruned_cfg)):
            model = Darknet(cfg).eval()
            bflops[name] = count_cost(cfg, hw).bflops
            t = time.perf_counter()
            paths = export_variant(model, Path(tmp) / name, hw, calib)
            print(f"{name}: exported in {time.perf_counter() - t:.0f} s", file=sys.stderr)
            table += bench_variant(name, model, paths, hw, runs, seconds)
            xml_for_streams = xml_for_streams or paths["fp32"]
        streams = bench_streams(xml_for_streams, hw, frames, seconds)
    ref = next(r["fps"] for r in table if r["model"] == "baseline" and r["engine"] == "OpenVINO FP32")
    lines = [
        f"# Deployment benchmark: {args.baseline} @ {hw}, {args.classes} classes, {torch.get_num_threads()} torch threads",
        "",
        f"Pruned: {pruned_note}. BFLOPs by darknet's rule. Speedup: FPS vs baseline OpenVINO FP32 (throughput).",
        "",
        "| model | engine | BFLOPs | latency ms (b=1) | throughput FPS | speedup |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in table:
        lines.append(f"| {r['model']} | {r['engine']} | {bflops[r['model']]:.2f} | {r['ms']:.1f} | {r['fps']:.1f} | {r['fps'] / ref:.2f}x |")
    lines += ["", "Multi-stream (baseline OpenVINO FP32, host letterbox + NMS included):", "", "| setup | aggregate FPS |", "|---|---:|"]
    lines += [f"| {r['setup']} | {r['fps']:.1f} |" for r in streams]
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
