"""The LightningDataModule: a dataset source -> checked train/val datasets -> loaders.

``data`` may be a darknet ``.data`` file, an Ultralytics ``data.yaml``, a COCO
json, a dataset folder, or ``"builtin"`` for the generated dataset of
:mod:`yolo_slim.data.synthetic` (:func:`~yolo_slim.data.sources.resolve_dataset`
lists the forms). The data check of every dataset is logged once, when it is built
in :meth:`setup`.
"""

from __future__ import annotations

import logging
import multiprocessing.forkserver
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only
from torch.utils.data import DataLoader

from yolo_slim.data.augment import AugmentConfig
from yolo_slim.data.dataset import YoloDataset, collate_detection
from yolo_slim.data.formats import DataSpec, read_data_file
from yolo_slim.data.labels import DataReport
from yolo_slim.data.sampling import EpochSampler
from yolo_slim.data.sources import resolve_dataset, spec_from_folder
from yolo_slim.data.synthetic import BUILTIN_OPTIONS, builtin_folder, make_synthetic_dataset
from yolo_slim.errors import ConfigError, DataError

__all__ = ["YoloDataModule", "spec_from_folder"]

_log = logging.getLogger(__name__)

WORKER_PRELOAD = ("__main__", "yolo_slim.data.dataset")
"""Modules the data loaders' forkserver imports before it forks workers. A worker forked
from a bare server imports torch, cv2 and the entry script itself (about 2 s on a 2-core
machine), and every training run and every pruning job in a pipeline starts new workers:
with the preload a loader's workers start in 0.2-0.6 s after the first."""

_BUILTIN_KEYS = BUILTIN_OPTIONS | {"root"}


@rank_zero_only
def _log_report(report: DataReport) -> None:
    report.log(_log)


def _evenly_spaced(items: list[Path], n: int) -> list[Path]:
    """``n`` items spread evenly over ``items`` (all of them if ``n >= len``)."""
    if n >= len(items):
        return list(items)
    idx = np.unique(np.linspace(0, len(items) - 1, n).round().astype(int))
    return [items[i] for i in idx]


