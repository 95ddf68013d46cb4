"""Latency planner vs the gamma-threshold planner at the same latency budget.

    python benchmarks/latency_planner.py [--cases yolov4@416:0.4,demo@160:0.6] [--threads N]
        [--precision auto|f32|bf16] [--runs 20] [--cache-dir DIR | --fresh] [--out FILE]

For each case the baseline gets sparse-looking BN gammas (`deploy.sparsify_gammas`:
per conv a fraction of channels alive with log-normal gammas, the rest near 0, as
L1 sparsity training leaves them), and the latency table of this machine's CPU
(`yolo_slim.latency`, OpenVINO FP32 IRs computing in `--precision`, by default what
the CPU computes them in: bf16 on one with AMX; LATENCY hint) gives the budget: the case's
fraction (after the colon) times the baseline's predicted batch-1 latency. Three
plans meet it:

- latency: `plan_latency_pruning` (widths on the measured staircase, residual units
  weighed in the same budget), the table's prediction alone;
- latency, measured: `plan_to_measured_budget`, what `prune.mode=latency` runs: the same
  planner, each plan exported and timed against the baseline, and planned again against a
  corrected budget while the measured fraction misses the budget by more than 5 %
  (`--measured-rounds`);
- gamma: `plan_channel_pruning` at the global threshold (`global_percent`, found by
  bisection on the table's prediction) that meets the budget;
- gamma rounded: the same planner with kept counts rounded up to the measured
  channel quantum (`channel_multiple` = the table's quantum), threshold found again.

All four networks are exported as the deployment does (ONNX -> OpenVINO FP32) and
timed round robin in one session; the table reports BFLOPs, the predicted and the
measured latency, the measured latency as a fraction of the baseline's against
the budget (a ratio within one session, so a loaded machine slows both alike), the
speed-up over the baseline against the BFLOPs ratio, the share of the baseline's
summed |gamma| each plan keeps, and the goals: the latency plans' measured fraction
within 10 % of the budget, and for the rounded gamma plan a measured speed-up of at
least 0.8 of its BFLOPs ratio. Weights are random apart from the
gammas: speed does not depend on them, so no mAP here.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from yolo_slim.darknet.cfg import load_cfg
from yolo_slim.errors import PruneError
from yolo_slim.graph import build_graph
from yolo_slim.latency import GridCost, LatencyTable, layer_specs, predict_latency
from yolo_slim.latency.measure import DeviceSettings, deployed_precision
from yolo_slim.latency.network import export_openvino, measure_networks
from yolo_slim.metrics.cost import count_cost
from yolo_slim.model import Darknet
from yolo_slim.prune import apply_plan, check_plan, coupled_scores, plan_channel_pruning
from yolo_slim.prune.importance import bn_gamma_importance
from yolo_slim.prune.latency_measured import plan_to_measured_budget
from yolo_slim.prune.latency_plan import plan_latency_pruning
from yolo_slim.prune.surgery import compact_cfg

sys.path.insert(0, str(Path(__file__).parent))
from deploy import sparsify_gammas  # noqa: E402  (a sibling benchmark script)

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"yolov4": "yolov4", "demo": str(ROOT / "conf" / "model" / "cfg" / "yolov3-demo.cfg")}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def grid_latency_us(graph, plan, grid: GridCost, base_specs, fixed_us: float, hw) -> float:
    """A channel plan's latency from the grid (no new exact shapes measured)."""
    specs = layer_specs(compact_cfg(graph, plan), hw)
    total = fixed_us
    for (_, base), (_, spec) in zip(base_specs, specs):
        total += grid.cost(base, {axis: getattr(spec, axis) for axis in base.channel_axes()})
    return total


def gamma_plan_for(model, graph, table, grid, target_us: float, multiple: int, hw):
    """The weakest global threshold whose channel plan meets `target_us`: bisection
    on the grid's prediction, then upwards in 0.005 steps on the exact one."""
    base_specs = layer_specs(graph.cfg, hw)
    fixed = table.fixed().inference_us
    plan = lambda gp: plan_channel_pruning(model, graph, global_percent=gp, channel_multiple=multiple)  # noqa: E731
    lo, hi = 0.0, 0.99
    if grid_latency_us(graph, plan(hi), grid, base_specs, fixed, hw) > target_us:
        return None
    for _ in range(14):
        mid = (lo + hi) / 2
        if grid_latency_us(graph, plan(mid), grid, base_specs, fixed, hw) > target_us:
            lo = mid
        else:
            hi = mid
    gp = hi
    while gp < 0.99 and predict_latency(compact_cfg(graph, plan(gp)), table, hw).total_us > target_us:
        gp = min(0.99, gp + 0.005)
    return plan(gp)


