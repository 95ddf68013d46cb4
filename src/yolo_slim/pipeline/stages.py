"""The seven stages of the slimming process, each one or more calls of the project's own tasks.

A stage is planned as jobs (`Job`): the task (`train`, `prune`, `export`), the user's
Hydra overrides for it (the stage experiment, `train_overrides`, `<stage>.overrides`)
and the settings the pipeline gives it as a structured dict (its folder, the one data
set, input size, device, seed and evaluation thresholds, and the files of earlier
stages). `compose_job` composes the task config with the overrides, merges the
settings and validates the result with the task's schema, so a typo in any stage's
overrides is one line before the first stage starts (`runner.run_pipeline` checks
every stage that way first). The stage overrides may not set what the pipeline sets.

Stages read what earlier stages wrote only through those stages' results
(`ctx.results[name]`), never by guessing paths.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from yolo_slim.errors import PipelineError

STAGES: tuple[str, ...] = ("baseline", "sparsity", "channel_sweep", "layer_sweep", "finetune", "export", "benchmark")
# keys every stage gets from the pipeline; a stage's own overrides may not set them
OWNED_KEYS: tuple[str, ...] = ("paths", "seed", "data", "img_size", "device", "eval")


@dataclass(frozen=True)
class Job:
    """One task call of a stage.

    Attributes:
        name: the job's name inside its stage (``train``, ``global_percent_0.5``, ``slim_int8``).
        task: ``train``, ``prune`` or ``export``.
        out: its output folder.
        overrides: the user's Hydra overrides (group choices and keys), composed first.
        settings: what the pipeline sets, merged onto the composed config.
    """

    name: str
    task: str
    out: Path
    overrides: tuple[str, ...]
    settings: Mapping[str, Any]


@dataclass
class StageContext:
    """What a stage needs: the pipeline config, its folder, the shared values, earlier results.

    Attributes:
        data: the data set every stage uses (the generated `.data` file for builtin).
        img_size: the input size every stage uses.
        planned: the stages this run will still run; while `preflight`, their
            outputs are placeholders such as ``<baseline.best_weights>``.
        gate: the gate's checks (`yolo_slim.pipeline.gate`) by the stage checked.
    """

    cfg: DictConfig
    run_dir: Path
    data: str = "<data>"
    img_size: int | None = None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    planned: frozenset[str] = frozenset()
    preflight: bool = False
    composed: dict[tuple[str, ...], DictConfig] = field(default_factory=dict, repr=False)
    gate: dict[str, dict[str, Any]] = field(default_factory=dict)

    def stage_dir(self, name: str) -> Path:
        return self.run_dir / f"{STAGES.index(name) + 1:02d}_{name}"

    def need(self, stage: str, key: str) -> Any:
        """An output of an earlier stage, or a clear error naming what to run first."""
        result = self.results.get(stage)
        if result is not None and key in result.get("artifacts", {}):
            return result["artifacts"][key]
        if result is not None and key in result:
            return result[key]
        if self.preflight and stage in self.planned:
            return f"<{stage}.{key}>"
        raise PipelineError(f"this stage needs the {stage!r} stage's {key!r}; run it first (stages=[{stage},...])")


# ----------------------------------------------------------------------------- jobs


def _common(ctx: StageContext, out: Path, device_key: str) -> dict[str, Any]:
    """The settings every job gets: its folder, the pipeline's paths, seed, data, size, device, eval."""
    p = ctx.cfg.paths
    return {
        "paths": {"root_dir": str(p.root_dir), "conf_dir": str(p.conf_dir), "output_root": str(p.output_root), "log_dir": str(p.log_dir),
                  "data_dir": str(p.data_dir), "output_dir": str(out)},
        "seed": ctx.cfg.seed,
        "data": ctx.data,
        "img_size": ctx.img_size,
        "device": ctx.cfg[device_key],
        "eval": OmegaConf.to_container(ctx.cfg.eval, resolve=True),
    }


