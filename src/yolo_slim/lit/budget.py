"""Training budgets in optimizer steps: how long a run may go, its warm-up and its early stop.

A budget is counted in optimizer steps. One step is one update of the weights: the
gradients of ``loader.batch_size x accumulation x devices`` images (the accumulation
makes that ``model.nominal_batch_size``, darknet's 64 for the zoo models). Epochs follow
from the data set's size::

    steps per epoch = ceil(ceil(ceil(images / devices) / batch) / accumulation)

(Lightning's own count: every device sees ``ceil(images / devices)`` images, and an
epoch's last, incomplete accumulation still steps.) A budget is rounded up to whole
epochs, so every run ends with a validation.

Each of the three values is a number or ``auto``; ``auto`` follows the data set through
`BudgetRule` (the experiment states the rule's parameters):

* the cap, ``steps``: the largest of ``min_steps``, ``steps_per_class x classes`` and
  ``epochs x steps per epoch``, at most ``max_steps``. A small data set gets enough
  updates to learn from scratch (``min_steps``: a hundred images at 16 per step give 7
  steps an epoch, so a budget in epochs would stop a from-scratch model long before it
  has learned), a large one a number of passes over its images (``epochs``); darknet's
  own rule for ``max_batches`` is ``min_steps=6000, steps_per_class=2000, epochs=64``
  (classes x 2000 iterations, at least 6000 and at least one per training image);
* ``warmup_steps``: the larger of ``warmup_min_steps`` and ``warmup_epochs`` epochs;
* ``patience_steps`` (Lightning's `EarlyStopping` on val mAP@0.5): the larger of
  ``patience_min_steps`` and ``patience_epochs`` epochs. Small sets validate on few
  objects, so their val mAP@0.5 is noisy from one epoch to the next; the floor in steps
  keeps such a run from stopping on a lucky early spike.

An experiment tuned on the built-in demo data states its measured recipe for that set
in ``demo_data``; it replaces the ``auto`` values (not the numbers a user gives) when
the data is the built-in demo preset, so the demo keeps the budget its published
figures were measured with.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from yolo_slim.errors import ConfigError

AUTO = "auto"
KEYS = ("steps", "warmup_steps", "patience_steps")
"""The budget values an experiment states (each a number or ``auto``)."""


def _integer(value: Any, where: str, low: int, *, auto: bool = True, none: bool = False) -> int | str | None:
    """`value` checked as an integer >= `low` (or ``auto`` / None where allowed)."""
    if value is None and none:
        return None
    if auto and isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        also = (" or auto" if auto else "") + (" or null" if none else "")
        raise ConfigError(f"{where}: expected an integer >= {low}{also}, got {value!r}")
    return int(value)


def _number(value: Any, where: str, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < low:
        raise ConfigError(f"{where}: expected a number >= {low:g}, got {value!r}")
    return float(value)


def _fraction(value: Any, where: str) -> float:
    number = _number(value, where)
    if number > 1:
        raise ConfigError(f"{where}: expected a fraction of the budget between 0 and 1, got {value!r}")
    return number


@dataclass(frozen=True)
class BudgetRule:
    """How the ``auto`` values of a budget follow the data set (module docstring).

    Attributes:
        min_steps: the cap is at least this many steps.
        steps_per_class: ... and at least this many steps per class.
        epochs: ... and at least this many epochs.
        max_steps: the cap is at most this many steps (None: no limit).
        warmup_min_steps: the warm-up is at least this many steps.
        warmup_epochs: ... and at least this many epochs.
        patience_min_steps: early stopping waits at least this many steps for a better val mAP@0.5.
        patience_epochs: ... and at least this many epochs.
    """

    min_steps: int = 4000
    steps_per_class: int = 0
    epochs: float = 30.0
    max_steps: int | None = None
    warmup_min_steps: int = 100
    warmup_epochs: float = 3.0
    patience_min_steps: int = 600
    patience_epochs: float = 10.0

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None, where: str = "budget.rule") -> BudgetRule:
        """The rule from a config block (missing keys take the defaults above).

        Raises:
            ConfigError: an unknown key or a value out of range, naming it.
        """
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
        out: dict[str, Any] = {}
        for key, value in values.items():
            name = f"{where}.{key}"
            if key == "max_steps":
                out[key] = _integer(value, name, 1, auto=False, none=True)
            elif key in ("epochs", "warmup_epochs", "patience_epochs"):
                out[key] = _number(value, name)
            else:
                out[key] = _integer(value, name, 0, auto=False)
        return cls(**out)


@dataclass(frozen=True)
class TrainingData:
    """What a budget's epochs follow: the training set and how it is batched.

    Attributes:
        images: training images used (after unreadable ones were dropped).
        boxes: training boxes.
        classes: number of classes.
        batch_size: images per device and batch (``loader.batch_size``).
        accumulate: batches accumulated into one optimizer step.
        world_size: devices (processes) training together.
    """

    images: int
    boxes: int
    classes: int
    batch_size: int
    accumulate: int = 1
    world_size: int = 1

    def __post_init__(self) -> None:
        for name in ("images", "batch_size", "accumulate", "world_size", "classes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"training data: {name} must be >= 1, got {getattr(self, name)}")

    @property
    def images_per_step(self) -> int:
        """Images whose gradients one optimizer step applies."""
        return self.batch_size * self.accumulate * self.world_size

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps in one pass over the training images (Lightning's count)."""
        per_device = math.ceil(self.images / self.world_size)
        return math.ceil(math.ceil(per_device / self.batch_size) / self.accumulate)

    @property
    def boxes_per_image(self) -> float:
        return self.boxes / self.images


