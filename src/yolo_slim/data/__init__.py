"""Datasets in darknet/YOLO, Ultralytics and COCO form, augmentation, the LightningDataModule,
the built-in dataset and anchors fitted to a dataset.

Modules, one job each:

* :mod:`~yolo_slim.data.formats`: ``.data``/``.names`` files, image lists, label paths, :class:`DataSpec`;
* :mod:`~yolo_slim.data.datayaml`: Ultralytics ``data.yaml`` files;
* :mod:`~yolo_slim.data.coco`: COCO detection json;
* :mod:`~yolo_slim.data.sources`: any ``data`` argument -> a :class:`DataSpec`;
* :mod:`~yolo_slim.data.labels`: label files, labels held in memory, the bad-data report;
* :mod:`~yolo_slim.data.augment`: pure augmentation functions and their config;
* :mod:`~yolo_slim.data.dataset`: the torch Dataset and the batch collate function;
* :mod:`~yolo_slim.data.datamodule`: the LightningDataModule;
* :mod:`~yolo_slim.data.synthetic`: the generated built-in dataset and its presets;
* :mod:`~yolo_slim.data.aerial`: the renderer of the aerial preset;
* :mod:`~yolo_slim.data.anchors`: anchors fitted to a dataset's boxes, BPR and mean IoU.

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
    "PRESETS": "synthetic",
    "LabelTable": "labels",
    "read_data_yaml": "datayaml",
    "read_coco": "coco",
    "resolve_dataset": "sources",
    "spec_from_folder": "sources",
    "AnchorFit": "anchors",
    "fit_anchors": "anchors",
    "fit_cfg_anchors": "anchors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
