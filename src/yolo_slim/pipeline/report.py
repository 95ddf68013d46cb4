"""`REPORT.md`: the original tutorial's tables, filled with what this run measured.

Columns as in the tutorial: P, R, mAP@0.5, Params, .weights size, inference time,
BFLOPS. Numbers come only from the stage results; a table whose stage has not run
says so instead of showing anything typed in.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from yolo_slim.io.atomic import write_atomic
from yolo_slim.tables import cell, markdown_table

HEADER = ("model", "P", "R", "mAP@0.5", "Params", ".weights size", "inference time (ms)", "BFLOPS")


def _f(value: Any, digits: int = 3) -> str:
    return cell(value, f".{digits}f")


def _params(value: Any) -> str:
    return "-" if value is None else f"{float(value) / 1e6:.3f}M"


def _cells(name: str, row: dict[str, Any]) -> list[str]:
    """The tutorial's columns of one model's row."""
    return [name, _f(row.get("precision")), _f(row.get("recall")), _f(row.get("mAP50")), _params(row.get("params")),
            f"{_f(row.get('weights_mib'), 2)} MiB", _f(row.get("latency_ms"), 2), _f(row.get("bflops"), 3)]


def _model_table(rows: dict[str, dict[str, Any]]) -> list[str]:
    """The tutorial's table, one line per (name, row)."""
    return markdown_table(HEADER, (_cells(name, row) for name, row in rows.items()))


def _train_row(ctx, stage: str, model: str) -> dict[str, Any] | None:
    """The benchmark's row of a trained model, else the training stage's own metrics."""
    bench = ctx.results.get("benchmark", {}).get("rows", {})
    if model in bench:
        return bench[model]
    result = ctx.results.get(stage)
    if result is None:
        return None
    from yolo_slim.darknet.cfg import load_cfg
    from yolo_slim.pipeline.measure import cost_row

    m = result.get("metrics", {})
    row = {k: m.get(f"val/{k}") for k in ("precision", "recall", "mAP50")}
    cfg = load_cfg(result["artifacts"]["cfg"])
    row.update(cost_row(cfg, (int(ctx.img_size), int(ctx.img_size))))
    return row


def _rel(ctx, path: str | None) -> str | None:
    return None if not path else os.path.relpath(path, ctx.run_dir)


def _sweep_section(ctx, stage: str, title: str) -> list[str]:
    result = ctx.results.get(stage)
    if result is None:
        return [f"## {title}", "", f"(stage `{stage}` has not run)", ""]
    table = Path(result["artifacts"]["table_md"]).read_text().splitlines()
    body = [line for line in table if not line.startswith("# ")]
    while body and not body[0].strip():
        body = body[1:]
    lines = [f"## {title}", "", *body, ""]
    lines.append(f"![{title}]({_rel(ctx, result['artifacts']['plot'])})")
    return lines + [""]


def _reduction(before: float | None, after: float | None) -> str:
    if not before or after is None:
        return "-"
    return f"{(float(after) / float(before) - 1) * 100:+.1f}%"


def _speedup(before: float | None, after: float | None) -> str:
    if not before or not after:
        return "-"
    return f"{float(before) / float(after):.2f}x"


def _final_section(ctx) -> list[str]:
    base, slim = _train_row(ctx, "baseline", "baseline"), _train_row(ctx, "finetune", "slim")
    lines = ["## After fine-tuning, against the baseline", ""]
    if base is None or slim is None:
        return lines + ["(needs the `baseline` and `finetune` stages)", ""]
    lines += [*_model_table({"baseline": base, "slim (fine-tuned)": slim}), ""]
    bench = ctx.results.get("benchmark", {})
    deployed = bench.get("deployed", {})

    def ov_speedup(engine: str) -> str:
        return _speedup(deployed.get(f"baseline/{engine}", {}).get("latency_ms"), deployed.get(f"slim/{engine}", {}).get("latency_ms"))

    keep = float(slim["mAP50"]) / float(base["mAP50"]) if base.get("mAP50") and slim.get("mAP50") is not None else None
    change = ["slim vs baseline", *(_reduction(base.get(k), slim.get(k)) for k in ("params", "weights_mib", "bflops")),
              _speedup(base.get("latency_ms"), slim.get("latency_ms")), ov_speedup("openvino_fp32")]
    header = ["change", "params", ".weights size", "BFLOPS", "PyTorch speed-up", "OpenVINO FP32 speed-up (f32 compute)"]
    for lower in _default_lowered(bench):
        header.append(f"OpenVINO FP32 IR speed-up ({lower}, this device's default)")
        change.append(ov_speedup(f"openvino_fp32_{lower}"))
    header.append("mAP@0.5 kept")
    change.append("-" if keep is None else f"{keep * 100:.1f}%")
    return lines + [*markdown_table(header, [change]), ""]