class YoloDataModule(pl.LightningDataModule):
    """Train and validation loaders for darknet-format detection datasets.

    Batches are dicts made by :func:`~yolo_slim.data.dataset.collate_detection`:
    ``images [B, 3, S, S]``, ``targets [M, 6]`` (batch index, cls, cx, cy, w, h
    normalised), ``paths``, ``shapes [B, 2]``, ``letterbox [B, 3]``.

    Args:
        data: A ``.data`` file, a ``data.yaml``, a COCO json, a dataset folder,
            or ``"builtin"``.
        img_size: Sample side ``S`` in pixels, a multiple of 32.
        batch_size: Samples per batch (train and val).
        num_workers: DataLoader worker processes; 0 loads in the main process.
        cache: Keep decoded images in RAM (uint8, longest side ``S``).
        augment: Training augmentation (an :class:`AugmentConfig` or a mapping of
            its fields); None trains on plain letterboxed images. Validation is
            never augmented.
        strict: Raise a :class:`~yolo_slim.errors.DataError` on any data issue
            instead of repairing or dropping it.
        builtin: Keyword arguments of
            :func:`~yolo_slim.data.synthetic.make_synthetic_dataset` for
            ``data="builtin"``, optionally with ``root``.
        val_subset: Validate on this many images, spread evenly over the list.
        cache_dir: Where the built-in dataset goes when ``builtin`` has no
            ``root``: ``<cache_dir>/builtin`` (``builtin_aerial`` for the aerial
            preset); default ``./data_cache``.
        pin_memory: Pin batches in page-locked memory; default when CUDA is there.
        seed: The data seed: training order and augmentation are a function of
            ``(seed, epoch, sample index)`` (:mod:`~yolo_slim.data.sampling`). None
            takes the seed of ``seed_everything`` (``PL_GLOBAL_SEED``), else a random
            one. It is saved in checkpoints, so a resumed run replays its epochs.

    Raises:
        ConfigError: An option is out of range.
    """

    def __init__(
        self,
        data: str = "builtin",
        img_size: int = 416,
        batch_size: int = 16,
        num_workers: int = 2,
        cache: bool = False,
        augment: AugmentConfig | Mapping[str, Any] | None = AugmentConfig(),  # noqa: B008 (frozen)
        strict: bool = False,
        builtin: Mapping[str, Any] | None = None,
        val_subset: int | None = None,
        cache_dir: str | Path | None = None,
        pin_memory: bool | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        problems = []
        for key, value, low in (("img_size", img_size, 32), ("batch_size", batch_size, 1), ("num_workers", num_workers, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                problems.append(f"{key} must be an integer >= {low}, got {value!r}")
        if isinstance(img_size, int) and img_size % 32:
            problems.append(f"img_size must be a multiple of 32, got {img_size}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            problems.append(f"seed must be an integer or None, got {seed!r}")
        if val_subset is not None and (isinstance(val_subset, bool) or not isinstance(val_subset, int) or val_subset < 1):
            problems.append(f"val_subset must be a positive integer or None, got {val_subset!r}")
        builtin_kwargs = dict(builtin) if builtin is not None else {}
        unknown = sorted(set(builtin_kwargs) - _BUILTIN_KEYS)
        if unknown:
            problems.append(f"unknown builtin option(s) {unknown}; known: {sorted(_BUILTIN_KEYS)}")
        if problems:
            raise ConfigError("; ".join(problems))
        self.data = str(data)
        self.img_size = img_size
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.cache = bool(cache)
        self.augment = AugmentConfig.from_any(augment)
        self.strict = bool(strict)
        self.builtin = builtin_kwargs
        self.val_subset = val_subset
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else bool(pin_memory)
        self._seed = seed
        self._resume_epoch = 0
        self.save_hyperparameters(
            {
                "data": self.data, "img_size": img_size, "batch_size": batch_size, "num_workers": num_workers,
                "cache": self.cache, "augment": self.augment.to_dict() if self.augment else None,
                "strict": self.strict, "builtin": {k: (str(v) if k == "root" else v) for k, v in builtin_kwargs.items()},
                "val_subset": val_subset,
            }
        )
        self._spec: DataSpec | None = None
        self.train_set: YoloDataset | None = None
        self.val_set: YoloDataset | None = None

    # ------------------------------------------------------------------ source
    def _builtin_root(self) -> Path:
        if "root" in self.builtin:
            return Path(self.builtin["root"])
        cache = self.cache_dir if self.cache_dir is not None else Path.cwd() / "data_cache"
        return cache / builtin_folder(self.builtin.get("preset"))

    def _make_builtin(self) -> Path:
        kwargs = {k: v for k, v in self.builtin.items() if k != "root"}
        return make_synthetic_dataset(self._builtin_root(), **kwargs)

    @property
    def spec(self) -> DataSpec:
        """The dataset description (resolved, and the built-in dataset made, on first use)."""
        if self._spec is None:
            if self.data == "builtin":
                self._spec = read_data_file(self._make_builtin())
            else:
                self._spec = resolve_dataset(self.data)
        return self._spec

    @property
    def num_classes(self) -> int:
        """Number of classes of the dataset."""
        return self.spec.classes

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names in class-id order."""
        return self.spec.names

    @property
    def seed(self) -> int:
        """The data seed (resolved on first use; see the class docstring)."""
        if self._seed is None:
            global_seed = os.environ.get("PL_GLOBAL_SEED")
            self._seed = int(global_seed) if global_seed is not None else int(np.random.SeedSequence().entropy % 2**63)
        return self._seed

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of the data pipeline: the data seed (the order and the
        augmentation of every epoch follow from it) and the epoch training resumes at."""
        state: dict[str, Any] = {"seed": self.seed}
        if self.trainer is not None:
            state["epoch"] = self._loop_epoch()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the data seed and epoch of the checkpointed run (Lightning calls this on resume)."""
        if "seed" in state_dict:
            self._seed = int(state_dict["seed"])
        self._resume_epoch = int(state_dict.get("epoch", 0))

    def _loop_epoch(self) -> int:
        """The epoch Lightning passes to the sampler's ``set_epoch`` (its fit loop's counter)."""
        return int(self.trainer.fit_loop.epoch_progress.current.processed) if self.trainer is not None else 0

    def _sampler_epoch(self) -> int:
        """The epoch a new training loader starts at.

        Lightning builds the training loader and its first iterator (whose workers
        prefetch at once) before it restores the loop's epoch counter and calls
        ``set_epoch``; a resumed run would replay epoch 0's order and augmentation. The
        checkpoint's epoch, restored before the loader is built, avoids that.
        """
        return max(self._resume_epoch, self._loop_epoch())

    # ------------------------------------------------------------------ hooks
    def prepare_data(self) -> None:
        """Generates the built-in dataset (once, on global rank 0)."""
        if self.data == "builtin":
            self._make_builtin()

    def setup(self, stage: str | None = None) -> None:
        """Builds and checks the datasets of ``stage`` (all when None).

        Raises:
            DataError: Bad source, no readable images, or ``strict`` and issues.
        """
        spec = self.spec
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = YoloDataset(
                spec.images("train"), spec.classes, self.img_size, self.augment, self.cache, self.strict,
                name="train", label_reader=spec.read_labels,
            )
            _log_report(self.train_set.report)
        if self.val_set is None:
            images = spec.images("valid")
            if self.val_subset is not None:
                images = _evenly_spaced(images, self.val_subset)
            self.val_set = YoloDataset(
                images, spec.classes, self.img_size, None, self.cache, self.strict, name="val",
                label_reader=spec.read_labels,
            )
            _log_report(self.val_set.report)

    def _loader(self, dataset: YoloDataset | None, shuffle: bool) -> DataLoader:
        if self.num_workers > 0:
            # the forkserver imports these once; each worker forks from it with them loaded
            multiprocessing.forkserver.set_forkserver_preload(list(WORKER_PRELOAD))
        if dataset is None:
            raise DataError("the data module is not set up; call setup() first")
        sampler = None
        if shuffle:  # training: order and augmentation from (seed, epoch, index), sharded over DDP ranks
            world, rank = (self.trainer.world_size, self.trainer.global_rank) if self.trainer is not None else (1, 0)
            sampler = EpochSampler(dataset, self.seed, num_replicas=world, rank=rank)
            sampler.set_epoch(self._sampler_epoch())
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=collate_detection,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            # workers start from a clean single-threaded server, not a fork of this process:
            # a fork taken while OpenVINO's, torch's or the progress display's threads hold a
            # lock gives a worker that waits on it forever (and a run that never exits)
            multiprocessing_context="forkserver" if self.num_workers > 0 else None,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled, augmented training batches."""
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches in list order, letterboxed without augmentation."""
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """The validation batches (darknet datasets have no separate test split)."""
        return self._loader(self.val_set, shuffle=False)

    def calibration_images(self, n: int) -> list[Path]:
        """Training images for post-training quantisation, spread over the set.

        Args:
            n: How many images (all when the set is smaller).

        Returns:
            Paths of readable training images, deterministic for a dataset.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"calibration image count must be a positive integer, got {n!r}")
        if self.train_set is None:
            self.setup("fit")
        if self.train_set is None:  # pragma: no cover - setup("fit") always builds it
            raise DataError("no training set")
        return _evenly_spaced(self.train_set.images, n)
