"""Datasets in darknet/YOLO format, augmentation, the LightningDataModule, the built-in dataset.

Modules, one job each:

* :mod:`~yolo_slim.data.formats`: ``.data``/``.names`` files, image lists, label paths;
* :mod:`~yolo_slim.data.labels`: label files and the bad-data report;
* :mod:`~yolo_slim.data.augment`: pure augmentation functions and their config;
* :mod:`~yolo_slim.data.dataset`: the torch Dataset and the batch collate function;
* :mod:`~yolo_slim.data.datamodule`: the LightningDataModule;
* :mod:`~yolo_slim.data.synthetic`: the generated built-in dataset.

Names are imported lazily so that reading a ``.data`` file does not import torch
or Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DataSpec": "formats",
    "read_data_file": "formats",
    "read_names": "formats",
    "resolve_image_list": "formats",
    "label_path_for": "formats",
    "LabelIssue": "labels",
    "DataReport": "labels",
    "read_labels": "labels",
    "AugmentConfig": "augment",
    "YoloDataset": "dataset",
    "collate_detection": "dataset",
    "YoloDataModule": "datamodule",
    "make_synthetic_dataset": "synthetic",
    "SYNTHETIC_NAMES": "synthetic",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