def _default_lowered(bench: dict[str, Any]) -> list[str]:
    """The lower precision the device computes an FP32 IR in by default (`[]` when it is f32):
    the benchmark then timed that default as `openvino_fp32_<it>` too."""
    default = bench.get("default_compute")
    return [default] if default and default != "f32" else []


def _deploy_section(ctx) -> list[str]:
    bench = ctx.results.get("benchmark")
    lines = ["## Deployment (batch 1, CPU, engines timed interleaved)", ""]
    if bench is None or not bench.get("deployed"):
        return lines + ["(needs the `export` and `benchmark` stages)", ""]
    deployed = bench["deployed"]
    reference = deployed.get("baseline/openvino_fp32", {}).get("latency_ms")
    header = ("model", "engine", "computes in", "P", "R", "mAP@0.5", "inference time (ms)", "FPS", "speed-up vs baseline OpenVINO FP32")
    lowered = _default_lowered(bench)
    order = ("pytorch", "onnxruntime", "openvino_fp32", *(f"openvino_fp32_{p}" for p in lowered), "openvino_fp16", "openvino_int8")
    rows = []
    for model in ("baseline", "slim"):
        for engine in order:
            entry = deployed.get(f"{model}/{engine}")
            if not entry or "latency_ms" not in entry:
                continue
            ms = entry["latency_ms"]
            compute = entry.get("compute", "f32" if engine in ("pytorch", "onnxruntime") else "-")
            rows.append([model, engine, compute, *(_f(entry.get(k)) for k in ("precision", "recall", "mAP50")),
                         f"{ms:.2f}", f"{1000.0 / ms:.1f}", _speedup(reference, ms)])
    lines += [*markdown_table(header, rows), "", "P, R and mAP@0.5 of the OpenVINO rows are those of the deployed IR on the validation set, "
              "computed by export in the device's default precision; the PyTorch, ONNX Runtime and OpenVINO-in-f32 rows share the PyTorch model's "
              "(ONNX Runtime matched it to 1e-4 at export)."]
    if lowered:
        lines.append(f"This device computes an FP32 IR in {', '.join(lowered)} unless asked (OpenVINO's INFERENCE_PRECISION_HINT): "
                     f"`openvino_fp32` is the same IR asked to compute in f32, as CPUs without native {', '.join(lowered)} do; "
                     f"`openvino_fp32_{lowered[0]}` is what `detect.py` runs here.")
    return lines + [""] + _precision_lines(ctx)


def _precision_lines(ctx) -> list[str]:
    """Which IR precision export measured fastest for each model, and why a slower one is slower
    (`speed` in the IRs' `meta.json`, `yolo_slim.export.precision`)."""
    artifacts = ctx.results.get("export", {}).get("artifacts", {})
    lines = []
    for model in ("baseline", "slim"):
        records = []
        for precision in ("fp16", "int8"):
            xml = artifacts.get(f"{model}_{precision}_xml")
            meta = Path(xml).with_name("meta.json") if xml else None
            if meta is not None and meta.is_file():
                speed = json.loads(meta.read_text()).get("speed")
                if speed:
                    records.append(speed)
        if not records:
            continue
        fastest = sorted({r["fastest_latency"].upper() for r in records})
        notes = sorted({note for r in records for note in r.get("notes", [])})
        lines.append(f"- {model}: fastest IR for batch-1 latency as export timed it: {' / '.join(fastest)}" + ("" if notes else "."))
        lines += [f"  - {note}" for note in notes]
    return (["Which precision to deploy (export's own interleaved timing of each IR against its FP32 twin):", "", *lines, ""]
            if lines else [])