def kept_importance(graph, scores: np.ndarray, plan) -> float:
    keep = check_plan(graph, plan)
    removed = {layer for unit in plan.removed_units for layer in unit}
    ok = graph.prunable & ~np.isnan(scores)
    alive = np.ones(graph.num_coupled, dtype=bool)
    for layer in removed:  # channels of removed units' private convs are gone too
        ids = graph.positions[layer]
        if all(l in removed for l, _ in graph.members_of(int(ids[0]))):
            alive[ids] = False
    return float(scores[ok & keep & alive].sum() / scores[ok].sum())


def run_case(name: str, size: int, budget: float, args, table: LatencyTable) -> list[dict]:
    hw = (size, size)
    torch.manual_seed(0)
    model = Darknet(load_cfg(MODELS[name], classes=2, img_size=size)).eval()
    sparsify_gammas(model, seed=0)
    graph = build_graph(model.cfg)
    scores = coupled_scores(graph, bn_gamma_importance(model.darknet_arrays()))
    t = time.perf_counter()
    base_us = predict_latency(model.cfg, table, hw).total_us
    target_us = budget * base_us
    quantum = table.quantum()
    log(f"{name}@{size}: baseline predicted {base_us / 1000:.2f} ms, target {target_us / 1000:.2f} ms, quantum {quantum} ({time.perf_counter() - t:.0f} s)")
    plans = {}
    t = time.perf_counter()
    try:
        plans["latency"] = plan_latency_pruning(model, graph, table=table, budget=budget, hw=hw)
        log(f"  latency plan in {time.perf_counter() - t:.0f} s ({table.measured} shapes measured so far)")
    except PruneError as err:
        log(f"  latency plan failed: {err}")
    if args.measured_rounds:
        t = time.perf_counter()
        try:
            plans["latency, measured"], rounds = plan_to_measured_budget(model, graph, table=table, budget=budget, hw=hw,
                                                                         rounds=args.measured_rounds, runs=args.runs)
            steps = ", ".join(f"asked {r.asked:.3f} -> {r.fraction:.3f}" for r in rounds)
            log(f"  latency plan, measured: {len(rounds)} round(s) in {time.perf_counter() - t:.0f} s ({steps})")
        except PruneError as err:
            log(f"  latency plan, measured, failed: {err}")
    grid = GridCost(table)
    for label, multiple in (("gamma", 1), (f"gamma rounded to {quantum}", quantum)):
        t = time.perf_counter()
        plan = gamma_plan_for(model, graph, table, grid, target_us, multiple, hw)
        if plan is None:
            log(f"  {label}: no global threshold meets the budget")
            continue
        plans[label] = plan
        log(f"  {label} plan: global_percent {plan.global_percent:.3f} in {time.perf_counter() - t:.0f} s")
    nets = {"baseline": model, **{k: apply_plan(model, p, graph=graph) for k, p in plans.items()}}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        exported = {k: (m.cfg, export_openvino(m, Path(tmp) / k.replace(" ", "_"), hw), hw) for k, m in nets.items()}
        log(f"  exported {len(exported)} networks in {time.perf_counter() - t:.0f} s")
        t = time.perf_counter()
        results = measure_networks(exported, table, runs=args.runs)
        log(f"  measured in {time.perf_counter() - t:.0f} s")
    base_flops = count_cost(model.cfg, hw).bflops
    base_ms = results["baseline"].measured_ms
    rows = []
    for k, net in nets.items():
        r = results[k]
        flops = count_cost(net.cfg, hw).bflops
        plan = plans.get(k)
        rows.append({
            "case": f"{name}@{size}", "plan": k, "bflops": flops, "params": sum(p.numel() for p in net.parameters()),
            "removed_units": len(plan.removed_units) if plan else 0, "global_percent": plan.global_percent if plan else None,
            "kept": kept_importance(graph, scores, plan) if plan else 1.0, "predicted_ms": r.predicted_ms, "measured_ms": r.measured_ms,
            "target_ms": target_us / 1000 if plan else None, "speedup": base_ms / r.measured_ms, "bflops_ratio": base_flops / flops,
            "budget": budget, "fraction": r.measured_ms / base_ms,
        })
    return rows


def verdict(ok: bool) -> str:
    return "met" if ok else "missed"


