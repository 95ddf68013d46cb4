"""The prune task's `report.md` (the before/after table, the plan's line, the OpenVINO
latencies and the search table) and its ``prune/*`` metrics, from the rows `prune()` measured.

A row (`result_row`) holds the cost keys of `yolo_slim.tables.cost_row`, the
PyTorch batch-1 ``latency_ms`` and, when a dataset was given, ``precision``,
``recall``, ``mAP50``, ``mAP50_95``; `prune.latency.report` adds
``ov_latency_ms`` and ``ov_latency_pred_ms``.
"""

from __future__ import annotations

from typing import Any

from yolo_slim.metrics.cost import measure_latency
from yolo_slim.model import Darknet
from yolo_slim.prune.plan_value import PrunePlan
from yolo_slim.prune.search import SearchResult
from yolo_slim.tables import cell, cost_row, markdown_table

Rows = dict[str, dict[str, Any]]
"""Model name (``original``, ``pruned``, ``masked (gamma=0, no surgery)``) -> its row."""

MODEL_HEADER = ("model", "P", "R", "mAP@0.5", "Params", ".weights (MiB)", "latency (ms)", "BFLOPs")
SEARCH_METRICS = (("mAP50", ".4f"), ("precision", ".4f"), ("recall", ".4f"), ("bflops", ".3f"))


def result_row(model: Darknet, hw: tuple[int, int], device: str, runs: int, quality: dict[str, float] | None) -> dict[str, Any]:
    """Cost, the median PyTorch batch-1 latency over `runs` on `device`, and `quality`
    (None in cost-only runs) of `model` at input `hw` (height, width)."""
    latency = measure_latency(model, (1, model.cfg.net.channels, *hw), runs=runs, warmup=min(3, runs), device=device)
    row = {**cost_row(model.cfg, hw), "latency_ms": latency.median_ms}
    row.update(quality or {})
    return row


def threshold_line(plan: PrunePlan) -> str:
    """What `global_percent` did: the threshold, the requested and the achieved percent."""
    threshold = "none (nothing cut)" if plan.threshold is None else f"{plan.threshold:.4g}"
    achieved = "-" if plan.achieved_percent is None else f"{plan.achieved_percent:.3f}"
    if plan.cut_by == "quota":
        return f"cut by quota: requested {plan.global_percent:g} of the prunable channels, achieved {achieved} (largest score cut {threshold})"
    return (
        f"cut by threshold: |gamma| threshold {threshold} (the {plan.global_percent:g} quantile of the prunable channels), "
        f"achieved {achieved} of the prunable channels cut"
    )


def models_markdown(rows: Rows, hw: tuple[int, int], device: str, plan: PrunePlan) -> str:
    """The report's head: its title, the plan's settings and one table line per model."""
    lines = [
        f"# Pruning report ({hw[0]}x{hw[1]}, batch 1, {device})",
        "",
        f"plan: global_percent={plan.global_percent}, layer_keep={plan.layer_keep}, channel_multiple={plan.channel_multiple}, "
        f"shortcuts={plan.shortcuts}, removed units={len(plan.removed_units)}",
        "",
        *([threshold_line(plan), ""] if plan.global_percent is not None else []),
    ]
    lines += markdown_table(MODEL_HEADER, (
        [name, *(cell(row.get(k), ".4f") for k in ("precision", "recall", "mAP50")), cell(row["params"], ",", int),
         cell(row["weights_mib"], ".2f"), cell(row["latency_ms"], ".2f"), cell(row["bflops"], ".3f")]
        for name, row in rows.items()
    ))
    return "\n".join(lines) + "\n"


def latency_markdown(rows: Rows, device: dict[str, Any], plan: PrunePlan) -> str:
    """The OpenVINO latencies, measured and predicted, of the rows that have them;
    `device` is what `add_openvino_latency` returned."""
    lines = ["", f"OpenVINO {device['precision'].upper()} batch-1 latency on {device['device']} ({device['device_name']}, {device['threads']} threads):", ""]
    for name, row in rows.items():
        if "ov_latency_ms" in row:
            lines.append(f"- {name}: {row['ov_latency_ms']:.3f} ms measured, {row['ov_latency_pred_ms']:.3f} ms predicted")
    if plan.latency_budget_ms is not None:
        lines.append(f"- latency plan: budget {plan.latency_budget_ms:.3f} ms, predicted {plan.latency_ms:.3f} ms")
    return "\n".join(lines) + "\n"


def search_markdown(result: SearchResult) -> str:
    """The search's table: every evaluated point and whether it was accepted."""
    lines = [
        "",
        f"## Search over {result.axis} ({len(result.points)} evaluations, bound {result.bound}, masked model)",
        "",
        f"reference mAP@0.5 {result.reference_map:.4f}; {result.acceptance.describe()}: chosen {result.axis}={result.best}",
        "",
    ]
    lines += markdown_table(("#", "stage", result.axis, "mAP@0.5", "P", "R", "BFLOPs", "accepted?"), (
        [str(i), str(pt.stage), f"{pt.value:g}", *(cell(pt.metrics.get(k), spec) for k, spec in SEARCH_METRICS),
         "ok" if pt.ok else pt.note or "no"]
        for i, pt in enumerate(result.points, 1)
    ))
    return "\n".join(lines) + "\n"


def report_markdown(rows: Rows, hw: tuple[int, int], device: str, plan: PrunePlan,
                    openvino: dict[str, Any] | None, search: SearchResult | None) -> str:
    """The whole `report.md`: the models, then the OpenVINO latencies and the search when there are any."""
    md = models_markdown(rows, hw, device, plan) + (latency_markdown(rows, openvino, plan) if openvino else "")
    return md + (search_markdown(search) if search is not None else "")


def prune_metrics(rows: Rows, plan: PrunePlan, search: SearchResult | None, masked: dict[str, float] | None) -> dict[str, float]:
    """The ``prune/*`` metrics: the pruned model's cost and quality, and their ratios to
    the original's; `masked` is the masked model's quality (None in cost-only runs)."""
    before, after = rows["original"], rows["pruned"]
    metrics = {
        "prune/params": float(after["params"]),
        "prune/params_ratio": after["params"] / before["params"],
        "prune/bflops": after["bflops"],
        "prune/bflops_ratio": after["bflops"] / before["bflops"],
        "prune/latency_ms": after["latency_ms"],
        "prune/removed_units": float(len(plan.removed_units)),
    }
    if plan.achieved_percent is not None:
        metrics["prune/achieved_percent"] = plan.achieved_percent
    if "ov_latency_ms" in after:
        metrics["prune/ov_latency_ms"] = after["ov_latency_ms"]
        metrics["prune/ov_latency_ratio"] = after["ov_latency_ms"] / before["ov_latency_ms"]
    if search is not None:
        metrics["prune/search_evaluations"] = float(len(search.points))
        metrics[f"prune/search_{search.axis}"] = float(search.best)
    for key in ("precision", "recall", "mAP50"):
        if key in after:
            metrics[f"prune/{key}"] = after[key]
            metrics[f"prune/{key}_before"] = before[key]
            metrics[f"prune/masked_{key}"] = masked[key]
    return metrics