def _anchor_phrase(anchors: dict[str, Any] | None) -> str:
    if not anchors:
        return "-"
    fit = anchors.get("fit")
    if not fit:
        return f"{anchors['used']} ({anchors['reason']})"
    cur, new = fit.get("current") or {}, fit["fitted"]
    figures = (f"BPR {cur.get('bpr', float('nan')):.3f} -> {new['bpr']:.3f}, mean IoU {cur.get('mean_iou', float('nan')):.3f} -> "
               f"{new['mean_iou']:.3f}")
    return f"{anchors['used']}: {figures} ({anchors['reason']})"


def _training_section(ctx) -> list[str]:
    """Each training stage's budget, the steps it took and the convergence verdict; the gate's checks."""
    rows = []
    for stage in ("baseline", "sparsity", "finetune"):
        training = ctx.results.get(stage, {}).get("training")
        if not training:
            continue
        budget, conv = training.get("budget") or {}, training.get("convergence") or {}
        line = str(budget.get("line", "-")).split(": ", 1)[-1]
        verdict = str(conv.get("verdict", "-"))
        if stage == "sparsity" and conv.get("last_map50") is not None:
            # its best validation is its least sparse one; the sweeps prune the last weights
            verdict = f"pruned from its last weights: val mAP@0.5 {float(conv['last_map50']):.3f} at step {conv.get('last_step')}; {verdict}"
        rows.append([stage, line, f"{training.get('steps_done', '-')} ({training.get('epochs_done', '-')} epochs)",
                     verdict, _anchor_phrase(training.get("anchors"))])
    lines = ["## Training budgets and convergence", ""]
    if not rows:
        return lines + ["(no training stage has run)", ""]
    lines += [*markdown_table(("stage", "budget (optimizer steps)", "steps done", "verdict", "anchors"), rows), ""]
    for stage, check in ctx.gate.items():
        state = "passed" if check["passed"] else ("FAILED: the run stopped here" if check["enforced"] else "FAILED, pruned anyway (gate=false)")
        lines.append(f"- Gate before pruning the {stage} model: {state}. {check['line']}")
    return lines + ([""] if ctx.gate else [])


def write_report(ctx) -> Path:
    """Write `REPORT.md` into the run dir from the finished stages' results."""
    done = [f"`{name}` ({result.get('seconds', 0):.0f} s)" for name, result in ctx.results.items()]
    total = sum(result.get("seconds", 0) for result in ctx.results.values())
    lines = [
        "# yolo_slim pipeline report",
        "",
        f"Run dir `{ctx.run_dir}`; data `{ctx.data}`; input {ctx.img_size}x{ctx.img_size}; "
        f"training and pruning on device={ctx.cfg.device}, OpenVINO on deploy_device={ctx.cfg.deploy_device}.",
        f"Stages finished: {', '.join(done) or 'none'}; {total / 60:.1f} min of stage time in all.",
        "",
    ]
    lines += _training_section(ctx)
    for stage, model, title in (("baseline", "baseline", "Baseline"), ("sparsity", "sparse", "After sparsity training")):
        row = _train_row(ctx, stage, model)
        lines += [f"## {title}", ""]
        lines += [*_model_table({model: row}), ""] if row else [f"(stage `{stage}` has not run)", ""]
    lines += _sweep_section(ctx, "channel_sweep", "Channel pruning sweep")
    lines += _sweep_section(ctx, "layer_sweep", "Layer pruning sweep (on the chosen channel-pruned model)")
    lines += _sweep_section(ctx, "latency_sweep", "Latency-budget pruning sweep (channels and residual units within a measured latency)")
    lines += _final_section(ctx)
    lines += _deploy_section(ctx)
    plots = ctx.results.get("benchmark", {}).get("artifacts", {})
    if plots:
        lines += ["## Plots", ""]
        captions = {"gamma": "|gamma| of the baseline, after sparsity training and after fine-tuning",
                    "pr": "precision-recall curves of the baseline and the slim model",
                    "sample": "detections of the slim OpenVINO IR on a validation image"}
        for key, caption in captions.items():
            if key in plots:
                lines += [f"{caption}:", "", f"![{caption}]({_rel(ctx, plots[key])})", ""]
    return write_atomic(ctx.run_dir / "REPORT.md", "\n".join(lines) + "\n")
