"""The pipeline's stages planned as jobs, and each job's config composed and validated.

A stage is planned as jobs (`Job`): the task (`train`, `prune`, `export`), the user's
Hydra overrides for it (the stage experiment, `train_overrides`, `<stage>.overrides`)
and the settings the pipeline gives it as a structured dict (its folder, the one data
set, input size, device, seed and evaluation thresholds, and the files of earlier
stages). `compose_job` composes the task config with the overrides, merges the
settings and validates the result with the task's schema, so a typo in any stage's
overrides is one line before the first stage starts (`runner.run_pipeline` checks
every stage that way first). The stage overrides may not set what the pipeline sets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from yolo_slim.errors import PipelineError
from yolo_slim.pipeline.context import OWNED_KEYS, PRUNE_STAGES, StageContext


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
        # the last pruning stage of this run's list: a finished stage of another route in the
        # same run folder (an earlier stages= list) is not where this run's fine-tuning starts
        listed = (lambda s: s in ctx.stages) if ctx.stages else (lambda s: s in ctx.results or s in ctx.planned)
        source = next((s for s in PRUNE_STAGES if listed(s)), PRUNE_STAGES[-1])
        inputs = {"model": {"cfg": ctx.need(source, "cfg")}, "weights": ctx.need(source, "weights")}
    settings = _merge(_common(ctx, out, "device"), inputs)
    last = out / "checkpoints" / "last.ckpt"
    if last.is_file():  # an interrupted run of this stage: continue it
        settings["ckpt_path"] = str(last)
    overrides = (f"experiment={s.experiment}", *ctx.cfg.train_overrides, *s.overrides)
    return [Job("train", "train", out, overrides, settings)]


def sweep_source(ctx: StageContext, name: str) -> dict[str, Any]:
    """The model a sweep stage prunes, as job settings: the sparse model for channel_sweep and
    latency_sweep, channel_sweep's optimal point for layer_sweep."""
    stage, key = ("channel_sweep", "weights") if name == "layer_sweep" else ("sparsity", "last_weights")
    return {"model": {"cfg": ctx.need(stage, "cfg")}, "weights": ctx.need(stage, key)}


def recovery_job(ctx: StageContext, name: str, out: Path, model: Mapping[str, Any]) -> Job:
    """A short fine-tune of one sweep point (or of the unpruned model) before it is judged
    (`yolo_slim.prune.recovery`): the finetune stage's experiment and overrides for
    `<name>.recover_steps` optimizer steps, without early stopping, and without the run's
    plots (PR curves and sample grids of a model only judged, 2-3 s a run on the demo)."""
    f = ctx.cfg.finetune
    overrides = (f"experiment={f.experiment}", *ctx.cfg.train_overrides, *f.overrides,
                 f"budget.steps={int(ctx.cfg[name].recover_steps)}", "budget.patience_steps=null", "++callbacks.run_plots=null")
    return Job("recover", "train", out, overrides, _merge(_common(ctx, out, "device"), model))


def sweep_jobs(ctx: StageContext, name: str) -> list[Job]:
    """A prune sweep stage, one job per value: channel_sweep over global_percent and
    latency_sweep over latency_budget (both from the sparse model), layer_sweep over
    shortcuts (from channel_sweep's optimal point)."""
    s = ctx.cfg[name]
    if name == "channel_sweep":
        axis, values, mode = "global_percent", list(s.percents), "channel"
    elif name == "latency_sweep":
        axis, values, mode = "latency_budget", list(s.budgets), "latency"
    else:
        axis, values, mode = "shortcuts", list(s.shortcuts), "layer"
    model = sweep_source(ctx, name)
    jobs = []
    for value in values:
        out = ctx.stage_dir(name) / f"{axis}_{value}"
        prune_settings: dict[str, Any] = {"mode": mode, axis: value, "recalibrate_bn": int(s.recalibrate_bn)}
        if mode == "latency":  # the latency table and the report measure on the deployment device
            prune_settings["latency"] = {"device": ctx.cfg.deploy_device}
        settings = _merge(_common(ctx, out, "device"), model, {"prune": prune_settings})
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
    "latency_sweep": sweep_jobs,
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


def stage_configs(ctx: StageContext, name: str) -> dict[str, DictConfig]:
    """Every job of stage `name`, composed and validated, by job name."""
    return {job.name: compose_job(name, job, ctx.composed) for job in JOBS[name](ctx, name)}


def baseline_config(ctx: StageContext) -> DictConfig:
    """The baseline stage's validated train config (its model and loader settings)."""
    return stage_configs(ctx, "baseline")["train"]
