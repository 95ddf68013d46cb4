"""`BNSparsity`: the L1 penalty on BatchNorm gamma as a Lightning callback.

Semantics of `s`: once per optimizer step, after gradients are accumulated, unscaled
(AMP) and reduced across DDP ranks, `s * sign(gamma)` is added to the gradient of
every chosen gamma. That is the gradient of `s * sum|gamma|` added to the loss of
each optimizer step, so `s` means the same at any batch size, accumulation or number
of devices. (The reference scripts added it once per mini-batch, so their effective
strength grew with the accumulation factor: 2s at batch 32, 4s at batch 16.)

Every epoch the callback logs what users look at to judge sparsity: TensorBoard
histograms of |gamma| (all chosen layers, and one per layer), the fraction of
|gamma| below 1e-2 and 1e-3, the mean |gamma|, the threshold ceiling (the largest
global percent that still leaves every layer a channel) and the BFLOPs predicted
after pruning at 0.5, 0.7 and 0.9. At the end it saves a PNG of the gamma
distribution before and after training.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.loggers import TensorBoardLogger

from yolo_slim.errors import ConfigError
from yolo_slim.sparsity.schedule import SparsitySchedule
from yolo_slim.sparsity.scope import SCOPES, select_bn_layers
from yolo_slim.sparsity.stats import gamma_vector, plot_gamma_histograms, sparsity_summary

log = logging.getLogger(__name__)


def _find_darknet(pl_module: LightningModule):
    model = getattr(pl_module, "model", None)
    if model is None or not hasattr(model, "conv_blocks"):
        raise ConfigError("BNSparsity needs a LightningModule with a `model` attribute holding a yolo_slim Darknet")
    return model


class BNSparsity(Callback):
    """L1 penalty on BatchNorm gamma, added once per optimizer step.

    Args:
        s: base strength (the reference recipe uses 1e-3; drop to 1e-4 if mAP collapses
            in the first epochs).
        scope: `prunable` (the layers the channel pruner can cut, from the dependency
            graph), `all` (every BN layer) or `prunable+shortcut` (also the layers tied
            together by residual connections, which layer pruning ranks).
        ignore: darknet layer ids to leave alone whatever the scope.
        schedule: a `SparsitySchedule` or its fields as a dict.
        log_every_n_epochs: histogram and scalar logging period.
        predict_percents: global percents whose post-pruning BFLOPs are logged.
        plot_path: where to save the before/after gamma PNG (default: the trainer's
            log dir, `gamma_hist.png`).
        reference_steps: the optimizer steps `s` was chosen for. A run of another
            length uses ``s * reference_steps / steps`` (its
            ``trainer.estimated_stepping_batches``), so every gamma gets the same total
            push ``s * steps`` towards zero however the budget turned out (with SGD
            the shrink of an unimportant gamma is lr times that sum); None: `s` as given.
    """

    def __init__(
        self,
        s: float = 1e-3,
        scope: str = "prunable",
        ignore: Sequence[int] = (),
        schedule: SparsitySchedule | dict[str, Any] | None = None,
        log_every_n_epochs: int = 1,
        predict_percents: Sequence[float] = (0.5, 0.7, 0.9),
        plot_path: str | None = None,
        reference_steps: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(s, (int, float)) or s < 0:
            raise ConfigError(f"BNSparsity s={s!r} must be a number >= 0")
        if scope not in SCOPES:
            raise ConfigError(f"BNSparsity scope={scope!r} is not supported; expected one of {', '.join(SCOPES)}")
        if log_every_n_epochs < 1:
            raise ConfigError(f"BNSparsity log_every_n_epochs={log_every_n_epochs} must be >= 1")
        if reference_steps is not None and (isinstance(reference_steps, bool) or not isinstance(reference_steps, int) or reference_steps < 1):
            raise ConfigError(f"BNSparsity reference_steps={reference_steps!r} must be an integer >= 1 or null")
        bad = [p for p in predict_percents if not 0.0 <= p < 1.0]
        if bad:
            raise ConfigError(f"BNSparsity predict_percents {bad} must lie in [0, 1)")
        self.s = float(s)
        self.base_s = float(s)
        self.reference_steps = reference_steps
        self.scope = scope
        self.ignore = tuple(int(i) for i in ignore)
        if schedule is None:
            schedule = SparsitySchedule()
        elif not isinstance(schedule, SparsitySchedule):
            schedule = SparsitySchedule(**dict(schedule))
        self.schedule = schedule
        self.log_every_n_epochs = log_every_n_epochs
        self.predict_percents = tuple(float(p) for p in predict_percents)
        self.plot_path = plot_path
        self.layer_ids: list[int] = []
        self.steps_applied = 0
        self.initial_gammas: torch.Tensor | None = None
        self._protect: dict[int, torch.Tensor] = {}

    # ------------------------------------------------------------------ set-up

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # after the module's setup (which may build the model and load initial weights)
        # and after a resumed checkpoint restored this callback's state
        model = _find_darknet(pl_module)
        self.layer_ids = select_bn_layers(model, self.scope, self.ignore)
        if not self.layer_ids:
            raise ConfigError(f"BNSparsity: scope {self.scope!r} selects no BatchNorm layer in {model.cfg.source}")
        if self.initial_gammas is None:
            self.initial_gammas = gamma_vector(model, self.layer_ids)
        scaled = ""
        total = trainer.estimated_stepping_batches
        if self.reference_steps is not None and total and total != float("inf"):
            self.s = self.base_s * self.reference_steps / float(total)
            scaled = f" (s={self.base_s:g} is for {self.reference_steps} steps; this run has {int(total)})"
        log.info("BNSparsity: s=%g on %d BatchNorm layers (scope %s, schedule %s)%s", self.s, len(self.layer_ids), self.scope,
                 self.schedule.kind, scaled)

    def _progress(self, trainer: Trainer) -> float:
        total = trainer.estimated_stepping_batches
        if not total or total == float("inf"):
            return trainer.current_epoch / max(trainer.max_epochs or 1, 1)
        return trainer.global_step / float(total)

    def current_strength(self, trainer: Trainer) -> float:
        """`s` times the schedule multiplier at the trainer's progress."""
        return self.s * self.schedule.multiplier(self._progress(trainer))

    # ------------------------------------------------------------------ the penalty

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.schedule.protects_survivors(self._progress(trainer)):
            from yolo_slim.sparsity.stats import survivor_masks

            self._protect = survivor_masks(_find_darknet(pl_module), self.layer_ids, self.schedule.keep_percent)

    @torch.no_grad()
    def on_before_optimizer_step(self, trainer: Trainer, pl_module: LightningModule, optimizer: Any) -> None:
        strength = self.current_strength(trainer)
        if strength == 0.0:
            return
        blocks = _find_darknet(pl_module).layers
        for i in self.layer_ids:
            gamma = blocks[i].bn.weight
            if gamma.grad is None:
                gamma.grad = torch.zeros_like(gamma)
            penalty = torch.sign(gamma) * strength
            protect = self._protect.get(i)
            if protect is not None:
                penalty = torch.where(protect.to(gamma.device), penalty * self.schedule.factor, penalty)
            gamma.grad.add_(penalty)
        self.steps_applied += 1

    # ------------------------------------------------------------------ reporting

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        epoch = trainer.current_epoch
        if (epoch + 1) % self.log_every_n_epochs and epoch + 1 != trainer.max_epochs:
            return
        model = _find_darknet(pl_module)
        summary = sparsity_summary(model, self.layer_ids, self.predict_percents)
        pl_module.log_dict({f"sparsity/{k}": float(v) for k, v in summary.scalars().items()}, sync_dist=False)
        pl_module.log("sparsity/strength", self.current_strength(trainer))
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                writer = logger.experiment
                writer.add_histogram("sparsity/gamma_abs", gamma_vector(model, self.layer_ids).abs(), epoch)
                for i in self.layer_ids:
                    writer.add_histogram(f"sparsity_layers/gamma_abs_layer_{i:03d}", model.layers[i].bn.weight.detach().abs().cpu(), epoch)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # trainer.log_dir is a collective under DDP: every rank must ask for it
        path = Path(self.plot_path) if self.plot_path else Path(trainer.log_dir or trainer.default_root_dir) / "gamma_hist.png"
        if not trainer.is_global_zero or self.initial_gammas is None:
            return
        after = gamma_vector(_find_darknet(pl_module), self.layer_ids)
        plot_gamma_histograms({"before sparsity training": self.initial_gammas, "after sparsity training": after}, path)
        log.info("BNSparsity: gamma histogram written to %s", path)

    # ------------------------------------------------------------------ checkpoint state

    def state_dict(self) -> dict[str, Any]:
        return {
            "s": self.s,
            "scope": self.scope,
            "steps_applied": self.steps_applied,
            "layer_ids": list(self.layer_ids),
            "initial_gammas": None if self.initial_gammas is None else self.initial_gammas.tolist(),
            "protect": {int(k): v.tolist() for k, v in self._protect.items()},
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.steps_applied = int(state_dict.get("steps_applied", 0))
        initial = state_dict.get("initial_gammas")
        self.initial_gammas = None if initial is None else torch.tensor(initial)
        self._protect = {int(k): torch.tensor(v, dtype=torch.bool) for k, v in state_dict.get("protect", {}).items()}
