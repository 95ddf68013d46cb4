"""Whether a training run converged: its val mAP@0.5 history and the verdict at the end.

`ConvergenceMonitor` records every validation's mAP@0.5 (with P and R) against the
optimizer step. When the fit ends, `assess_convergence` says whether the model was
still improving, by two signs over the last ``window`` steps (the early-stopping
patience, or the last quarter of a run without one):

* a new best: the best val mAP@0.5 of the window is more than ``min_delta`` above the
  best before it (what Lightning's `EarlyStopping` waits for), unless the window's
  least-squares line rises by no more than twice its standard error (about a one-sided
  95% test): the highest of many noisy validations on a plateau creeps up by chance
  (a hundred aerial tiles, 86 validations of 12 images in the last 602 of 4004 steps:
  a best +0.008 above the one before, trend -0.003 ± 0.003; the demo on an AMD Zen 4,
  eight validations after a cosine schedule had run out: a best +0.009 above the one
  before, trend +0.015 ± 0.009, tilted up by one low value near the window's start:
  0.534, 0.513, 0.524, 0.525, 0.525, 0.534, 0.535, 0.536);
* a rising trend: a least-squares line through the window's values rises by more than
  ``min_delta`` and by more than twice its standard error over the window.

Both signs thus ask the same of the trend: large against the scatter of the values
around it, which luck on a plateau seldom is.

A run that early stopping ended has converged by definition: ``patience`` steps went by
without a better val mAP@0.5. A run that reached its cap converged only when neither
sign is there. The verdict, with the figures behind it, is one sentence
(`Convergence.verdict`), written to the run's ``convergence.json`` and its summary.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import pytorch_lightning as pl
from pytorch_lightning.callbacks import EarlyStopping
from pytorch_lightning.callbacks.early_stopping import EarlyStoppingReason

from yolo_slim.io.atomic import write_json_atomic

Status = Literal["converged", "improving", "unvalidated"]

SIGNIFICANT_SE = 2.0
"""A trend counts as rising when it rises by more than this many standard errors."""


@dataclass(frozen=True)
class EvalPoint:
    """One validation: the optimizer step it followed and what it measured.

    Attributes:
        step: optimizer steps done when it ran.
        epoch: epochs done (1 after the first).
        map50: val mAP@0.5.
        recall: val recall (at ``eval.score_threshold``), None when not logged.
        precision: val precision, None when not logged.
    """

    step: int
    epoch: int
    map50: float
    recall: float | None = None
    precision: float | None = None


@dataclass(frozen=True)
class Convergence:
    """The verdict on a run (module docstring).

    Attributes:
        status: ``converged``, ``improving`` (still improving at its end) or
            ``unvalidated`` (no validation ran).
        stopped_early: early stopping ended the run.
        best_map50: the best val mAP@0.5, at ``best_step`` (``best_epoch``).
        last_map50: the last val mAP@0.5, at ``last_step``.
        window_steps: the steps the signs look back over.
        recent_gain: best of the window minus best before it (None: nothing before it).
        trend_rise: the fitted line's rise over the window (None: fewer than 3 values).
        trend_se: its standard error.
        min_delta: what a gain must exceed.
        evaluations: validations recorded.
        verdict: one sentence saying which and why.
    """

    status: Status
    stopped_early: bool
    best_map50: float | None
    best_step: int | None
    best_epoch: int | None
    last_map50: float | None
    last_step: int | None
    window_steps: int
    recent_gain: float | None
    trend_rise: float | None
    trend_se: float | None
    min_delta: float
    evaluations: int
    verdict: str

    @property
    def converged(self) -> bool:
        return self.status == "converged"

    @property
    def still_improving(self) -> bool:
        return self.status == "improving"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "converged": self.converged, "still_improving": self.still_improving}


def linear_trend(points: Sequence[EvalPoint]) -> tuple[float, float] | None:
    """Least-squares slope of mAP@0.5 per step and its standard error (None: < 3 points or one step)."""
    n = len(points)
    if n < 3:
        return None
    xs = [float(p.step) for p in points]
    ys = [p.map50 for p in points]
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0.0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    residual = sum((y - my - slope * (x - mx)) ** 2 for x, y in zip(xs, ys))
    return slope, math.sqrt(residual / (n - 2) / sxx)


def _early_stopping_reference(points: Sequence[EvalPoint], min_delta: float, watch_from_epoch: int = 1) -> EvalPoint:
    """The value Lightning's `EarlyStopping` counts its patience from: the last one that beat
    the reference before it by more than `min_delta` (a later, smaller gain does not reset it),
    among the validations it watched (from epoch `watch_from_epoch`)."""
    watched = [p for p in points if p.epoch >= watch_from_epoch] or list(points)
    ref = watched[0]
    for p in watched[1:]:
        if p.map50 - min_delta > ref.map50:
            ref = p
    return ref


def assess_convergence(
    points: Sequence[EvalPoint], *, window_steps: int, min_delta: float = 0.0, stopped_early: bool = False,
    watch_from_epoch: int = 1,
) -> Convergence:
    """The verdict on a run from its validations (module docstring).

    Args:
        points: the validations in step order.
        window_steps: how far back the signs look, in optimizer steps (>= 1).
        min_delta: how much a gain must exceed to count (mAP@0.5, 0.01 = 1 point).
        stopped_early: whether early stopping ended the run.
        watch_from_epoch: the first epoch whose validation early stopping watched.
    """
    window_steps = max(int(window_steps), 1)
    empty = dict(best_map50=None, best_step=None, best_epoch=None, last_map50=None, last_step=None,
                 recent_gain=None, trend_rise=None, trend_se=None)
    if not points:
        return Convergence("unvalidated", stopped_early, window_steps=window_steps, min_delta=min_delta, evaluations=0,
                           verdict="not validated: no val mAP@0.5 was measured, so nothing says whether it learned", **empty)
    best = max(points, key=lambda p: p.map50)  # the first of equal values
    last = points[-1]
    start = last.step - window_steps
    recent = [p for p in points if p.step > start]
    earlier = [p for p in points if p.step <= start]
    gain = max(p.map50 for p in recent) - max(p.map50 for p in earlier) if earlier else None
    fit = linear_trend(recent)
    rise, rise_se = (fit[0] * window_steps, fit[1] * window_steps) if fit else (None, None)
    trend = "" if rise is None else f"; trend {rise:+.3f} ± {rise_se:.3f} over the last {window_steps} steps"
    best_at = f"{best.map50:.3f} at step {best.step} (epoch {best.epoch})"
    if stopped_early:
        status: Status = "converged"
        ref = _early_stopping_reference(points, min_delta, watch_from_epoch)
        since = f"the last val mAP@0.5 better by more than {min_delta:g} than the one before it was {ref.map50:.3f} at step {ref.step}"
        verdict = (f"converged: early stop at step {last.step} (epoch {last.epoch}), {last.step - ref.step} steps after {since}"
                   + ("" if ref is best else f"; best {best_at}"))
    elif gain is not None and gain > min_delta and rise is not None and rise <= SIGNIFICANT_SE * rise_se:
        status = "converged"
        verdict = (f"converged: the best val mAP@0.5, {best_at}, is {gain:+.3f} above the best before the last "
                   f"{window_steps} steps, but the trend over them rises by no more than twice its standard error (the "
                   f"highest of {len(recent)} noisy validations on a plateau){trend}")
    elif gain is not None and gain > min_delta:
        status = "improving"
        verdict = (f"still improving: the best val mAP@0.5, {best_at}, is {gain:+.3f} above the best before the last "
                   f"{window_steps} steps{trend}")
    elif rise is not None and rise > min_delta and rise > SIGNIFICANT_SE * rise_se:
        status = "improving"
        verdict = (f"still improving: val mAP@0.5 rose {rise:+.3f} ± {rise_se:.3f} over the last {window_steps} steps "
                   f"(a least-squares line through {len(recent)} validations); best {best_at}")
    elif gain is None and rise is None:
        status = "improving"
        verdict = (f"still improving, as far as {len(points)} validation{'s' * (len(points) != 1)} can tell "
                   f"(too few to see a plateau); best {best_at}")
    else:
        status = "converged"
        added = f"added {gain:+.3f}" if gain is not None else "set no trend"
        verdict = (f"converged: the last {window_steps} steps {added} to the best val mAP@0.5 (at most {min_delta:g}); "
                   f"best {best_at}{trend}")
    return Convergence(status, stopped_early, best.map50, best.step, best.epoch, last.map50, last.step, window_steps,
                       gain, rise, rise_se, min_delta, len(points), verdict)


def _metric(metrics: dict[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    return None if value is None else float(value)


class EarlyStoppingFrom(EarlyStopping):
    """Lightning's `EarlyStopping` that watches only the validations from epoch `first_epoch` on.

    Its best value and patience start there: a plateau while a cosine learning rate is
    still high (the budget's ``early_stop_from``) neither ends the run nor uses up the
    patience. ``first_epoch=1`` is Lightning's own behaviour. (Lightning's ``min_epochs``
    is not the same: a patience run out before it still stops the run there, even after
    the metric has risen again.)
    """

    def __init__(self, *args: Any, first_epoch: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.first_epoch = int(first_epoch)

    def _watching(self, trainer: pl.Trainer) -> bool:
        return trainer.current_epoch + 1 >= self.first_epoch

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._watching(trainer):
            super().on_validation_end(trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._watching(trainer):
            super().on_train_epoch_end(trainer, pl_module)


class ConvergenceMonitor(pl.Callback):
    """Record val mAP@0.5 after every validation; at fit end, the verdict (`result`) and ``convergence.json``.

    Args:
        window_steps: how far back the verdict looks (the early-stopping patience, or
            a quarter of the run without one).
        min_delta: what a gain must exceed.
        path: where to write the verdict and the history (None: nowhere).
        monitor: the logged metric (``val/mAP50``).
        watch_from_epoch: the first epoch whose validation the run's early stopping watched.
    """

    def __init__(self, window_steps: int, min_delta: float = 0.0, path: str | Path | None = None, monitor: str = "val/mAP50",
                 watch_from_epoch: int = 1) -> None:
        self.window_steps = int(window_steps)
        self.watch_from_epoch = int(watch_from_epoch)
        self.min_delta = float(min_delta)
        self.path = Path(path) if path is not None else None
        self.monitor = monitor
        self.history: list[EvalPoint] = []
        self.result: Convergence | None = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        m = trainer.callback_metrics
        value = _metric(m, self.monitor)
        if value is None:
            return
        point = EvalPoint(int(trainer.global_step), int(trainer.current_epoch) + 1, value,
                          _metric(m, "val/recall"), _metric(m, "val/precision"))
        if self.history and self.history[-1].step == point.step:
            self.history[-1] = point  # validated twice at one step (a resumed epoch end)
        else:
            self.history.append(point)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        stopped = any(isinstance(cb, EarlyStopping) and cb.stopping_reason == EarlyStoppingReason.PATIENCE_EXHAUSTED
                      for cb in trainer.callbacks)
        self.result = assess_convergence(self.history, window_steps=self.window_steps, min_delta=self.min_delta,
                                         stopped_early=stopped, watch_from_epoch=self.watch_from_epoch)
        if self.path is not None and trainer.is_global_zero:
            body = {**self.result.to_dict(), "history": [asdict(p) for p in self.history]}
            write_json_atomic(self.path, body)

    def state_dict(self) -> dict[str, Any]:
        return {"history": [asdict(p) for p in self.history]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = [EvalPoint(**p) for p in state_dict.get("history", [])]


__all__ = ["Convergence", "ConvergenceMonitor", "EarlyStoppingFrom", "EvalPoint", "assess_convergence", "linear_trend"]
