"""The seven stages of the slimming process, each a call of the project's own task.

Every stage composes the task's own Hydra config (`train`, `prune`, `export`) with
the overrides the pipeline experiment gives, writes into its own folder of the run
dir and returns a JSON-serialisable result. Stages read what earlier stages wrote
only through those results (`ctx.results[name]`), never by guessing paths.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from yolo_slim.errors import PipelineError

STAGES: tuple[str, ...] = ("baseline", "sparsity", "channel_sweep", "layer_sweep", "finetune", "export", "benchmark")


@dataclass
class StageContext:
    """What a stage needs: the pipeline config, its folder, earlier results."""

    cfg: DictConfig
    run_dir: Path
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    def stage_dir(self, name: str) -> Path:
        return self.run_dir / f"{STAGES.index(name) + 1:02d}_{name}"

    def need(self, stage: str, key: str) -> Any:
        """An output of an earlier stage, or a clear error naming what to run first."""
        result = self.results.get(stage)
        if result is None or key not in result.get("artifacts", {}) and key not in result:
            raise PipelineError(f"this stage needs the {stage!r} stage's {key!r}; run it first (stages=[{stage},...])")
        return result["artifacts"][key] if key in result.get("artifacts", {}) else result[key]


# ----------------------------------------------------------------------------- helpers


def _common(ctx: StageContext) -> list[str]:
    """Overrides every task composition gets: the pipeline's paths, seed and dataset."""
    p = ctx.cfg.paths
    return [f"paths.root_dir={p.root_dir}", f"paths.data_dir={p.data_dir}", f"paths.log_dir={p.log_dir}", f"seed={ctx.cfg.seed}"]


def _data_overrides(ctx: StageContext, task: str) -> list[str]:
    dataset = str(ctx.cfg.dataset)
    if task == "export":
        return [f"dataset={builtin_data_file(ctx) if dataset == 'builtin' else dataset}"]
    if dataset == "builtin":
        return []
    return ["data=custom", f"data.data={dataset}"]


def builtin_data_file(ctx: StageContext) -> str:
    """The `.data` file of the built-in dataset the training stages generated."""
    return str(ctx.need("baseline", "data_file"))


def compose_task(config_name: str, overrides: Sequence[str]) -> DictConfig:
    """Compose one of the project's task configs (inside Hydra's global state)."""
    from hydra import compose

    return compose(config_name=config_name, overrides=list(overrides))


def _paths(artifacts: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in artifacts.items() if isinstance(v, (str, Path))}


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}


def _train_stage(ctx: StageContext, name: str, extra: Sequence[str]) -> dict[str, Any]:
    from yolo_slim.train_task import train

    s = ctx.cfg[name]
    out = ctx.stage_dir(name)
    overrides = [f"experiment={s.experiment}", f"paths.output_dir={out}", f"data.img_size={ctx.cfg.img_size}", *_common(ctx),
                 *_data_overrides(ctx, "train"),
                 *ctx.cfg.train_overrides, *extra, *s.overrides]
    last = out / "checkpoints" / "last.ckpt"
    if last.is_file():  # an interrupted run of this stage: continue it
        overrides.append(f"ckpt_path={last}")
    cfg = compose_task("train", overrides)
    metrics, artifacts = train(cfg)
    result = {"metrics": _floats(metrics), "artifacts": _paths(artifacts), "overrides": overrides}
    result["artifacts"]["data_file"] = _data_file(cfg)
    return result


def _data_file(cfg: DictConfig) -> str:
    from hydra.utils import instantiate

    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    return str(datamodule.spec.source) if datamodule.spec.source else str(cfg.data.data)


def _prune_job(ctx: StageContext, name: str, out: Path, model_cfg: str, weights: str, extra: Sequence[str]) -> dict[str, Any]:
    from yolo_slim.prune.task import prune

    s = ctx.cfg[name]
    overrides = [f"model.cfg={model_cfg}", f"weights={weights}", f"paths.output_dir={out}", f"img_size={ctx.cfg.img_size}", *_common(ctx),
                 *_data_overrides(ctx, "prune"), *extra, *s.overrides]
    metrics, artifacts = prune(compose_task("prune", overrides))
    return {"metrics": _floats(metrics), "artifacts": _paths(artifacts)}


def _sweep(ctx: StageContext, name: str, axis: str, values: Sequence[Any], model_cfg: str, weights: str, mode: str) -> dict[str, Any]:
    from yolo_slim.prune.accept import Acceptance
    from yolo_slim.prune.sweep import write_sweep

    s = ctx.cfg[name]
    root = ctx.stage_dir(name)
    for value in values:
        job = root / f"{axis}_{value}"
        if (job / "report.json").is_file():
            continue  # finished in an interrupted earlier run
        if job.exists():
            shutil.rmtree(job)
        _prune_job(ctx, name, job, model_cfg, weights, [f"prune={mode}", f"prune.{axis}={value}"])
    written = write_sweep(root, Acceptance.from_config(s, name))
    choice = written["choice"]
    if choice.row is None:
        raise PipelineError(f"{name}: {choice.reason}")
    return {
        "artifacts": {"cfg": choice.row["cfg"], "weights": choice.row["weights"], "table_md": str(written["md"]),
                      "table_csv": str(written["csv"]), "plot": str(written["png"]), "optimal": str(written["optimal"])},
        "choice": {"setting": choice.row["setting"], "reason": choice.reason},
    }


