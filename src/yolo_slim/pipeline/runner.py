"""Run the pipeline's stages in order, resumably.

Each stage writes `NN_name/stage.json` with the inputs that decide its result
(`yolo_slim.pipeline.inputs`) when it starts, and its result when it has finished. A
rerun of the same command skips finished stages and continues with the first
unfinished one (a training stage interrupted mid-way resumes from its `last.ckpt`, a
sweep keeps its finished jobs); a rerun whose inputs differ stops with one line
listing the differences. Everything a stage logs, and a plain-text record of its
progress, also goes to its `stage.log` (the console keeps live progress bars on a
terminal; `yolo_slim.progress`). A failing stage stops
the pipeline with one message naming the stage and its log; `REPORT.md` is rewritten
after every stage from what has been measured so far.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from yolo_slim.errors import PipelineError
from yolo_slim.pipeline.gate import GateCheck, check_baseline, check_sparse, enforce
from yolo_slim.pipeline.inputs import FileDigests, data_fingerprint, differences, stage_inputs
from yolo_slim.pipeline.report import write_report
from yolo_slim.pipeline.benchmark import benchmark_models
from yolo_slim.pipeline.context import PRUNE_STAGES, STAGES, StageContext
from yolo_slim.pipeline.jobs import baseline_config, stage_configs
from yolo_slim.pipeline.stages import RUNNERS, forced_stages, load_result, save_result, stage_list

log = logging.getLogger(__name__)
RESULT_NAME = "stage.json"


_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"
# loggers that keep their own console handler and do not propagate to the root
_SELF_CONTAINED = ("lightning.pytorch", "pytorch_lightning", "lightning.fabric", "lightning_fabric")


@contextlib.contextmanager
def _logged(path: Path) -> Iterator[logging.FileHandler]:
    """While a stage runs, its `stage.log` gets every log record (INFO and up).

    That is the tasks' own records (the training epochs, results, data checks), the
    plain-text progress records of `yolo_slim.progress` (Rich bars stay on the console,
    which keeps its own handler), Python warnings, and Lightning's messages.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    old_level = root.level
    root.setLevel(min(old_level, logging.INFO) if old_level else logging.INFO)
    root.addHandler(handler)
    own = [logger for logger in map(logging.getLogger, _SELF_CONTAINED) if not logger.propagate]
    for logger in own:
        logger.addHandler(handler)
    logging.captureWarnings(True)
    try:
        yield handler
    finally:
        logging.captureWarnings(False)
        for logger in own:
            logger.removeHandler(handler)
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


def _pipeline_img_size(ctx: StageContext) -> int | None:
    """The one input size of every stage: `img_size`, else the baseline model's own (checked either way)."""
    from yolo_slim.config.sizes import resolve_img_size

    baseline = baseline_config(ctx)
    return resolve_img_size(ctx.cfg.img_size, baseline.model.cfg, baseline.weights)


def _resolve_data(ctx: StageContext) -> str:
    """The data set every stage uses: the generated `.data` file for builtin, else the absolute path."""
    from yolo_slim.config.datasets import dataset_spec

    if str(ctx.cfg.data) == "builtin":
        return str(dataset_spec("builtin", ctx.cfg.builtin, int(ctx.img_size), ctx.cfg.paths.data_dir).source)
    return str(Path(str(ctx.cfg.data)).expanduser().resolve())


def _preflight(ctx: StageContext, wanted: list[str]) -> None:
    """Compose and validate every job of every wanted stage (later stages' inputs as placeholders)."""
    ctx.preflight = True
    try:
        for name in wanted:
            try:
                stage_configs(ctx, name)
            except PipelineError as exc:
                text = str(exc)
                raise PipelineError(text if text.startswith("stage '") else f"stage '{name}': {text}") from None
    finally:
        ctx.preflight = False


def sweep_settings(cfg: DictConfig, name: str) -> dict[str, Any]:
    """What decides a sweep stage's choice besides its prune jobs: the acceptance rule and,
    with `recover_steps` > 0, the fine-tune that judges rejected points again."""
    s = cfg[name]
    settings: dict[str, Any] = {"rule": {k: s[k] for k in ("tolerance", "keep_map", "keep_recall", "min_map", "recover_steps")}}
    if int(s.recover_steps) > 0:
        settings["recovery"] = {"experiment": cfg.finetune.experiment, "overrides": list(cfg.finetune.overrides),
                                "train_overrides": list(cfg.train_overrides)}
    return settings


