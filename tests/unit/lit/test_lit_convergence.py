"""The still-improving rule on scripted val mAP@0.5 histories, the trend against an independent
least-squares fit, and Lightning's EarlyStopping wired from a budget on a module whose
validation reports a scripted history."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from yolo_slim.lit.budget import TrainingData, plan_budget
from yolo_slim.lit.convergence import ConvergenceMonitor, EvalPoint, assess_convergence, linear_trend
from yolo_slim.train_task import budget_callbacks


def _points(values, every: int = 7) -> list[EvalPoint]:
    return [EvalPoint(step=(i + 1) * every, epoch=i + 1, map50=float(v)) for i, v in enumerate(values)]


def _noisy(base, seed: int = 0, sd: float = 0.01) -> np.ndarray:
    return np.asarray(base) + np.random.default_rng(seed).normal(0.0, sd, len(base))


def test_linear_trend_matches_scipys_regression() -> None:
    stats = pytest.importorskip("scipy.stats")
    pts = _points(_noisy(np.linspace(0.1, 0.3, 20), seed=3))
    slope, se = linear_trend(pts)
    ref = stats.linregress([p.step for p in pts], [p.map50 for p in pts])
    assert slope == pytest.approx(ref.slope, rel=1e-9) and se == pytest.approx(ref.stderr, rel=1e-9)
    assert linear_trend(pts[:2]) is None


def test_a_noisy_plateau_has_converged() -> None:
    rise = np.minimum(np.linspace(0.0, 1.2, 120), 0.3)  # learns in 30 validations, then 90 on a plateau
    result = assess_convergence(_points(_noisy(rise, sd=0.01)), window_steps=300, min_delta=0.005)
    assert result.converged and not result.still_improving
    assert result.verdict.startswith("converged: the last 300 steps added")
    assert abs(result.trend_rise) < 2 * result.trend_se + 0.005


def test_a_new_best_on_a_flat_window_is_the_noise_of_a_plateau() -> None:
    earlier = [0.74, 0.75] * 30  # a plateau at 0.745 +- 0.005
    window = [0.745, 0.755] * 10 + [0.762] + [0.755, 0.745] * 10  # the same plateau with one high value in its middle
    result = assess_convergence(_points(earlier + window), window_steps=7 * len(window), min_delta=0.005)
    assert result.recent_gain == pytest.approx(0.012) and abs(result.trend_rise) < 1e-3
    assert result.converged and "rises by no more than twice its standard error" in result.verdict
    # the high value late in the window tilts the line up, by less than its standard error: still a plateau
    # (a rule of "any rise" would flip this verdict on a coin toss of the noise)
    tilted = [0.745, 0.755] * 15 + [0.762] + [0.755, 0.745] * 5
    late = assess_convergence(_points(earlier + tilted), window_steps=7 * len(tilted), min_delta=0.005)
    assert late.recent_gain == pytest.approx(0.012) and 0 < late.trend_rise < late.trend_se
    assert late.converged
    # a window that climbed half a step of the plateau's scatter before its best: rising by more than 3 standard errors
    climbed = [0.740, 0.750] * 10 + [0.745, 0.755] * 10 + [0.762]
    up = assess_convergence(_points(earlier + climbed), window_steps=7 * len(climbed), min_delta=0.005)
    assert up.trend_rise > 3 * up.trend_se and up.still_improving
    rising = earlier + list(np.linspace(0.745, 0.762, len(window)))  # the same new best, reached by a steady climb
    assert assess_convergence(_points(rising), window_steps=7 * len(window), min_delta=0.005).still_improving


def test_the_end_of_a_cosine_schedule_with_one_low_value_has_converged() -> None:
    # the demo baseline on an AMD Zen 4 (measured, 3000 steps, validated every 50): its best of
    # the last 400 steps is +0.009 above the one before them, and the window's first value is low
    head = [0.4843, 0.5157, 0.4916, 0.4964, 0.5196, 0.4865, 0.5093, 0.4919, 0.5098, 0.5270, 0.5173, 0.5202, 0.5239]
    tail = [0.5339, 0.5130, 0.5237, 0.5252, 0.5254, 0.5338, 0.5345, 0.5362]
    pts = [EvalPoint(step=1999 + 50 * i, epoch=40 + i, map50=v) for i, v in enumerate(head + tail)]
    result = assess_convergence(pts, window_steps=400, min_delta=0.005)
    assert result.recent_gain == pytest.approx(0.0092) and result.trend_se < result.trend_rise < 2 * result.trend_se
    assert result.converged and "twice its standard error" in result.verdict
    # the same window climbing steadily to the same best is still improving
    climbing = [EvalPoint(step=p.step, epoch=p.epoch, map50=v)
                for p, v in zip(pts, head + list(np.linspace(0.505, 0.5362, len(tail))))]
    assert assess_convergence(climbing, window_steps=400, min_delta=0.005).still_improving


def test_a_rising_run_is_still_improving() -> None:
    steady = np.linspace(0.05, 0.35, 60)  # still climbing at the end of its budget
    result = assess_convergence(_points(_noisy(steady, seed=1)), window_steps=140, min_delta=0.005)
    assert result.still_improving
    assert "still improving" in result.verdict and f"step {result.best_step}" in result.verdict
    assert result.recent_gain > 0.005


def test_a_late_trend_without_a_new_best_is_still_improving() -> None:
    # dropped after an early spike, now climbing back steadily but still below it
    values = [0.2, 0.32] + list(np.linspace(0.1, 0.3, 40))
    result = assess_convergence(_points(values), window_steps=140, min_delta=0.005)
    assert result.recent_gain < 0 and result.trend_rise > 2 * result.trend_se
    assert result.still_improving and result.verdict.startswith("still improving: val mAP@0.5 rose")


def test_early_stopped_runs_converged_and_short_runs_cannot_tell() -> None:
    stopped = assess_convergence(_points([0.1, 0.2, 0.25, 0.24, 0.23]), window_steps=21, stopped_early=True)
    assert stopped.converged and stopped.verdict.startswith("converged: early stop at step 35 (epoch 5)")
    short = assess_convergence(_points([0.01, 0.02]), window_steps=21)
    assert short.still_improving and "too few to see a plateau" in short.verdict
    none = assess_convergence([], window_steps=21)
    assert none.status == "unvalidated" and not none.converged and not none.still_improving


class _Scripted(pl.LightningModule):
    """A one-parameter module whose validation logs a scripted val/mAP50 per epoch."""

    def __init__(self, values) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.values = list(values)

    def training_step(self, batch, batch_idx):
        return (self.w * batch[0]).sum()

    def validation_step(self, batch, batch_idx):
        pass

    def on_validation_epoch_end(self):
        value = self.values[min(self.current_epoch, len(self.values) - 1)]
        self.log_dict({"val/mAP50": torch.tensor(value), "val/recall": torch.tensor(value)})

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _fit(tmp_path: Path, values, settings) -> tuple[pl.Trainer, ConvergenceMonitor, dict]:
    data = TrainingData(images=16, boxes=16, classes=1, batch_size=4)  # 4 steps an epoch
    budget = plan_budget(settings, data)
    callbacks = budget_callbacks(budget, tmp_path)
    loader = DataLoader(TensorDataset(torch.ones(16, 1)), batch_size=4)
    trainer = pl.Trainer(max_epochs=budget.epochs, callbacks=callbacks, accelerator="cpu", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path, num_sanity_val_steps=0)
    trainer.fit(_Scripted(values), loader, loader)
    monitor = next(cb for cb in callbacks if isinstance(cb, ConvergenceMonitor))
    return trainer, monitor, json.loads((tmp_path / "convergence.json").read_text())


def test_early_stopping_follows_the_budgets_patience(tmp_path: Path) -> None:
    values = [0.1, 0.2, 0.3, 0.31, 0.302, 0.305, 0.29, 0.3, 0.304, 0.3, 0.3, 0.3, 0.3]
    # patience 8 steps = 2 epochs of 4 steps: best (0.31, epoch 4) + 0.005 is never beaten -> stop after epoch 6
    trainer, monitor, written = _fit(tmp_path, values, {"steps": 200, "warmup_steps": 0, "patience_steps": 8, "min_delta": 0.005})
    assert trainer.current_epoch == 6 and trainer.global_step == 24
    assert monitor.result.stopped_early and monitor.result.converged
    assert written["status"] == "converged" and len(written["history"]) == 6 and written["best_step"] == 16


def test_the_verdict_counts_the_patience_from_where_early_stopping_does(tmp_path: Path) -> None:
    """Gains below min_delta set a new best but do not reset Lightning's patience: the
    verdict names the value it counted from (0.300 at step 12) and the best apart."""
    values = [0.1, 0.2, 0.3, 0.303, 0.304, 0.3, 0.3]
    trainer, monitor, _ = _fit(tmp_path, values, {"steps": 200, "warmup_steps": 0, "patience_steps": 8, "min_delta": 0.005})
    assert trainer.global_step == 20 and monitor.result.stopped_early  # Lightning stopped 8 steps after step 12
    verdict = monitor.result.verdict
    assert "8 steps after the last val mAP@0.5 better by more than 0.005 than the one before it was 0.300 at step 12" in verdict
    assert verdict.endswith("best 0.304 at step 20 (epoch 5)")


def test_early_stopping_watches_from_early_stop_from_of_the_budget(tmp_path: Path) -> None:
    """The plateau above stops Lightning after epoch 6. With early_stop_from 0.5 of a
    15-epoch budget, early stopping watches from epoch 9: its best and patience start
    there, and a rise in epoch 10 starts the patience again."""
    settings = {"steps": 60, "warmup_steps": 0, "patience_steps": 8, "min_delta": 0.005, "early_stop_from": 0.5}
    budget = plan_budget(settings, TrainingData(images=16, boxes=16, classes=1, batch_size=4))
    assert budget.watch_from_epoch == 9 and "watched from step 32" in budget.describe()
    values = [0.1, 0.2, 0.3, 0.31, 0.302, 0.305, 0.29, 0.3] + [0.3] * 7
    trainer, monitor, _ = _fit(tmp_path, values, settings)
    assert trainer.global_step == 44 and monitor.result.stopped_early  # watched epochs 9, 10, 11: stop after 11
    assert "8 steps after the last val mAP@0.5 better by more than 0.005 than the one before it was 0.300 at step 36" in monitor.result.verdict
    values[9] = 0.4
    trainer, monitor, _ = _fit(tmp_path / "again", values, settings)
    assert trainer.global_step == 48 and monitor.result.stopped_early
    assert "than the one before it was 0.400 at step 40" in monitor.result.verdict


def test_a_run_that_ends_at_its_cap_while_rising_says_so(tmp_path: Path) -> None:
    values = [0.05 * (i + 1) for i in range(10)]
    trainer, monitor, written = _fit(tmp_path, values, {"steps": 40, "warmup_steps": 0, "patience_steps": 8, "min_delta": 0.005})
    assert trainer.global_step == 40 and not monitor.result.stopped_early
    assert monitor.result.still_improving and written["still_improving"] is True
    assert math.isclose(written["best_map50"], 0.5, rel_tol=1e-6)