def _merge(*parts: Mapping[str, Any]) -> dict[str, Any]:
    return OmegaConf.to_container(OmegaConf.merge(*[OmegaConf.create(dict(p)) for p in parts]))


def train_jobs(ctx: StageContext, name: str) -> list[Job]:
    """The training stage `name` (baseline, sparsity, finetune) as one job."""
    s = ctx.cfg[name]
    out = ctx.stage_dir(name)
    inputs: dict[str, Any] = {}
    if name == "sparsity":
        # the baseline's own cfg: its architecture, size and (fitted) anchors go with its weights
        weights = ctx.need("baseline", "best_weights")
        inputs = {"model": {"cfg": ctx.need("baseline", "cfg")}, "weights": weights}
    elif name == "finetune":
        source = "layer_sweep" if "layer_sweep" in ctx.results or "layer_sweep" in ctx.planned else "channel_sweep"
        inputs = {"model": {"cfg": ctx.need(source, "cfg")}, "weights": ctx.need(source, "weights")}
    settings = _merge(_common(ctx, out, "device"), inputs)
    last = out / "checkpoints" / "last.ckpt"
    if last.is_file():  # an interrupted run of this stage: continue it
        settings["ckpt_path"] = str(last)
    overrides = (f"experiment={s.experiment}", *ctx.cfg.train_overrides, *s.overrides)
    return [Job("train", "train", out, overrides, settings)]


def sweep_jobs(ctx: StageContext, name: str) -> list[Job]:
    """A prune sweep stage (channel_sweep over global_percent, layer_sweep over shortcuts), one job per value."""
    s = ctx.cfg[name]
    if name == "channel_sweep":
        axis, values, mode, source = "global_percent", list(s.percents), "channel", ("sparsity", "last_weights")
    else:
        axis, values, mode, source = "shortcuts", list(s.shortcuts), "layer", ("channel_sweep", "weights")
    model = {"model": {"cfg": ctx.need(source[0], "cfg")}, "weights": ctx.need(*source)}
    jobs = []
    for value in values:
        out = ctx.stage_dir(name) / f"{axis}_{value}"
        settings = _merge(_common(ctx, out, "device"), model, {"prune": {"mode": mode, axis: value}})
        jobs.append(Job(f"{axis}_{value}", "prune", out, tuple(s.overrides), settings))
    return jobs


def export_jobs(ctx: StageContext, name: str = "export") -> list[Job]:
    """Each precision of the baseline and of the slim model, one job each."""
    s = ctx.cfg.export
    models = {
        "baseline": (ctx.need("baseline", "cfg"), ctx.need("baseline", "best_weights")),
        "slim": (ctx.need("finetune", "cfg"), ctx.need("finetune", "best_weights")),
    }
    jobs = []
    for model_name, (model_cfg, weights) in models.items():
        for precision in s.precisions:
            out = ctx.stage_dir("export") / model_name / precision
            settings = _merge(_common(ctx, out, "deploy_device"), {"model": {"cfg": model_cfg}, "weights": weights, "export": {"precision": precision}})
            jobs.append(Job(f"{model_name}_{precision}", "export", out, tuple(s.overrides), settings))
    return jobs


JOBS: dict[str, Callable[[StageContext, str], list[Job]]] = {
    "baseline": train_jobs,
    "sparsity": train_jobs,
    "channel_sweep": sweep_jobs,
    "layer_sweep": sweep_jobs,
    "finetune": train_jobs,
    "export": export_jobs,
    "benchmark": lambda ctx, name: [],
}


def _keys(settings: Mapping[str, Any], prefix: str = "") -> list[str]:
    return [k for key, value in settings.items()
            for k in (_keys(value, f"{prefix}{key}.") if isinstance(value, Mapping) and value else [f"{prefix}{key}"])]