# ----------------------------------------------------------------------------- stages


def run_baseline(ctx: StageContext) -> dict[str, Any]:
    """Stage 1: train the baseline from scratch (or the configured weights)."""
    return _train_stage(ctx, "baseline", [])


def run_sparsity(ctx: StageContext) -> dict[str, Any]:
    """Stage 2: sparsity training from the baseline's best weights."""
    return _train_stage(ctx, "sparsity", [f"weights={ctx.need('baseline', 'best_weights')}"])


def run_channel_sweep(ctx: StageContext) -> dict[str, Any]:
    """Stage 3: channel pruning at each `global_percent`; the optimal point chosen."""
    s = ctx.cfg.channel_sweep
    return _sweep(ctx, "channel_sweep", "global_percent", list(s.percents), ctx.need("sparsity", "cfg"), ctx.need("sparsity", "last_weights"), "channel")


def run_layer_sweep(ctx: StageContext) -> dict[str, Any]:
    """Stage 4: layer pruning (residual units) on top of the chosen channel-pruned model."""
    s = ctx.cfg.layer_sweep
    return _sweep(ctx, "layer_sweep", "shortcuts", list(s.shortcuts), ctx.need("channel_sweep", "cfg"), ctx.need("channel_sweep", "weights"), "layer")


def run_finetune(ctx: StageContext) -> dict[str, Any]:
    """Stage 5: fine-tune the slim model with warm-up."""
    source = "layer_sweep" if "layer_sweep" in ctx.results else "channel_sweep"
    return _train_stage(ctx, "finetune", [f"model.cfg={ctx.need(source, 'cfg')}", f"weights={ctx.need(source, 'weights')}"])


def _export_one(ctx: StageContext, out: Path, model_cfg: str, weights: str, precision: str) -> dict[str, Any]:
    from yolo_slim.export.task import export

    s = ctx.cfg.export
    overrides = [f"model.cfg={model_cfg}", f"weights={weights}", f"export.precision={precision}", f"export.out_dir={out}",
                 f"export.img_size={ctx.cfg.img_size}", f"seed={ctx.cfg.seed}", *_data_overrides(ctx, "export"), *s.overrides]
    metrics, artifacts = export(compose_task("export", overrides))
    return {"metrics": _floats(metrics), "artifacts": _paths(artifacts)}


def run_export(ctx: StageContext) -> dict[str, Any]:
    """Stage 6: ONNX and OpenVINO IR (each precision) of the baseline and the slim model."""
    s = ctx.cfg.export
    models = {
        "baseline": (ctx.need("baseline", "cfg"), ctx.need("baseline", "best_weights")),
        "slim": (ctx.need("finetune", "cfg"), ctx.need("finetune", "best_weights")),
    }
    result: dict[str, Any] = {"artifacts": {}, "metrics": {}}
    for model_name, (model_cfg, weights) in models.items():
        for precision in s.precisions:
            one = _export_one(ctx, ctx.stage_dir("export") / model_name / precision, model_cfg, weights, precision)
            for k, v in one["artifacts"].items():
                result["artifacts"][f"{model_name}_{precision}_{k}"] = v
            for k, v in one["metrics"].items():
                result["metrics"][f"{model_name}_{precision}/{k.split('/', 1)[-1]}"] = v
    return result


def run_benchmark(ctx: StageContext) -> dict[str, Any]:
    """Stage 7: quality of every deployed form and interleaved batch-1 latencies."""
    from yolo_slim.pipeline.benchmark import benchmark

    return benchmark(ctx)


RUNNERS: dict[str, Callable[[StageContext], dict[str, Any]]] = {
    "baseline": run_baseline,
    "sparsity": run_sparsity,
    "channel_sweep": run_channel_sweep,
    "layer_sweep": run_layer_sweep,
    "finetune": run_finetune,
    "export": run_export,
    "benchmark": run_benchmark,
}


def save_result(path: Path, result: dict[str, Any]) -> None:
    from yolo_slim.io.atomic import write_atomic

    write_atomic(path, json.dumps(result, indent=1, default=str) + "\n")


def load_result(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _checked_names(cfg: DictConfig, key: str) -> list[str]:
    """The stage names under ``cfg[key]``; an unknown name is a `PipelineError`."""
    names = list(OmegaConf.to_container(cfg[key], resolve=True)) if cfg.get(key) else []
    unknown = [s for s in names if s not in STAGES]
    if unknown:
        raise PipelineError(f"{key}={names}: unknown {unknown}; expected a subset of {list(STAGES)}")
    return names


def stage_list(cfg: DictConfig) -> list[str]:
    """The configured stages, checked, in process order."""
    wanted = _checked_names(cfg, "stages") or list(STAGES)
    return [s for s in STAGES if s in wanted]


def forced_stages(cfg: DictConfig) -> set[str]:
    """The stages ``cfg.force`` names and every stage after the first of them (their inputs change)."""
    forced = _checked_names(cfg, "force")
    if not forced:
        return set()
    return set(STAGES[min(STAGES.index(name) for name in forced):])
