"""`YoloLitModule`: the LightningModule that trains a darknet-cfg YOLO model.

One module serves baseline training and fine-tuning of pruned models: the
architecture is whatever cfg it is given (a zoo name, a `.cfg` path, or the cfg text a
checkpoint carries), and it starts from scratch, from darknet `.weights` (optionally
up to a cutoff layer) or from the weights of a Lightning checkpoint.

Training policy follows the YOLOv3/v4 recipe: SGD with Nesterov momentum (or Adam),
three parameter groups (BatchNorm weights, conv weights with weight decay, biases),
a linear warm-up that ends exactly at lr0 and a cosine or step schedule
(`lit.schedule`), an EMA of the weights (`lit.ema`) that validation uses and that is
saved, and the loss of `lit.loss` scaled by the nominal batch (darknet accumulates
gradients to 64 images per update). Validation runs NMS and `DetectionMetrics`.

Hyperparameters are stored as plain containers so checkpoints load with
``torch.load(..., weights_only=True)``. A checkpoint also carries the darknet cfg
text, so a checkpoint of a pruned model rebuilds itself.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hydra.utils
import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import Tensor, nn

from yolo_slim.darknet.cfg import load_cfg, parse_cfg_text, write_cfg_text
from yolo_slim.errors import ConfigError, TrainingError, WeightsError
from yolo_slim.io.checkpoint import CFG_KEY, RNG_KEY, check_matching_state, ema_state_dict, load_matching_state, read_checkpoint
from yolo_slim.lit.ema import ModelEMA
from yolo_slim.lit.loss import YoloLoss
from yolo_slim.lit.schedule import WarmupSchedule
from yolo_slim.metrics.detection import DetectionMetrics
from yolo_slim.model import Darknet
from yolo_slim.model.priors import init_head_priors
from yolo_slim.ops.boxes import targets_to_pixels
from yolo_slim.ops.nms import non_max_suppression

_DEFAULT_OPTIMIZER = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.01, "momentum": 0.937, "nesterov": True, "weight_decay": 0.0005}
_DEFAULT_SCHEDULER = {"kind": "cosine", "warmup_steps": 100, "warmup_bias_lr": 0.1, "lrf": 0.01, "milestones": [0.8, 0.9], "gamma": 0.1}
_DEFAULT_VAL = {"conf_thres": 0.001, "iou_thres": 0.6, "score_threshold": 0.1, "max_det": 300}


def _plain(value: Any) -> Any:
    """OmegaConf containers -> dicts and lists (checkpoints must not hold DictConfig)."""
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, Path):
        return str(value)
    return value


class YoloLitModule(pl.LightningModule):
    """Trains and validates a darknet-cfg YOLO model.

    Args:
        cfg: zoo name (``yolov4``, ...) or `.cfg` path of the architecture.
        classes: number of classes; None takes the datamodule's ``num_classes`` at
            setup (or the cfg's when there is no datamodule).
        img_size: network input side in pixels written to the cfg's ``[net]``.
        cfg_text: darknet cfg text; overrides ``cfg`` (checkpoints set it).
        weights: initial weights: darknet ``.weights`` or a Lightning ``.ckpt``
            (its EMA weights); ignored when resuming a run.
        cutoff: with ``.weights``: load only layers ``< cutoff`` (pretrained backbone).
        optimizer: Hydra config of a partial optimizer (``_target_``, ``_partial_:
            true``, ``lr``, ``weight_decay``, ...).
        scheduler: ``kind`` (cosine|step), ``warmup_steps`` (optimizer steps; the
            training task gives the budget's), ``warmup_bias_lr``, ``lrf``,
            ``milestones``, ``gamma``. The schedule spans the trainer's
            ``estimated_stepping_batches`` (the budget's steps).
        loss: keyword arguments of `YoloLoss`.
        ema: ``enabled``, ``decay``, ``tau``.
        val: ``conf_thres``, ``iou_thres`` (NMS), ``score_threshold`` (P/R),
            ``max_det``.
        bn_momentum: BatchNorm running-statistics momentum. 0.03 suits long schedules;
            short ones (a few hundred steps) need about 0.1, or the running statistics
            lag the weights and the eval-mode model scores far below the train-mode one.
        nominal_batch_size: images per optimizer update the loss scale assumes
            (darknet's 64); the trainer accumulates gradients to reach it.
        head_priors: start the head biases at the expected objectness and class
            frequencies (`yolo_slim.model.priors`); initial weights, when given,
            overwrite them.
    """

    def __init__(
        self,
        cfg: str = "yolov4-tiny",
        classes: int | None = None,
        img_size: int | None = None,
        cfg_text: str | None = None,
        weights: str | None = None,
        cutoff: int | None = None,
        optimizer: Mapping[str, Any] | None = None,
        scheduler: Mapping[str, Any] | None = None,
        loss: Mapping[str, Any] | None = None,
        ema: Mapping[str, Any] | None = None,
        val: Mapping[str, Any] | None = None,
        nominal_batch_size: int = 64,
        bn_momentum: float = 0.03,
        head_priors: bool = True,
    ) -> None:
        super().__init__()
        args = {k: _plain(v) for k, v in locals().items() if k not in ("self", "__class__")}
        args["optimizer"] = dict(_DEFAULT_OPTIMIZER if optimizer is None else args["optimizer"])
        args["scheduler"] = {**_DEFAULT_SCHEDULER, **(args["scheduler"] or {})}
        if "warmup_epochs" in args["scheduler"]:
            raise ConfigError("scheduler.warmup_epochs is gone: the warm-up is warmup_steps (optimizer steps; budget.warmup_steps in train.py)")
        warmup = args["scheduler"]["warmup_steps"]
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ConfigError(f"scheduler.warmup_steps must be an integer >= 0, got {warmup!r}")
        args["loss"] = dict(args["loss"] or {})
        args["ema"] = {"enabled": True, "decay": 0.9999, "tau": 2000.0, **(args["ema"] or {})}
        args["val"] = {**_DEFAULT_VAL, **(args["val"] or {})}
        if nominal_batch_size < 1:
            raise ConfigError(f"model.nominal_batch_size must be >= 1, got {nominal_batch_size}")
        if not 0.0 < bn_momentum <= 1.0:
            raise ConfigError(f"model.bn_momentum must be in (0, 1], got {bn_momentum}")
        self.save_hyperparameters(args)
        self.model: Darknet | None = None
        self.ema: ModelEMA | None = None
        if cfg_text is not None or classes is not None:
            self._build()

    # ------------------------------------------------------------------ building

    def _build(self, classes: int | None = None) -> None:
        hp = self.hparams
        if hp.cfg_text is not None:
            dcfg = parse_cfg_text(hp.cfg_text, source=f"{hp.cfg} (checkpoint cfg)")
            if classes is not None and dcfg.num_classes != classes:
                raise WeightsError(f"the checkpoint's model has {dcfg.num_classes} classes, the data has {classes}")
        else:
            dcfg = load_cfg(hp.cfg, classes if classes is not None else hp.classes, hp.img_size)
        self.model = Darknet(dcfg)
        if hp.get("head_priors", True) and hp.cfg_text is None:
            init_head_priors(self.model, dcfg.net.width)
        for module in self.model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.momentum = float(self.hparams.get("bn_momentum", 0.03))
        self.hparams["classes"] = dcfg.num_classes
        self.hparams["cfg_text"] = write_cfg_text(dcfg)
        self._build_ema()
        self.criterion = YoloLoss(self.model.heads, **self.hparams.loss)
        self.val_metrics = DetectionMetrics(dcfg.num_classes, score_threshold=self.hparams.val["score_threshold"])

    def _build_ema(self) -> None:
        e = self.hparams.ema
        self.ema = ModelEMA(self.model, e["decay"], e["tau"]) if e["enabled"] else None

    def setup(self, stage: str) -> None:
        if self.model is None:
            datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
            self._build(getattr(datamodule, "num_classes", None))
        if stage == "fit" and self.hparams.weights and self._trainer is not None and self.trainer.ckpt_path is None:
            self.load_initial_weights(self.hparams.weights, self.hparams.cutoff)

    def load_initial_weights(self, path: str | os.PathLike, cutoff: int | None = None) -> None:
        """Initialise the model from darknet ``.weights`` or a ``.ckpt`` (EMA weights), then reset the EMA."""
        path = Path(path)
        if path.suffix == ".ckpt":
            if cutoff is not None:
                raise ConfigError("model.cutoff applies to darknet .weights, not to a .ckpt")
            state = ema_state_dict(read_checkpoint(path)["state_dict"])
            load_matching_state(self.model, state, str(path))
        else:
            self.model.load_darknet_weights(path, cutoff)
        self._build_ema()

    @property
    def eval_model(self) -> Darknet:
        """The model validation uses: the EMA weights when enabled."""
        return self.ema.module if self.ema is not None else self.model

    # ------------------------------------------------------------------ steps

    def forward(self, images: Tensor) -> list[Tensor] | Tensor:
        return self.model(images)

    def _log_losses(self, stage: str, parts: Any, batch_size: int, **kwargs: Any) -> None:
        total = parts.total.detach()
        values = {f"{stage}/loss": total, f"{stage}/box": parts.box.detach(), f"{stage}/obj": parts.obj.detach(), f"{stage}/cls": parts.cls.detach()}
        self.log_dict(values, batch_size=batch_size, **kwargs)

    def loss_scale(self, batch_size: int) -> float:
        """Factor from batch-mean loss to the summed loss darknet's update uses.

        Lightning divides by the accumulation steps and DDP averages over ranks, so
        the scale restores a sum over the ``batch * accumulate * world`` images of one
        update (as YOLOv3/v4 trainers do).
        """
        if self._trainer is None:
            return float(batch_size)
        return float(batch_size * self.trainer.accumulate_grad_batches * self.trainer.world_size)

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        images, targets = batch["images"], batch["targets"]
        outputs = self.model(images)
        loss, parts = self.criterion(outputs, targets, (images.shape[2], images.shape[3]))
        self.check_finite_loss(loss, parts, batch_idx)
        self._log_losses("train", parts, images.shape[0], on_step=True, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss * self.loss_scale(images.shape[0])

    def check_finite_loss(self, loss: Tensor, parts: Any, batch_idx: int) -> None:
        """Stop training with one clear line when the loss is NaN or infinite.

        Lightning would go on (``detect_anomaly`` only helps find the operation), and a
        NaN step ruins the weights, the EMA and every later checkpoint. Under DDP every
        rank learns of a non-finite loss on any rank, so all stop together.

        Raises:
            TrainingError: naming the epoch, the step and the loss parts.
        """
        finite = bool(torch.isfinite(loss.detach()).all())
        attached = self._trainer is not None
        if attached and self.trainer.world_size > 1:
            finite = bool(self.trainer.strategy.reduce_boolean_decision(finite, all=True))
        if finite:
            return
        where = f"epoch {self.current_epoch}, optimizer step {self.global_step}, batch {batch_idx}" if attached else f"batch {batch_idx}"
        values = ", ".join(f"{name} {float(getattr(parts, name)):.4g}" for name in ("box", "obj", "cls"))
        raise TrainingError(
            f"train: the loss is {float(loss.detach()):.4g} (non-finite; here {values}) at {where}; training stopped. "
            "Lower the learning rate (optim.optimizer.lr) or the warm-up's start, check the labels, "
            "or resume from an earlier checkpoint"
        )

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)
        if self.ema is not None:
            self.ema.update(self.model)

    def on_validation_epoch_start(self) -> None:
        self.val_metrics.reset()
        self._broadcast_eval_buffers()

    def _broadcast_eval_buffers(self) -> None:
        """Give every DDP rank rank 0's BatchNorm statistics of the evaluated model.

        Parameters agree across ranks (gradients are all-reduced), but each rank's
        BatchNorm running statistics, and so its EMA of them, follow its own batches
        since the last forward. Broadcasting them makes every rank validate the
        model rank 0 saves.
        """
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return
        if torch.distributed.get_world_size() < 2:
            return
        for buffer in self.eval_model.buffers():
            torch.distributed.broadcast(buffer.data, src=0)

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        images, targets = batch["images"], batch["targets"]
        hw = (images.shape[2], images.shape[3])
        model = self.eval_model
        # float32 whatever trainer.precision trains in: the logged val mAP is the one val.py and
        # prune.py compute for the same weights (bf16 validation differed in the third digit)
        with torch.autocast(device_type=images.device.type, enabled=False):
            maps = model.forward_maps(images.float())  # one pass serves both the loss and the detections
        _, parts = self.criterion(model.raw_outputs(maps), targets, hw)
        self._log_losses("val", parts, images.shape[0], on_step=False, on_epoch=True, sync_dist=True)
        decoded = model.decode_maps(maps, hw)
        v = self.hparams.val
        detections = non_max_suppression(decoded, v["conf_thres"], v["iou_thres"], max_det=v["max_det"])
        self.val_metrics.update(detections, targets_to_pixels(targets, images.shape[0], hw))

    def on_validation_epoch_end(self) -> None:
        result = self.val_metrics.compute()  # gathers every rank's matches: the same values on all ranks
        names = ("precision", "recall", "f1", "mAP50", "mAP50_95")
        self.log_dict({f"val/{n}": result[n].to(self.device) for n in names}, sync_dist=True)
        self.val_metrics.reset()

    # ------------------------------------------------------------------ optimisation

    def parameter_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """BatchNorm weights (no decay), conv weights (decay), biases (no decay)."""
        bn_weights, conv_weights, biases = [], [], []
        for module in self.model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                bn_weights.append(module.weight)
                biases.append(module.bias)
            elif isinstance(module, nn.Conv2d):
                conv_weights.append(module.weight)
                if module.bias is not None:
                    biases.append(module.bias)
        return [
            {"params": bn_weights, "weight_decay": 0.0, "name": "bn"},
            {"params": conv_weights, "weight_decay": weight_decay, "name": "weights"},
            {"params": biases, "weight_decay": 0.0, "name": "biases"},
        ]

    def configure_optimizers(self) -> dict[str, Any]:
        opt_cfg = dict(self.hparams.optimizer)
        opt_cfg.setdefault("_partial_", True)
        weight_decay = float(opt_cfg.get("weight_decay", 0.0))
        optimizer = hydra.utils.instantiate(opt_cfg)(self.parameter_groups(weight_decay))
        s = self.hparams.scheduler
        total = int(self.trainer.estimated_stepping_batches)
        warmup = int(s["warmup_steps"])
        lambdas = []
        for group in optimizer.param_groups:
            start = float(s["warmup_bias_lr"]) / group["lr"] if group["name"] == "biases" and group["lr"] > 0 else 0.0
            lambdas.append(WarmupSchedule(total, min(warmup, total), s["kind"], float(s["lrf"]), tuple(s["milestones"]), float(s["gamma"]), start))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}

    # ------------------------------------------------------------------ checkpoints

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CFG_KEY] = write_cfg_text(self.model.cfg)
        np_state = np.random.get_state()
        checkpoint[RNG_KEY] = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), int(np_state[2]), int(np_state[3]), float(np_state[4])],
            "python": _python_state_to_plain(random.getstate()),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        text = checkpoint.get(CFG_KEY)
        if self.model is None:
            if text is None:
                raise WeightsError("the checkpoint carries no darknet cfg; build the module with its cfg first")
            self.hparams["cfg_text"] = text
            self._build()
        check_matching_state(self.state_dict(), checkpoint["state_dict"], "checkpoint")
        rng = checkpoint.get(RNG_KEY)
        if rng:
            torch.set_rng_state(rng["torch"])
            if rng["cuda"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rng["cuda"])
            n = rng["numpy"]
            np.random.set_state((n[0], n[1].numpy(), n[2], n[3], n[4]))
            random.setstate(_python_state_from_plain(rng["python"]))


def _python_state_to_plain(state: tuple) -> list:
    version, internal, gauss = state
    return [int(version), list(internal), gauss]


def _python_state_from_plain(plain: list) -> tuple:
    return (int(plain[0]), tuple(int(v) for v in plain[1]), plain[2])
