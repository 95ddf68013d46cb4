"""The seven stages of the slimming process, each one or more calls of the project's own tasks.

Each stage's jobs are planned and composed in `yolo_slim.pipeline.jobs`; this module
runs them (`RUNNERS`: train, prune sweep, export, benchmark), stores each stage's
result and reads the stage lists of the config.

Stages read what earlier stages wrote only through those stages' results
(`ctx.results[name]`), never by guessing paths.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from yolo_slim.errors import PipelineError
from yolo_slim.pipeline.benchmark import benchmark
from yolo_slim.pipeline.context import STAGES, StageContext, forced_stages, stage_list
from yolo_slim.pipeline.jobs import Job, baseline_config, compose_job, stage_configs

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- running


def _paths(artifacts: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in artifacts.items() if isinstance(v, (str, Path))}


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}


def run_train(ctx: StageContext, name: str, configs: Mapping[str, DictConfig]) -> dict[str, Any]:
    """Stages 1, 2, 5: baseline, sparsity training from the baseline, fine-tuning of the slim model."""
    from yolo_slim.train_task import read_summary, train

    metrics, artifacts = train(configs["train"])
    summary = read_summary(artifacts["run_dir"]) or {}
    training = {k: summary.get(k) for k in ("budget", "steps_done", "epochs_done", "convergence", "anchors")}
    return {"metrics": _floats(metrics), "artifacts": _paths(artifacts), "training": training}


def run_sweep(ctx: StageContext, name: str, configs: Mapping[str, DictConfig]) -> dict[str, Any]:
    """A sweep stage: a prune job per value; the optimal point chosen from the sweep table
    (the lowest measured OpenVINO latency for latency_sweep, the lowest BFLOPs otherwise).

    With `<name>.recover_steps` > 0, the points the acceptance rule rejects as cut are
    judged again after that many steps of fine-tuning, against the unpruned model
    fine-tuned the same way (`yolo_slim.prune.recovery`, `yolo_slim.pipeline.recover`).

    A job the planner refuses (e.g. a latency budget below the fastest plan it can make)
    is listed in the sweep table as failed, as in a `prune.py -m` multirun, and the
    optimal point is chosen from the others; the stage fails only when every job did.
    """
    from yolo_slim.errors import PruneError
    from yolo_slim.progress import track
    from yolo_slim.prune.accept import Acceptance
    from yolo_slim.pipeline.recover import recover_point
    from yolo_slim.prune.recovery import recover_rejected
    from yolo_slim.prune.sweep import collect_rows, record_failure, write_sweep
    from yolo_slim.prune.task import prune

    for cfg in track(list(configs.values()), f"{name}: jobs"):
        job = Path(str(cfg.paths.output_dir))
        if (job / "report.json").is_file():
            continue  # finished in an interrupted earlier run
        if job.exists():
            shutil.rmtree(job)
        try:
            prune(cfg)
        except PruneError as exc:
            log.warning("%s: job %s refused: %s", name, job.name, exc)
            record_failure(job, exc, [job.name])
    axis = "latency" if name == "latency_sweep" else "bflops"
    acceptance = Acceptance.from_config(ctx.cfg[name], name)
    collected = collect_rows(ctx.stage_dir(name))
    if int(ctx.cfg[name].recover_steps) > 0 and collected.reference is not None:
        recover_rejected(collected.rows, collected.reference, acceptance, lambda row: recover_point(ctx, name, row))
    written = write_sweep(ctx.stage_dir(name), acceptance, collected=collected, axis=axis)
    choice = written["choice"]
    if choice.row is None:
        raise PipelineError(f"{name}: {choice.reason}")
    return {
        "artifacts": {"cfg": choice.row["cfg"], "weights": choice.row["weights"], "table_md": str(written["md"]),
                      "table_csv": str(written["csv"]), "plot": str(written["png"]), "optimal": str(written["optimal"])},
        "choice": {"setting": choice.row["setting"], "reason": choice.reason},
    }


def run_export(ctx: StageContext, name: str, configs: Mapping[str, DictConfig]) -> dict[str, Any]:
    """Stage 6: ONNX and OpenVINO IR (each precision) of the baseline and the slim model."""
    from yolo_slim.export.task import export
    from yolo_slim.progress import track

    result: dict[str, Any] = {"artifacts": {}, "metrics": {}}
    for job, cfg in track(list(configs.items()), f"{name}: jobs"):
        metrics, artifacts = export(cfg)
        for k, v in _paths(artifacts).items():
            result["artifacts"][f"{job}_{k}"] = v
        for k, v in _floats(metrics).items():
            result["metrics"][f"{job}/{k.split('/', 1)[-1]}"] = v
    return result


def run_benchmark(ctx: StageContext, name: str, configs: Mapping[str, DictConfig]) -> dict[str, Any]:
    """Stage 7: quality of every deployed form and interleaved batch-1 latencies."""
    return benchmark(ctx)


RUNNERS: dict[str, Callable[[StageContext, str, Mapping[str, DictConfig]], dict[str, Any]]] = {
    "baseline": run_train,
    "sparsity": run_train,
    "channel_sweep": run_sweep,
    "layer_sweep": run_sweep,
    "latency_sweep": run_sweep,
    "finetune": run_train,
    "export": run_export,
    "benchmark": run_benchmark,
}


def save_result(path: Path, result: dict[str, Any]) -> None:
    from yolo_slim.io.atomic import write_atomic

    write_atomic(path, json.dumps(result, indent=1, default=str) + "\n")


def load_result(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


__all__ = ["STAGES", "Job", "StageContext", "compose_job", "stage_configs", "baseline_config", "RUNNERS", "stage_list", "forced_stages"]
