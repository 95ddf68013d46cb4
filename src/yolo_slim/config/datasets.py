"""`data=`: the dataset, one top-level value in every app, and the loader built from it.

`data` is ``builtin`` (the generated dataset, its knobs in the `builtin` block), a
darknet ``.data`` file or a dataset folder; prune and export also take ``none`` (no
dataset: prune's cost-only report, export without calibration or mAP). The loader
settings are the `loader` block; the size is the run's one `img_size`. val and
predict also take no `data` for a training run's `.ckpt`: `choose_data` finds the data
set it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from yolo_slim.config.schema import Builtin
from yolo_slim.errors import ConfigError

NO_DATA = ("none", "null", "")


def has_data(value: object) -> bool:
    """Whether a `data=` value names a dataset (not null or ``none``)."""
    return value is not None and str(value).strip().lower() not in NO_DATA


def builtin_options(builtin: DictConfig) -> dict[str, Any]:
    """`make_synthetic_dataset` keywords from the `builtin` block (None: the preset's value)."""
    return {k: v for k, v in OmegaConf.to_container(builtin, resolve=True).items() if v is not None}


def build_datamodule(cfg: DictConfig, img_size: int, choice: DataChoice | None = None, **loader: Any):
    """The `YoloDataModule` of `cfg.data` at `img_size`, with `cfg.loader` (and `loader` overrides).

    Args:
        cfg: a validated train, val or prune config (`data`, `loader`, `builtin`, `paths.data_dir`).
        img_size: the run's input size.
        choice: the data set to load instead of `cfg.data` and `cfg.builtin` (`choose_data`).
        loader: loader keys to replace, e.g. ``num_workers=0``.
    """
    from yolo_slim.data import YoloDataModule

    settings = {**OmegaConf.to_container(cfg.loader, resolve=True), **loader}
    return YoloDataModule(
        data=choice.data if choice is not None else str(cfg.data),
        img_size=int(img_size),
        batch_size=settings["batch_size"],
        num_workers=settings["num_workers"],
        cache=settings["cache"],
        augment=settings["augment"],
        strict=settings["strict"],
        builtin=choice.builtin if choice is not None else builtin_options(cfg.builtin),
        val_subset=settings["val_subset"],
        cache_dir=str(cfg.paths.data_dir),
    )


def dataset_spec(data: str, builtin: DictConfig | dict[str, Any], img_size: int, data_dir: str | Path):
    """The `DataSpec` of a `data=` value (the built-in dataset generated on first use).

    `builtin` is the `builtin` block, or its `builtin_options` (a `DataChoice`'s).

    Raises:
        DataError: the dataset cannot be found or read.
    """
    from yolo_slim.data import YoloDataModule

    options = builtin_options(builtin) if isinstance(builtin, DictConfig) else dict(builtin)
    return YoloDataModule(data=str(data), img_size=int(img_size), builtin=options, cache_dir=str(data_dir)).spec


@dataclass(frozen=True)
class DataChoice:
    """The data set a command evaluates on, and where that choice came from.

    Attributes:
        data: a `data=` value (``builtin``, a file or a folder).
        builtin: the built-in data's knobs (`builtin_options` form).
        origin: for messages: ``data=...`` (with ``, the data set PATH.ckpt was trained on``).
        recorded: whether it is the checkpoint's record (not given on the command line).
    """

    data: str
    builtin: dict[str, Any]
    origin: str
    recorded: bool = False


def choose_data(data: str | None, builtin: DictConfig, weights: str | None) -> DataChoice:
    """`data` when given, else the data set a training run's `.ckpt` was trained on.

    Lightning keeps the datamodule's arguments in the checkpoint
    (``datamodule_hyper_parameters``): its `data` and, for the built-in data, the knobs it
    was generated with, so `val weights=RUN/best.ckpt` scores the run's own validation set.

    Raises:
        ConfigError: no `data` and `weights` is not a checkpoint that records one.
        WeightsError: the checkpoint cannot be read.
    """
    from yolo_slim.config.sizes import is_checkpoint
    from yolo_slim.io.checkpoint import read_checkpoint

    if has_data(data):
        return DataChoice(str(data), builtin_options(builtin), f"data={data}")
    recorded = (read_checkpoint(str(weights)).get("datamodule_hyper_parameters") or {}) if is_checkpoint(weights) else {}
    if not recorded.get("data"):
        raise ConfigError(f"give data=PATH: {weights or 'the model'} does not record the data set it was trained on "
                          "(only a training run's .ckpt does)")
    options = {k: v for k, v in dict(recorded.get("builtin") or {}).items() if k in Builtin.__dataclass_fields__ and v is not None}
    return DataChoice(str(recorded["data"]), options, f"data={recorded['data']}, the data set {weights} was trained on", True)


def class_names(choice: DataChoice) -> tuple[str, ...]:
    """The class names of a data set (the built-in data's from its preset, without generating it).

    Raises:
        DataError, ConfigError: the data set cannot be read, or an unknown preset.
    """
    if choice.data == "builtin":
        from yolo_slim.data.synthetic import PRESETS

        preset = str(choice.builtin.get("preset") or "demo")
        if preset not in PRESETS:
            raise ConfigError(f"builtin.preset={preset!r}: expected one of {', '.join(PRESETS)}")
        return tuple(PRESETS[preset].names)
    from yolo_slim.data.sources import resolve_dataset

    return tuple(resolve_dataset(choice.data, need_valid=False).names)
