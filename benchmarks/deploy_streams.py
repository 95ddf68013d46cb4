"""Multi-stream benchmark: 4 video streams through `detect.py`'s modes against the engine alone.

    python benchmarks/deploy_streams.py [--stream-img-size 416] [--stream-frames 128] [--reps 3] [--threads 2]
        [--variants] [--out benchmarks/deploy_streams.md]
    python benchmarks/deploy.py --streams-only ...      (the same, with deploy.py's pruning options)

The model is `deploy.py`'s pruned yolov4 (the real pruning engine on seeded
sparse-training-like gammas) with `trained_like_outputs`: BN statistics
re-estimated and head logits rescaled so that about 20 rows per 416 px frame pass
the 0.25 threshold, as with a trained detector (random weights would give
thousands, and their NMS would dominate). Its FP32 IR (dynamic batch and spatial)
runs on four synthetic 640x480 MJPG videos.

Each setup runs once per repetition, round-robin, and the table gives medians:

- the engine alone: the same IR, compiled the same way (THROUGHPUT hint, the same
  streams, threads and requests in flight), on ready-made float input (no decode,
  letterbox, conversion or NMS), at batch 4, batch 1 and the 2x2 mosaic's size;
- `run_streams` over 1 and 4 streams in every mode: decode, letterbox, inference,
  NMS and back-mapping, no drawing or writing;
- with `--variants`: batch mode with the letterbox in the graph and with NMS in
  the graph (the options `OpenVINODetector` offers for other devices).

Two figures per setup: frames per second (wall clock), and the process's CPU
milliseconds per frame, all threads. On a machine shared with other jobs the
second is the steadier one: the pipeline's host work is its excess over the
engine's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from yolo_slim.model import Darknet

FRAME_HW = (480, 640)
GOAL = 0.9  # 4 streams vs the engine on a batch of 4


class Sample(NamedTuple):
    fps: float
    cpu_ms: float  # process CPU per frame


def trained_like_outputs(model: Darknet, images: torch.Tensor, candidates: float = 0.002) -> None:
    """Give `model` a trained detector's output statistics (in place; speed is unchanged).

    Two things make a randomly initialised network a poor stand-in for measuring
    what happens after it. Default-initialised convs shrink the signal at every
    layer while BN in eval mode (unit running variance) does not undo it, so after
    a hundred layers the output no longer depends on the image; BN statistics are
    therefore re-estimated on `images` (`yolo_slim.prune.recalibrate_bn`). And every
    row's objectness is about 0.5, so thousands of rows per image pass a 0.25
    threshold and their NMS dominates any multi-stream figure; each head's
    objectness logits are therefore rescaled so that a fraction `candidates` of the
    rows on `images` (0.2 %: about 20 per 416 px image) score above 0.5 and the rest
    fall off steeply (0.12 a quarter of a standard deviation lower), and class logits
    are spread (std 3) so the best class is confident.

    Args:
        model: the network (eval mode); its head convs have a bias (no BN).
        images: Tensor[B, 3, H, W] in [0, 1], scenes like the benchmark's videos.
        candidates: fraction of rows to put above the threshold.
    """
    from yolo_slim.prune.recalibrate import recalibrate_bn

    recalibrate_bn(model, [images], len(images))
    with torch.no_grad():
        maps = model.forward_maps(images)
        for head_id, raw in zip(model.head_ids, maps):
            conv = model.layers[head_id - 1].conv
            head = model.layers[head_id]
            per = head.num_classes + 5
            for a in range(head.num_anchors):
                obj = a * per + 4
                values = raw[:, obj].flatten()
                q, a_obj = float(torch.quantile(values, 1 - candidates)), 8.0 / max(float(values.std()), 1e-6)
                conv.weight[obj] *= a_obj
                conv.bias[obj] = a_obj * (conv.bias[obj] - q)
                cls = slice(obj + 1, obj + 1 + head.num_classes)
                values = raw[:, cls]
                mean, a_cls = values.mean(dim=(0, 2, 3)), 3.0 / max(float(values.std()), 1e-6)
                conv.weight[cls] *= a_cls
                conv.bias[cls] = a_cls * (conv.bias[cls] - mean)


def scenes(n: int, seed: int = 0) -> list[np.ndarray]:
    """`n` synthetic BGR scenes of FRAME_HW (the built-in dataset's renderer)."""
    import cv2

    from yolo_slim.data.synthetic import render_image

    rng = np.random.default_rng(seed)
    return [cv2.resize(render_image(rng, max(FRAME_HW))[0], FRAME_HW[::-1]) for _ in range(n)]


def write_videos(folder: Path, frames: int, count: int = 4) -> list[Path]:
    """`count` MJPG videos of `frames` frames each, cycling through 8 synthetic scenes."""
    import cv2

    paths = []
    for k in range(count):
        shots = scenes(8, seed=k)
        path = folder / f"stream{k}.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, FRAME_HW[::-1])
        for t in range(frames):
            writer.write(shots[t % len(shots)])
        writer.release()
        paths.append(path)
    return paths


def export_fp32(model: Darknet, out: Path, hw: int) -> Path:
    """The FP32 IR (dynamic batch and spatial) with meta.json, in `out/fp32/`."""
    from yolo_slim.export.meta import build_meta, write_meta
    from yolo_slim.export.onnx import export_onnx
    from yolo_slim.export.openvino import convert_onnx, save_ir

    onnx = export_onnx(model, out / "model.onnx", img_hw=(hw, hw), dynamic=["batch", "spatial"], exporter="torchscript")
    xml = save_ir(convert_onnx(onnx), out / "fp32" / "model.xml", fp16=False)
    meta = build_meta(model.cfg, img_hw=(hw, hw), names=None, precision="fp32", weights=None, batch=1, dynamic=["batch", "spatial"], nms=None)
    write_meta(out / "fp32" / "meta.json", meta)
    return xml


def setups(xml: Path, videos: list[Path], threads: int, variants: bool) -> dict[str, Callable[[], Sample]]:
    """Name -> a callable running one measurement."""
    import openvino as ov

    from yolo_slim.deploy.multistream import run_streams
    from yolo_slim.deploy.sources import open_source
    from yolo_slim.openvino_core import compile_model
    from yolo_slim.openvino_core import core as openvino_core

    config = {"NUM_STREAMS": 2, "INFERENCE_NUM_THREADS": threads}
    core = openvino_core()

    def streams(mode: str, n: int, **kw) -> Callable[[], Sample]:
        def run() -> Sample:
            sources = [open_source(str(v), i) for i, v in enumerate(videos[:n])]
            try:
                rep = run_streams(str(xml), sources, mode, log_every=1e9, conf_thres=0.25, hint="throughput", config=config, **kw)
            finally:
                for s in sources:
                    s.close()
            return Sample(rep.fps, 1000 * rep.cpu_seconds / rep.frames)

        return run

    def engine(batch: int, scale: int = 1, requests: int = 2) -> Callable[[], Sample]:
        from yolo_slim.export.meta import read_meta

        h, w = (v * scale for v in read_meta(xml.parent / "meta.json")["input_size"])
        model = core.read_model(str(xml))
        model.reshape({0: [batch, 3, h, w]})
        compiled = compile_model(model, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT", **config})
        x = np.random.default_rng(0).random((batch, 3, h, w), dtype=np.float32)
        q = ov.AsyncInferQueue(compiled, requests)
        per_inference = batch * scale * scale  # frames: a mosaic input holds scale^2 tiles
        count = max(4, 96 // per_inference)

        def run() -> Sample:
            t, c = time.perf_counter(), time.process_time()
            for _ in range(count):
                q.start_async({0: x})
            q.wait_all()
            n = count * per_inference
            return Sample(n / (time.perf_counter() - t), 1000 * (time.process_time() - c) / n)

        return run

    out = {
        "engine alone, batch of 4": engine(4),
        "engine alone, batch of 1": engine(1),
        "engine alone, 2x2 mosaic size (per tile)": engine(1, scale=2),
        "1 stream (async)": streams("async", 1),
        "4 streams, async": streams("async", 4),
        "4 streams, batch": streams("batch", 4),
        "4 streams, mosaic": streams("mosaic", 4),
    }
    if variants:
        out["4 streams, batch, letterbox in the graph"] = streams("batch", 4, preprocess="graph")
        out["4 streams, batch, NMS in the graph"] = streams("batch", 4, nms="graph")
    return out


def measure(runs: dict[str, Callable[[], Sample]], reps: int, log: Callable[[str], None]) -> dict[str, Sample]:
    """Medians over `reps` round-robin repetitions, after one warm-up run of each."""
    for run in runs.values():
        run()
    samples: dict[str, list[Sample]] = {k: [] for k in runs}
    for rep in range(reps):
        t = time.perf_counter()
        for k, run in runs.items():
            samples[k].append(run())
        log(f"streams: repetition {rep + 1}/{reps} in {time.perf_counter() - t:.0f} s")
    return {k: Sample(statistics.median(s.fps for s in v), statistics.median(s.cpu_ms for s in v)) for k, v in samples.items()}


def report(result: dict[str, Sample], title: str) -> list[str]:
    """The markdown table and the goal line."""
    ref = result["engine alone, batch of 4"]
    lines = [
        title,
        "",
        "| setup | FPS | vs engine, batch of 4 | CPU ms per frame | engine's CPU / this CPU |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {k} | {v.fps:.1f} | {v.fps / ref.fps:.2f} | {v.cpu_ms:.1f} | {ref.cpu_ms / v.cpu_ms:.2f} |" for k, v in result.items()]
    modes = [k for k in result if k.startswith("4 streams, ") and k.count(",") == 1]
    met = all(result[k].fps / ref.fps >= GOAL for k in modes)
    lines += [
        "",
        f"Goal: 4 streams >= {GOAL} x the engine on a batch of 4 in every mode: {'met' if met else 'missed'} ("
        + ", ".join(f"{k.split(', ')[1]} {result[k].fps / ref.fps:.2f}" for k in modes)
        + "; by CPU per frame: " + ", ".join(f"{k.split(', ')[1]} {ref.cpu_ms / result[k].cpu_ms:.2f}" for k in modes) + ").",
    ]
    return lines


def streams_model(args) -> Darknet:
    """deploy.py's pruned model with `trained_like_outputs`."""
    from deploy import prune_model, sparsify_gammas

    from yolo_slim.darknet.cfg import load_cfg
    from yolo_slim.export.quantize import preprocess_nchw

    torch.manual_seed(0)
    hw = args.stream_img_size
    baseline = Darknet(load_cfg(args.baseline, classes=args.classes, img_size=hw)).eval()
    sparsify_gammas(baseline, seed=0)
    model = prune_model(baseline, args.global_percent, args.shortcuts, args.channel_multiple) if args.streams_model == "pruned" else baseline
    images = torch.from_numpy(np.concatenate([preprocess_nchw(s, (hw, hw)) for s in scenes(8, seed=100)]))
    trained_like_outputs(model, images)
    return model


def run(args, argv: list[str]) -> list[str]:
    """The whole multi-stream measurement; returns the report's lines."""
    log = lambda msg: print(msg, file=sys.stderr, flush=True)
    torch.set_num_threads(args.threads)
    model = streams_model(args)
    with tempfile.TemporaryDirectory() as tmp:
        xml = export_fp32(model, Path(tmp), args.stream_img_size)
        videos = write_videos(Path(tmp), args.stream_frames)
        result = measure(setups(xml, videos, args.threads, args.variants), args.reps, log)
    title = (f"Multi-stream: {args.streams_model} {args.baseline} @ {args.stream_img_size} FP32 IR, {len(videos)} MJPG videos of "
             f"{FRAME_HW[1]}x{FRAME_HW[0]}, {args.stream_frames} frames each; one run of `{' '.join(argv)}`, "
             f"{args.threads} threads, {args.reps} round-robin repetitions, medians.")
    return report(result, title)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options this benchmark shares with deploy.py."""
    # a run's clock includes starting the readers and filling and draining the requests in flight:
    # on a 65-FPS engine (AMD EPYC, Dec 4) 32 frames per stream measured 0.85 of the engine where
    # 128 measured 0.94-0.96 in every mode
    p.add_argument("--stream-frames", type=int, default=128, help="frames per stream per run")
    p.add_argument("--stream-img-size", type=int, default=416, help="network size of the multi-stream model (2x2 mosaic: twice this)")
    p.add_argument("--streams-model", choices=("baseline", "pruned"), default="pruned")
    p.add_argument("--variants", action="store_true", help="also batch mode with letterbox / NMS in the graph")


def main(argv: list[str] | None = None) -> int:
    from deploy import add_model_arguments

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(p)
    add_arguments(p)
    p.add_argument("--out", default="benchmarks/deploy_streams.md")
    args = p.parse_args(argv)
    argv = ["python", "benchmarks/deploy_streams.py", *(argv if argv is not None else sys.argv[1:])]
    write_report(run(args, argv), Path(args.out))
    return 0


def write_report(lines: list[str], out: Path) -> None:
    """Print the report and write it to `out` (temp file + rename)."""
    text = "\n".join(lines) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(out)
    print(text)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