def _check_owned(stage: str, job: Job) -> None:
    """Refuse a stage override that sets what the pipeline sets, naming both values."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    owned = {*OWNED_KEYS, *_keys(job.settings)}
    flat = dict(zip(_keys(job.settings), _flat_values(job.settings)))
    for override in OverridesParser.create().parse_overrides([o for o in job.overrides if not o.startswith("experiment=")]):
        key = override.key_or_group
        hit = next((k for k in sorted(owned) if key == k or key.startswith(k + ".") or k.startswith(key + ".")), None)
        if hit is not None:
            value = override.input_line.split("=", 1)[-1]
            theirs = f" (the pipeline gives {hit}={'null' if flat[hit] is None else flat[hit]})" if hit in flat else ""
            raise PipelineError(
                f"stage '{stage}': its overrides set {key}={value}, which the pipeline sets for every stage{theirs}; "
                f"set it on pipeline.py instead (data=, img_size=, device=, deploy_device=, seed=, eval.*)"
            )


def _flat_values(settings: Mapping[str, Any]) -> list[Any]:
    return [v for value in settings.values()
            for v in (_flat_values(value) if isinstance(value, Mapping) and value else [value])]


def compose_job(stage: str, job: Job, cache: dict[tuple[str, ...], DictConfig] | None = None) -> DictConfig:
    """The job's task config: composed with its overrides, the settings merged, validated.

    Args:
        cache: compositions by (task, overrides), reused by jobs that differ only in
            their settings (a sweep's jobs; each export precision).

    Raises:
        PipelineError: an override sets a pipeline-owned key, or the config does not
            compose or validate (one line naming the stage).
    """
    from hydra import compose
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from yolo_slim.config import validate_config
    from yolo_slim.config.messages import hydra_error
    from yolo_slim.config.validate import schema_of
    from yolo_slim.errors import YoloSlimError

    _check_owned(stage, job)
    key = (job.task, *job.overrides)
    try:
        composed = cache.get(key) if cache is not None else None
        if composed is None:
            composed = compose(config_name=job.task, overrides=list(job.overrides))
            if cache is not None:
                cache[key] = composed
        cfg = OmegaConf.merge(composed, job.settings)
    except (HydraException, OmegaConfBaseException) as exc:
        raise PipelineError(f"stage '{stage}': {hydra_error(exc, schema_of(job.task))}") from None
    try:
        return validate_config(cfg, job.task)
    except YoloSlimError as exc:
        raise PipelineError(f"stage '{stage}': {exc}") from None


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
    """Stages 3, 4: a prune job per value; the optimal point chosen from the sweep table."""
    from yolo_slim.progress import track
    from yolo_slim.prune.sweep import write_sweep
    from yolo_slim.prune.task import prune

    for cfg in track(list(configs.values()), f"{name}: jobs"):
        job = Path(str(cfg.paths.output_dir))
        if (job / "report.json").is_file():
            continue  # finished in an interrupted earlier run
        if job.exists():
            shutil.rmtree(job)
        prune(cfg)
    written = write_sweep(ctx.stage_dir(name), tolerance=float(ctx.cfg[name].tolerance))
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
    from yolo_slim.pipeline.benchmark import benchmark

    return benchmark(ctx)


RUNNERS: dict[str, Callable[[StageContext, str, Mapping[str, DictConfig]], dict[str, Any]]] = {
    "baseline": run_train,
    "sparsity": run_train,
    "channel_sweep": run_sweep,
    "layer_sweep": run_sweep,
    "finetune": run_train,
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


def stage_configs(ctx: StageContext, name: str) -> dict[str, DictConfig]:
    """Every job of stage `name`, composed and validated, by job name."""
    return {job.name: compose_job(name, job, ctx.composed) for job in JOBS[name](ctx, name)}


def baseline_config(ctx: StageContext) -> DictConfig:
    """The baseline stage's validated train config (its model and loader settings)."""
    return stage_configs(ctx, "baseline")["train"]


__all__ = ["STAGES", "Job", "StageContext", "compose_job", "stage_configs", "RUNNERS", "stage_list", "forced_stages"]
