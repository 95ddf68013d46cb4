"""`data=`: the dataset, one top-level value in every app, and the loader built from it.

`data` is ``builtin`` (the generated dataset, its knobs in the `builtin` block), a
darknet ``.data`` file or a dataset folder; prune and export also take ``none`` (no
dataset: prune's cost-only report, export without calibration or mAP). The loader
settings are the `loader` block; the size is the run's one `img_size`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

NO_DATA = ("none", "null", "")


def has_data(value: object) -> bool:
    """Whether a `data=` value names a dataset (not null or ``none``)."""
    return value is not None and str(value).strip().lower() not in NO_DATA


def builtin_options(builtin: DictConfig) -> dict[str, Any]:
    """`make_synthetic_dataset` keywords from the `builtin` block (None: the preset's value)."""
    return {k: v for k, v in OmegaConf.to_container(builtin, resolve=True).items() if v is not None}


def build_datamodule(cfg: DictConfig, img_size: int, **loader: Any):
    """The `YoloDataModule` of `cfg.data` at `img_size`, with `cfg.loader` (and `loader` overrides).

    Args:
        cfg: a validated train or prune config (`data`, `loader`, `builtin`, `paths.data_dir`).
        img_size: the run's input size.
        loader: loader keys to replace, e.g. ``num_workers=0``.
    """
    from yolo_slim.data import YoloDataModule

    settings = {**OmegaConf.to_container(cfg.loader, resolve=True), **loader}
    return YoloDataModule(
        data=str(cfg.data),
        img_size=int(img_size),
        batch_size=settings["batch_size"],
        num_workers=settings["num_workers"],
        cache=settings["cache"],
        augment=settings["augment"],
        strict=settings["strict"],
        builtin=builtin_options(cfg.builtin),
        val_subset=settings["val_subset"],
        cache_dir=str(cfg.paths.data_dir),
    )


def dataset_spec(data: str, builtin: DictConfig, img_size: int, data_dir: str | Path):
    """The `DataSpec` of a `data=` value (the built-in dataset generated on first use).

    Raises:
        DataError: the dataset cannot be found or read.
    """
    from yolo_slim.data import YoloDataModule

    return YoloDataModule(data=str(data), img_size=int(img_size), builtin=builtin_options(builtin), cache_dir=str(data_dir)).spec
