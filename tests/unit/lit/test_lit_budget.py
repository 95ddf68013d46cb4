"""Budgets in optimizer steps: the epoch arithmetic against Lightning's own count, the auto rules,
the demo's recipe, and every bad value as one line naming the key."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from yolo_slim.errors import ConfigError
from yolo_slim.lit.budget import BudgetRule, BudgetSpec, TrainingData, plan_budget


class _Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        return (self.w * batch[0]).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.parametrize(("images", "batch", "accumulate"), [(100, 16, 1), (8, 4, 4), (250, 16, 4), (17, 16, 3), (64, 8, 8)])
def test_steps_per_epoch_is_the_steps_lightning_takes(tmp_path, images: int, batch: int, accumulate: int) -> None:
    """The optimizer steps Lightning actually takes in 3 epochs are the oracle for the epoch arithmetic."""
    data = TrainingData(images=images, boxes=images, classes=1, batch_size=batch, accumulate=accumulate)
    trainer = pl.Trainer(max_epochs=3, accumulate_grad_batches=accumulate, accelerator="cpu", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path)
    trainer.fit(_Tiny(), DataLoader(TensorDataset(torch.ones(images, 1)), batch_size=batch))
    assert trainer.global_step == 3 * data.steps_per_epoch


def test_the_demo_keeps_its_measured_recipe_on_the_demo_data() -> None:
    """800 images, batch 16, 12 epochs = 600 steps, one warm-up epoch, no early stop."""
    settings = {"steps": "auto", "warmup_steps": "auto", "patience_steps": "auto",
                "demo_data": {"steps": 600, "warmup_steps": 50, "patience_steps": None}}
    data = TrainingData(images=800, boxes=2800, classes=2, batch_size=16)
    demo = plan_budget(settings, data, demo_data=True)
    assert (demo.steps, demo.epochs, demo.warmup_steps, demo.patience_steps) == (600, 12, 50, None)
    assert set(demo.origin.values()) == {"demo_data"}
    other = plan_budget(settings, data, demo_data=False)  # the same images as a user's set: the rule
    assert other.origin == {"steps": "auto", "warmup_steps": "auto", "patience_steps": "auto"}
    assert other.steps == 4000 and other.patience_steps is not None


def test_auto_follows_the_data_set_size() -> None:
    rule = {"min_steps": 2000, "epochs": 30, "warmup_min_steps": 100, "warmup_epochs": 3, "patience_min_steps": 300, "patience_epochs": 10}
    small = plan_budget({"rule": rule}, TrainingData(images=100, boxes=2300, classes=1, batch_size=16))
    # 7 steps an epoch: at least 2000 steps, rounded up to 286 whole epochs; patience 300 steps -> 43 epochs
    assert (small.steps, small.epochs, small.warmup_steps, small.patience_steps, small.patience_checks) == (2002, 286, 100, 301, 43)
    medium = plan_budget({"rule": rule}, TrainingData(images=5000, boxes=5000, classes=3, batch_size=16))
    # 313 steps an epoch: 30 epochs, warm-up 3 epochs, patience 10 epochs
    assert (medium.steps, medium.epochs, medium.warmup_steps, medium.patience_checks) == (9390, 30, 939, 10)
    capped = plan_budget({"rule": {**rule, "max_steps": 5000}}, TrainingData(images=5000, boxes=5000, classes=3, batch_size=16))
    assert capped.steps == 5008 and capped.epochs == 16  # at most 5000, then whole epochs
    assert "at most 5000" in capped.describe()


def test_darknets_rule_for_max_batches() -> None:
    """classes x 2000 iterations of 64 images, at least 6000, at least one per training image."""
    rule = {"min_steps": 6000, "steps_per_class": 2000, "epochs": 64}
    few = plan_budget({"rule": rule}, TrainingData(images=640, boxes=640, classes=2, batch_size=16, accumulate=4))
    assert few.data.images_per_step == 64 and few.steps == 6000
    classes = plan_budget({"rule": rule}, TrainingData(images=640, boxes=640, classes=5, batch_size=16, accumulate=4))
    assert classes.steps == 10000
    many = plan_budget({"rule": rule}, TrainingData(images=50_000, boxes=50_000, classes=3, batch_size=16, accumulate=4))
    assert many.data.steps_per_epoch == 782 and many.steps == 64 * 782


def test_given_numbers_win_and_max_epochs_caps() -> None:
    data = TrainingData(images=800, boxes=800, classes=2, batch_size=16)
    settings = {"steps": 900, "warmup_steps": 0, "patience_steps": None, "demo_data": {"steps": 600, "warmup_steps": 50}}
    given = plan_budget(settings, data, demo_data=True)
    assert (given.steps, given.epochs, given.warmup_steps, given.patience_steps) == (900, 18, 0, None)
    assert given.origin == {"steps": "given", "warmup_steps": "given", "patience_steps": "given"}
    capped = plan_budget(settings, data, max_epochs=2)
    assert (capped.steps, capped.epochs) == (100, 2) and "trainer.max_epochs=2 stops it sooner" in capped.describe()
    assert plan_budget({"steps": 900, "warmup_steps": 5000}, data).warmup_steps == 900  # never past the end


def test_patience_counts_whole_validation_intervals() -> None:
    data = TrainingData(images=100, boxes=100, classes=1, batch_size=16)
    every_2 = plan_budget({"steps": 700, "patience_steps": 30}, data, val_every=2)
    assert (every_2.patience_checks, every_2.patience_steps) == (3, 42)


def test_describe_says_what_and_why() -> None:
    line = plan_budget({}, TrainingData(images=100, boxes=2279, classes=1, batch_size=16)).describe("baseline")
    assert line.startswith("baseline: up to 4004 optimizer steps (= 572 epochs of 100 images at 16 images per step, 7 steps an epoch), "
                           "warm-up 100 steps, early stop after 602 steps (86 epochs) without a val mAP@0.5 better by more than 0")
    assert "auto: the largest of 4000 steps and 30 epochs" in line


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"steps": 0}, r"^budget.steps: expected an integer >= 1 or auto, got 0$"),
        ({"steps": "many"}, r"^budget.steps: expected an integer >= 1 or auto, got 'many'$"),
        ({"steps": 10.5}, r"^budget.steps: expected an integer >= 1 or auto, got 10.5$"),
        ({"warmup_steps": -1}, r"^budget.warmup_steps: expected an integer >= 0 or auto, got -1$"),
        ({"patience_steps": 0}, r"^budget.patience_steps: expected an integer >= 1 or auto or null, got 0$"),
        ({"min_delta": -0.1}, r"^budget.min_delta: expected a number >= 0, got -0.1$"),
        ({"epochs": 3}, r"^budget: unknown key\(s\) \['epochs'\]"),
        ({"rule": {"epoch": 3}}, r"^budget.rule: unknown key\(s\) \['epoch'\]"),
        ({"rule": {"epochs": "x"}}, r"^budget.rule.epochs: expected a number >= 0, got 'x'$"),
        ({"rule": {"max_steps": 0}}, r"^budget.rule.max_steps: expected an integer >= 1 or null, got 0$"),
        ({"demo_data": {"epochs": 12}}, r"^budget.demo_data: expected null or a mapping of \['steps', 'warmup_steps', 'patience_steps'\]"),
        ({"demo_data": {"steps": -3}}, r"^budget.demo_data.steps: expected an integer >= 1 or auto, got -3$"),
    ],
)
def test_bad_values_are_one_line_naming_the_key(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BudgetSpec.from_config(settings)


def test_bad_data_and_trainer_values() -> None:
    with pytest.raises(ConfigError, match=r"^training data: images must be >= 1, got 0$"):
        TrainingData(images=0, boxes=0, classes=1, batch_size=16)
    data = TrainingData(images=10, boxes=10, classes=1, batch_size=2)
    with pytest.raises(ConfigError, match=r"^trainer.max_epochs: expected an integer >= 1, got 0$"):
        BudgetSpec().resolve(data, max_epochs=0)
    with pytest.raises(ConfigError, match=r"^trainer.check_val_every_n_epoch: expected an integer >= 1, got 0$"):
        BudgetSpec().resolve(data, val_every=0)
    assert BudgetRule.from_mapping(None) == BudgetRule()
