"""Time pruning surgery on YOLOv4: plan + beta folding + compact model, no evaluation.

YOLOv4, 80 classes, 416 px, seeded random BN gammas; channel pruning at
global_percent 0.8 plus the removal of 18 residual units (`layer_channel`), as the
original tutorial's strongest setting. The goal is under 10 s on a 2-core CPU.

    python benchmarks/prune_surgery.py [--repeat 3] [--global-percent 0.8] [--shortcuts 18]
"""

from __future__ import annotations

import argparse
import time

import torch

from yolo_slim.graph import build_graph
from yolo_slim.model import Darknet
from yolo_slim.prune import apply_plan, plan_layer_channel_pruning


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="yolov4")
    parser.add_argument("--img-size", type=int, default=416)
    parser.add_argument("--global-percent", type=float, default=0.8)
    parser.add_argument("--shortcuts", type=int, default=18)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    torch.manual_seed(0)
    start = time.perf_counter()
    model = Darknet.from_cfg(args.model, classes=80, img_size=args.img_size).eval()
    with torch.no_grad():
        for block in model.conv_blocks().values():
            if block.bn is not None:
                block.bn.weight.uniform_(0.0, 1.0)
                block.bn.bias.uniform_(-0.5, 0.5)
    build_s = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())
    print(f"{args.model} @{args.img_size}, 80 classes: {params:,} params, {len(model.cfg.layers)} layers (built in {build_s:.2f} s, not timed below)")
    print(f"torch threads: {torch.get_num_threads()}")

    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        graph = build_graph(model.cfg)
        t1 = time.perf_counter()
        plan = plan_layer_channel_pruning(model, args.shortcuts, graph, global_percent=args.global_percent)
        t2 = time.perf_counter()
        compact = apply_plan(model, plan, graph=graph)
        t3 = time.perf_counter()
        times.append(t3 - t0)
        print(f"  graph {t1 - t0:.2f} s, plan {t2 - t1:.2f} s, fold + slice + build {t3 - t2:.2f} s, total {t3 - t0:.2f} s")
    compact_params = sum(p.numel() for p in compact.parameters())
    print(
        f"compact: {compact_params:,} params ({compact_params / params:.1%}), {len(compact.cfg.layers)} layers, "
        f"{len(plan.removed_units)} residual units removed"
    )
    print(f"surgery time (best of {args.repeat}): {min(times):.2f} s  (goal < 10 s)")


if __name__ == "__main__":
    main()