def markdown(rows: list[dict], args, identity: dict, argv: list[str]) -> str:
    lines = [
        "## Latency planner vs gamma-threshold planner",
        "",
        (f"One run of `python benchmarks/latency_planner.py {' '.join(argv)}` on {identity['device']} "
         f"({identity['cpu']}, {identity['threads']} threads, OpenVINO {identity['openvino'].split('-')[0]}, {identity['precision'].upper()}, "
         f"LATENCY hint, batch 1). Budget: a fraction of the baseline's predicted latency. Measured: lower quartile of {args.runs} round-robin "
         "inferences of the exported network (ONNX -> OpenVINO), all of a case in one session; predicted: the latency table's "
         "sum (its entries measured earlier, layer by layer). Fraction: measured latency over the baseline's measured one. "
         "Kept: share of the baseline's summed prunable |gamma| the plan keeps (seeded sparse-training-like gammas)."),
        "",
        "| case | plan | BFLOPs | params | units removed | kept \\|gamma\\| | predicted ms | measured ms | fraction (budget) | speed-up | BFLOPs ratio | speed-up / BFLOPs ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        vs = f"{r['fraction']:.3f} ({r['budget']:g})" if r["target_ms"] else f"{r['fraction']:.3f}"
        label = r["plan"] if r["global_percent"] is None else f"{r['plan']} (global_percent {r['global_percent']:.3f})"
        lines.append(
            f"| {r['case']} | {label} | {r['bflops']:.3f} | "
            f"{r['params'] / 1e6:.2f} M | {r['removed_units']} | {r['kept']:.1%} | {r['predicted_ms']:.2f} | {r['measured_ms']:.2f} | {vs} | "
            f"{r['speedup']:.2f}x | {r['bflops_ratio']:.2f}x | {r['speedup'] / r['bflops_ratio']:.2f} |"
        )
    lines += ["", "| goal | case | measured | |", "|---|---|---|---|"]
    for case in dict.fromkeys(r["case"] for r in rows):
        for r in (x for x in rows if x["case"] == case):
            if r["plan"].startswith("latency"):
                err = r["fraction"] / r["budget"] - 1
                lines.append(
                    f"| {r['plan']} plan reaches the budget within 10 % | {case} | measured fraction {r['fraction']:.3f} for {r['budget']:g}: {err:+.1%} "
                    f"(predicted {r['predicted_ms'] / r['target_ms'] - 1:+.1%} of its target) | {verdict(abs(err) <= 0.10)} |"
                )
            if r["plan"].startswith("gamma rounded"):
                ratio = r["speedup"] / r["bflops_ratio"]
                lines.append(f"| gamma plan rounded by measurement: speed-up >= 0.8 x BFLOPs ratio | {case} | {ratio:.2f} ({r['speedup']:.2f}x for {r['bflops_ratio']:.2f}x) | {verdict(ratio >= 0.8)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="yolov4@416:0.4,demo@160:0.6",
                   help="comma-separated model@size:budget (budget: fraction of the baseline's predicted latency), model in: " + ", ".join(MODELS))
    p.add_argument("--threads", type=int, default=None, help="OpenVINO INFERENCE_NUM_THREADS (default: OpenVINO's choice)")
    p.add_argument("--precision", default="auto", choices=("auto", "f32", "bf16", "f16"),
                   help="INFERENCE_PRECISION_HINT of the table and the timed networks (auto: what the CPU computes an FP32 IR in by default)")
    p.add_argument("--runs", type=int, default=20, help="timed inferences per whole network")
    p.add_argument("--measured-rounds", type=int, default=6,
                   help="plan-and-measure rounds of the measured latency plan (prune.latency_measured_rounds; 0: leave it out)")
    p.add_argument("--cache-dir", default=None, help="latency table folder (default: the user cache; a fresh one with --fresh)")
    p.add_argument("--fresh", action="store_true", help="measure a new table in a temporary folder")
    p.add_argument("--out", default=None, help="also write the markdown table here")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    cache = tempfile.mkdtemp(prefix="latency-table-") if args.fresh else args.cache_dir
    precision = deployed_precision("CPU") if args.precision == "auto" else args.precision
    table = LatencyTable(DeviceSettings(threads=args.threads, precision=precision), cache, max_seconds=3600)
    log(f"latency table: {table.path} ({len(table)} shapes cached)")
    rows = []
    t = time.perf_counter()
    for case in args.cases.split(","):
        try:
            name, rest = case.split("@")
            size, budget = rest.split(":")
            size_px, fraction = int(size), float(budget)
        except ValueError:
            p.error(f"--cases entry {case!r}: expected model@size:budget, e.g. demo@160:0.6")
        if name not in MODELS:
            p.error(f"unknown model {name!r} in --cases; expected one of {', '.join(MODELS)}")
        rows += run_case(name, size_px, fraction, args, table)
    log(f"done in {time.perf_counter() - t:.0f} s; {table.measured} layer shapes measured ({table.seconds:.0f} s of measuring)")
    text = markdown(rows, args, table.identity, argv)
    if args.out:
        from yolo_slim.io.atomic import write_atomic

        write_atomic(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