def _inputs(ctx: StageContext, name: str, configs: dict[str, DictConfig], digests: FileDigests, data_digest: str) -> dict[str, Any]:
    p = ctx.cfg.paths
    roots = {str(ctx.run_dir): "<run>", str(p.data_dir): "<data_cache>", str(p.root_dir): "<checkout>"}
    if name in PRUNE_STAGES:  # the rule that picks the optimal point, and the recovery fine-tunes it may run
        return stage_inputs(configs, roots, digests, data_digest, sweep_settings(ctx.cfg, name))
    if name != "benchmark":
        return stage_inputs(configs, roots, digests, data_digest)
    settings = {"benchmark": OmegaConf.to_container(ctx.cfg.benchmark), "eval": OmegaConf.to_container(ctx.cfg.eval),
                "img_size": ctx.img_size, "deploy_device": ctx.cfg.deploy_device, "data": ctx.data}
    files = [f for pair in benchmark_models(ctx).values() for f in pair]
    files += [str(v) for v in ctx.results.get("export", {}).get("artifacts", {}).values()]
    return stage_inputs({}, roots, digests, data_digest, settings, files)


def _check_unchanged(ctx: StageContext, name: str, record: dict[str, Any] | None, inputs: dict[str, Any]) -> None:
    """Stop when a stage's earlier (finished or interrupted) run had other inputs.

    Raises:
        PipelineError: one line listing the differences and how to go on.
    """
    how = f"force=[{name}] reruns it and every later stage; run_name=NEW starts another run"
    if record is None:
        stage_dir = ctx.stage_dir(name)
        if stage_dir.is_dir() and any(stage_dir.iterdir()):
            raise PipelineError(f"stage '{name}' in {stage_dir} has files but no {RESULT_NAME} recording its inputs (an older yolo_slim?); {how}")
        return
    if "inputs" not in record:
        raise PipelineError(f"stage '{name}' in {ctx.stage_dir(name)} was made by an older yolo_slim that did not record its inputs; {how}")
    diffs = differences(record["inputs"], inputs)
    if diffs:
        shown = "; ".join(diffs[:6]) + (f"; and {len(diffs) - 6} more" if len(diffs) > 6 else "")
        raise PipelineError(f"run {ctx.cfg.run_name}: stage '{name}' was run with other inputs: {shown}. {how}")


GATED: dict[str, str] = {"sparsity": "baseline", "channel_sweep": "sparsity", "latency_sweep": "sparsity"}
"""stage -> the stage whose model the gate checks before it runs."""


def _gate_check(ctx: StageContext, checked: str) -> GateCheck:
    c = ctx.cfg
    if checked == "baseline":
        return check_baseline(ctx.results["baseline"], min_map=float(c.baseline.min_map))
    return check_sparse(ctx.results["sparsity"], ctx.results["baseline"], keep_map=float(c.sparsity.keep_map),
                        min_zeroed=float(c.sparsity.min_zeroed))


def _gate(ctx: StageContext, name: str, will_run: bool) -> None:
    """The gate before stage `name`: check the model it starts from; stop if it fails and `gate` is on.

    A stage that already ran is not stopped (the check is kept for the report only).

    Raises:
        PipelineError: the check's one line (what was found, what to do).
    """
    checked = GATED.get(name)
    if checked is None or checked not in ctx.results or (checked == "sparsity" and "baseline" not in ctx.results):
        return
    check = _gate_check(ctx, checked)
    ctx.gate[checked] = {**check.to_dict(), "enforced": bool(ctx.cfg.gate)}
    if not will_run:
        return
    if not check.passed and ctx.cfg.gate:
        write_report(ctx)  # the report says why the run stopped here
    enforce(check, bool(ctx.cfg.gate))
    note = "" if check.passed else " (gate=false: pruning anyway)"
    log.info("pipeline: %s%s", check.line(), note)


def _training_line(name: str, result: dict[str, Any]) -> str:
    """``pipeline: [baseline] 1400 of 2002 steps; converged: ...`` for a finished training stage."""
    training = result.get("training") or {}
    conv = training.get("convergence") or {}
    budget = training.get("budget") or {}
    return (f"pipeline: [{name}] {training.get('steps_done', '?')} of {budget.get('steps', '?')} optimizer steps; "
            f"{conv.get('verdict', 'no convergence verdict')}")