@dataclass(frozen=True)
class Budget:
    """A run's budget, resolved for its data set.

    Attributes:
        steps: optimizer steps the run may take (whole epochs).
        epochs: ``steps / steps_per_epoch``.
        warmup_steps: steps of linear learning-rate warm-up.
        patience_steps: early stop after this many steps without a better val mAP@0.5
            (whole validation intervals); None: the run always goes to ``steps``.
        patience_checks: the same in validations (Lightning's `EarlyStopping` patience).
        min_delta: how much better a val mAP@0.5 must be to count as better.
        watch_from_epoch: the first epoch whose validation early stopping sees (1: all;
            ``early_stop_from`` of the budget).
        data: the training data the epochs follow.
        origin: per value, where it came from: ``given``, ``auto`` or ``demo_data``.
        notes: the reasons, one phrase per value (printed by `describe`).
        val_every: validations run every this many epochs.
    """

    steps: int
    epochs: int
    warmup_steps: int
    patience_steps: int | None
    patience_checks: int | None
    min_delta: float
    data: TrainingData
    origin: Mapping[str, str]
    notes: tuple[str, ...] = ()
    val_every: int = 1
    watch_from_epoch: int = 1

    @property
    def verdict_window(self) -> int:
        """The steps the convergence verdict looks back over: the patience, else the last
        quarter of the run; at least three validations."""
        interval = self.data.steps_per_epoch * self.val_every
        return max(self.patience_steps or self.steps // 4, 3 * interval)

    def describe(self, name: str = "training") -> str:
        """One line saying what the run may do and why.

        e.g. ``baseline: up to 2002 optimizer steps (= 286 epochs of 100 images at 16
        images per step), warm-up 100 steps, early stop after 301 steps (43 epochs)
        without a better val mAP@0.5; auto: ...``.
        """
        d = self.data
        spe = d.steps_per_epoch
        line = (f"{name}: up to {self.steps} optimizer steps (= {self.epochs} epoch{'s' * (self.epochs != 1)} of "
                f"{d.images} images at {d.images_per_step} images per step, {spe} step{'s' * (spe != 1)} an epoch), "
                f"warm-up {self.warmup_steps} steps, ")
        if self.patience_steps is None:
            line += "no early stop"
        else:
            epochs = self.patience_steps / spe
            line += (f"early stop after {self.patience_steps} steps ({epochs:.0f} epoch{'s' * (round(epochs) != 1)}) "
                     f"without a val mAP@0.5 better by more than {self.min_delta:g}")
            if self.watch_from_epoch > 1:
                line += f", watched from step {(self.watch_from_epoch - 1) * spe}"
        return line + (f" ({'; '.join(self.notes)})" if self.notes else "")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["data"] = {**asdict(self.data), "steps_per_epoch": self.data.steps_per_epoch,
                       "images_per_step": self.data.images_per_step}
        out["origin"] = dict(self.origin)
        out["notes"] = list(self.notes)
        return out


@dataclass(frozen=True)
class BudgetSpec:
    """A ``budget`` block, checked: what an experiment states, before the data is known.

    Attributes:
        steps: the cap in optimizer steps, or ``auto``.
        warmup_steps: warm-up steps, or ``auto``.
        patience_steps: early-stopping patience in steps, ``auto``, or None (no early stop).
        min_delta: how much better a val mAP@0.5 must be to count as better.
        early_stop_from: the fraction of the budget early stopping does not watch (0: it
            watches from the first validation; its patience then counts from there). A cosine learning rate is still
            high in the first half: a plateau there is not convergence (the demo, given
            3000 steps, stopped at step 900 on 0.343 where 2500 steps reached 0.542).
        rule: how ``auto`` follows the data.
        demo_data: values replacing ``auto`` on the built-in demo data.
    """

    steps: int | str = AUTO
    warmup_steps: int | str = AUTO
    patience_steps: int | str | None = AUTO
    min_delta: float = 0.0
    early_stop_from: float = 0.0
    rule: BudgetRule = BudgetRule()
    demo_data: Mapping[str, int | str | None] | None = None

    @classmethod
    def from_config(cls, settings: Mapping[str, Any]) -> BudgetSpec:
        """The spec of a ``budget`` block (missing keys take the defaults above).

        Raises:
            ConfigError: an unknown key or a value out of range, naming it.
        """
        known = {*KEYS, "min_delta", "early_stop_from", "rule", "demo_data"}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ConfigError(f"budget: unknown key(s) {unknown}; known: {sorted(known)}")
        demo = settings.get("demo_data")
        if demo is not None and (not isinstance(demo, Mapping) or set(demo) - set(KEYS)):
            raise ConfigError(f"budget.demo_data: expected null or a mapping of {list(KEYS)}, got {demo!r}")
        return cls(
            steps=_integer(settings.get("steps", AUTO), "budget.steps", 1),
            warmup_steps=_integer(settings.get("warmup_steps", AUTO), "budget.warmup_steps", 0),
            patience_steps=_integer(settings.get("patience_steps", AUTO), "budget.patience_steps", 1, none=True),
            min_delta=_number(settings.get("min_delta", 0.0), "budget.min_delta"),
            early_stop_from=_fraction(settings.get("early_stop_from", 0.0), "budget.early_stop_from"),
            rule=BudgetRule.from_mapping(settings.get("rule")),
            demo_data=None if demo is None else {
                "steps": _integer(demo.get("steps", AUTO), "budget.demo_data.steps", 1),
                "warmup_steps": _integer(demo.get("warmup_steps", AUTO), "budget.demo_data.warmup_steps", 0),
                "patience_steps": _integer(demo.get("patience_steps", AUTO), "budget.demo_data.patience_steps", 1, none=True),
            },
        )

    def resolve(self, data: TrainingData, *, demo_data: bool = False, max_epochs: int | None = None,
                val_every: int | None = 1) -> Budget:
        """The budget for a data set.

        Args:
            data: the training data.
            demo_data: whether the data is the built-in demo set (`demo_data` then
                replaces the ``auto`` values).
            max_epochs: Lightning's ``trainer.max_epochs`` when given: a further cap.
            val_every: validations run every this many epochs (None: every epoch).

        Returns:
            The budget, its steps rounded up to whole epochs.

        Raises:
            ConfigError: ``max_epochs`` or ``val_every`` out of range.
        """
        if max_epochs == -1:
            max_epochs = None
        if max_epochs is not None:
            max_epochs = _integer(max_epochs, "trainer.max_epochs", 1, auto=False)
        every = 1 if val_every is None else _integer(val_every, "trainer.check_val_every_n_epoch", 1, auto=False)
        rule, spe = self.rule, data.steps_per_epoch
        demo = self.demo_data if demo_data and self.demo_data else {}
        values: dict[str, Any] = {}
        origin: dict[str, str] = {}
        notes: list[str] = []
        for key in KEYS:
            value = getattr(self, key)
            if value == AUTO and demo.get(key, AUTO) != AUTO:
                values[key], origin[key] = demo[key], "demo_data"
            elif value == AUTO:
                values[key], origin[key] = None, AUTO
            else:
                values[key], origin[key] = value, "given"
        if "demo_data" in origin.values():
            notes.append("budget.demo_data: the experiment's measured recipe for the built-in demo data")

        if origin["steps"] == AUTO:
            cap = max(rule.min_steps, rule.steps_per_class * data.classes, math.ceil(rule.epochs * spe))
            what = f"{rule.min_steps} steps" + (f", {rule.steps_per_class} per class" if rule.steps_per_class else "")
            reason = f"auto: the largest of {what} and {rule.epochs:g} epochs"
            if rule.max_steps is not None and cap > rule.max_steps:
                cap = rule.max_steps
                reason += f", at most {rule.max_steps}"
            values["steps"] = cap
            notes.append(reason)
        epochs = max(1, math.ceil(int(values["steps"]) / spe))
        if max_epochs is not None and max_epochs < epochs:
            epochs = int(max_epochs)
            notes.append(f"trainer.max_epochs={max_epochs} stops it sooner")
        steps = epochs * spe

        if origin["warmup_steps"] == AUTO:
            values["warmup_steps"] = max(rule.warmup_min_steps, math.ceil(rule.warmup_epochs * spe))
            notes.append(f"warm-up auto: the more of {rule.warmup_min_steps} steps and {rule.warmup_epochs:g} epochs")
        warmup = min(int(values["warmup_steps"]), steps)

        if origin["patience_steps"] == AUTO:
            values["patience_steps"] = max(rule.patience_min_steps, math.ceil(rule.patience_epochs * spe))
            notes.append(f"patience auto: the more of {rule.patience_min_steps} steps and {rule.patience_epochs:g} epochs")
        patience_steps: int | None = None
        checks: int | None = None
        if values["patience_steps"] is not None:
            interval = spe * every
            checks = max(1, math.ceil(int(values["patience_steps"]) / interval))
            patience_steps = checks * interval
        watch_from = 1 + math.ceil(self.early_stop_from * epochs) if checks is not None and self.early_stop_from > 0 else 1
        return Budget(steps=steps, epochs=epochs, warmup_steps=warmup, patience_steps=patience_steps, patience_checks=checks,
                      min_delta=self.min_delta, data=data, origin=origin, notes=tuple(notes), val_every=int(every),
                      watch_from_epoch=min(watch_from, epochs))


def plan_budget(settings: Mapping[str, Any], data: TrainingData, *, demo_data: bool = False,
                max_epochs: int | None = None, val_every: int | None = 1) -> Budget:
    """`BudgetSpec.from_config(settings).resolve(data, ...)`: a ``budget`` block resolved for a data set."""
    return BudgetSpec.from_config(settings).resolve(data, demo_data=demo_data, max_epochs=max_epochs, val_every=val_every)


__all__ = ["AUTO", "Budget", "BudgetRule", "BudgetSpec", "TrainingData", "plan_budget"]
