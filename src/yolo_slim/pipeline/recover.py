"""The short fine-tune of a sweep point before it is judged, run as a training job.

`recover_point` fine-tunes one row's pruned model (or, for None, the model the sweep
prunes) for ``<stage>.recover_steps`` optimizer steps with the finetune stage's
experiment and overrides (`jobs.recovery_job`), in ``<job dir>/recover`` (the
unpruned model's in ``<stage dir>/recover_unpruned``), and returns the best
validation it reached. A finished run is read back instead of trained again, so a
rerun of the pipeline does not repeat it; an interrupted one starts over. The layer
sweep's unpruned model is the channel sweep's optimal point: when the channel sweep
fine-tuned that point for as many steps (with the same finetune settings, which both
stages' inputs record), its run is read back instead of training the same model again
(about 33 s on the demo).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from yolo_slim.errors import PipelineError
from yolo_slim.pipeline.context import StageContext
from yolo_slim.pipeline.jobs import compose_job, recovery_job, sweep_source

log = logging.getLogger(__name__)

UNPRUNED_DIR = "recover_unpruned"
RECOVER_DIR = "recover"  # a pruned job's recovery run, inside its job dir


def _best(run_dir: Path) -> dict[str, Any] | None:
    """The best validation of a finished run (``mAP50``, ``recall``, ``precision``, ``steps``: the run's steps)."""
    path = run_dir / "convergence.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    history = record.get("history") or []
    if not history:
        return None
    best = max(history, key=lambda p: p["map50"])  # the first of equal values
    return {"mAP50": best["map50"], "recall": best.get("recall"), "precision": best.get("precision"),
            "steps": int(record["last_step"]), "best_step": best["step"]}


def _earlier_recovery(ctx: StageContext, name: str, model: Mapping[str, Any]) -> Path | None:
    """The layer sweep's unpruned model is channel_sweep's optimal point: that point's finished
    recovery run when channel_sweep ran it for as many steps; else None. (The steps a run ends
    at are rounded up to whole epochs, so the configured steps are compared, not the run's.)"""
    if name != "layer_sweep" or int(ctx.cfg.channel_sweep.recover_steps) != int(ctx.cfg[name].recover_steps):
        return None
    candidate = Path(str(model["model"]["cfg"])).parent / RECOVER_DIR
    return candidate if _best(candidate) is not None else None


def recover_point(ctx: StageContext, name: str, row: Mapping[str, Any] | None) -> dict[str, Any]:
    """Fine-tune `row`'s pruned model (None: the sweep's unpruned model) and return its best validation.

    Raises:
        PipelineError: the run validated nothing.
    """
    from yolo_slim.train_task import train

    steps = int(ctx.cfg[name].recover_steps)
    if row is None:
        out, model, label = ctx.stage_dir(name) / UNPRUNED_DIR, sweep_source(ctx, name), "the unpruned model"
        earlier = _earlier_recovery(ctx, name, model)
        if earlier is not None and _best(out) is None:
            log.info("%s: the unpruned model is a point an earlier sweep fine-tuned for %d steps: reading back %s", name, steps, earlier)
            out = earlier
    else:
        out, model, label = Path(str(row["run_dir"])) / RECOVER_DIR, {"model": {"cfg": row["cfg"]}, "weights": row["weights"]}, str(row["setting"])
    done = _best(out)
    if done is None:
        if out.exists():
            shutil.rmtree(out)  # an interrupted recovery: a few hundred steps, started over
        job = recovery_job(ctx, name, out, model)
        log.info("%s: fine-tuning %s for %d steps before judging it (%s)", name, label, steps, out)
        train(compose_job(name, job, ctx.composed))
        done = _best(out)
        if done is None:
            raise PipelineError(f"{name}: the recovery fine-tune of {label} in {out} validated nothing; "
                                f"give it more steps ({name}.recover_steps) or set it to 0")
    log.info("%s: %s after %d steps of fine-tuning: mAP@0.5 %.4f, R %.4f", name, label, done["steps"], done["mAP50"],
             done["recall"] if done["recall"] is not None else float("nan"))
    return done


__all__ = ["RECOVER_DIR", "UNPRUNED_DIR", "recover_point"]