def run_pipeline(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    """Run the configured stages (`cfg.stages`) into `cfg.paths.output_dir`.

    Every stage's task configs are composed and validated before the first stage
    starts. A finished stage is skipped, an interrupted one continued, but only when
    its recorded inputs equal this run's. With ``dry_run=true`` it stops after the
    checks, touching no file.

    Returns:
        Every finished stage's result (this run's and earlier runs'), by stage name.

    Raises:
        ConfigError: the pipeline config is invalid.
        PipelineError: a stage's config is invalid, its inputs changed since it ran,
            or it failed (the message names the stage and its log).
    """
    from hydra.core.global_hydra import GlobalHydra

    from yolo_slim.config import validate_config

    if not GlobalHydra.instance().is_initialized():
        # called as a function (tests, notebooks, dry runs): the stages compose from the command's conf/
        from hydra import initialize_config_dir

        with initialize_config_dir(config_dir=str(Path(str(cfg.paths.conf_dir)).resolve()), version_base="1.3"):
            return run_pipeline(cfg)
    cfg = validate_config(cfg, "pipeline")
    dry = bool(cfg.dry_run)
    run_dir = Path("<run>") if dry else Path(str(cfg.paths.output_dir))
    wanted = stage_list(cfg)
    ctx = StageContext(cfg, run_dir, stages=tuple(wanted))
    stale = forced_stages(cfg)
    records = {} if dry else {name: load_result(ctx.stage_dir(name) / RESULT_NAME) for name in STAGES}
    for name, record in records.items():
        if record is not None and record.get("finished", True) and name not in stale:
            ctx.results[name] = record
    ctx.planned = frozenset(STAGES) if dry else frozenset(n for n in wanted if n not in ctx.results)
    ctx.preflight = True
    ctx.img_size = cfg.img_size if dry else _pipeline_img_size(ctx)
    ctx.preflight = False
    _preflight(ctx, wanted)
    if dry:
        return ctx.results
    ctx.data = _resolve_data(ctx)
    digests = FileDigests()
    data_digest = data_fingerprint(ctx.data, digests)
    log.info("pipeline: %s  stages: %s  (data=%s, img_size=%s, device=%s)", run_dir, ", ".join(wanted), ctx.data, ctx.img_size, cfg.device)
    for name in wanted:
        stage_dir = ctx.stage_dir(name)
        if name in stale and stage_dir.exists():
            shutil.rmtree(stage_dir)  # forced: start over, not resume the old last.ckpt
        try:
            configs = stage_configs(ctx, name)
        except PipelineError as exc:
            text = str(exc)
            raise PipelineError(text if text.startswith("stage '") else f"stage '{name}': {text}") from None
        inputs = _inputs(ctx, name, configs, digests, data_digest)
        record = None if name in stale else records.get(name)
        _check_unchanged(ctx, name, record, inputs)
        _gate(ctx, name, will_run=name not in ctx.results)
        if name in ctx.results:
            log.info("pipeline: [%s] already done (%.0f s), skipped", name, ctx.results[name].get("seconds", 0))
            continue
        save_result(stage_dir / RESULT_NAME, {"finished": False, "inputs": inputs})
        stage_log = stage_dir / "stage.log"
        log.info("pipeline: [%s] starting (stage %d/%d); log: %s", name, wanted.index(name) + 1, len(wanted), stage_log)
        start = time.perf_counter()
        try:
            with _logged(stage_log) as handler:
                log.info("stage %s started in %s", name, stage_dir)
                try:
                    result = RUNNERS[name](ctx, name, configs)
                except Exception:
                    handler.stream.write(traceback.format_exc())  # the log file only, not the console
                    raise
        except Exception as exc:  # noqa: BLE001 - any failure becomes one message naming the stage
            message = str(exc).strip() or type(exc).__name__
            raise PipelineError(f"stage '{name}' failed: {message}\n  log: {stage_log}") from exc
        result.update(finished=True, inputs=inputs, seconds=time.perf_counter() - start)
        save_result(stage_dir / RESULT_NAME, result)
        ctx.results[name] = result
        write_report(ctx)
        log.info("pipeline: [%s] done in %.0f s", name, result["seconds"])
        if "training" in result:
            log.info("%s", _training_line(name, result))
    report = write_report(ctx)
    log.info("pipeline: report %s", report)
    return ctx.results
