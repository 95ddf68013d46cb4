"""Any model file as a detector: `.weights` and `.ckpt` through PyTorch, an IR through OpenVINO.

`open_detector` is how `predict` (and `val` for an IR) turns the model keys every app
shares (`model.cfg`, `model.classes`, `weights`, `img_size`, `device`) into one object
with `detect(image_bgr)` / `detect_batch(images)`, `names` and `input_hw`:

- `weights=PATH/model.xml`: `OpenVINODetector` (its `meta.json` gives the names and the
  size; `img_size=N` reshapes an IR exported with a dynamic spatial size);
- anything else: `yolo_slim.model.load_model` (a zoo name or `.cfg` with darknet
  `.weights`, or a `.ckpt` and the cfg it carries) at the model's own size
  (`yolo_slim.config.sizes.resolve_img_size`) in a `TorchDetector`, its class names
  those of the data set a training run's `.ckpt` was trained on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Union

from yolo_slim.config.devices import openvino_device, torch_device
from yolo_slim.config.sizes import is_openvino_ir, resolve_img_size
from yolo_slim.deploy.torch_detector import TorchDetector
from yolo_slim.errors import ConfigError

if TYPE_CHECKING:
    from yolo_slim.deploy.detector import OpenVINODetector

Detector = Union[TorchDetector, "OpenVINODetector"]

log = logging.getLogger(__name__)


def default_names(count: int) -> list[str]:
    """``class0``, ``class1``, ... for a model whose class names nobody gave."""
    return [f"class{i}" for i in range(count)]


def checkpoint_names(weights: str | None, count: int) -> list[str] | None:
    """The class names of the data set a training run's `.ckpt` was trained on (None: not recorded or not readable).

    Names only label detections, so a data set that cannot be read is a warning, not an error.
    """
    from omegaconf import OmegaConf

    from yolo_slim.config.datasets import choose_data, class_names
    from yolo_slim.config.sizes import is_checkpoint
    from yolo_slim.errors import YoloSlimError

    if not is_checkpoint(weights):
        return None
    try:
        names = list(class_names(choose_data(None, OmegaConf.create({}), weights)))
    except YoloSlimError as exc:
        log.warning("%s: no class names from its training data (%s); naming them class0, class1, ...", weights, exc)
        return None
    if len(names) != count:
        log.warning("%s: its training data has %d class names for %d classes; naming them class0, class1, ...", weights, len(names), count)
        return None
    return names


def open_detector(
    weights: str | None,
    model_cfg: str | None = None,
    *,
    classes: int | None = None,
    img_size: int | None = None,
    device: str = "auto",
    names: Sequence[str] | None = None,
    conf_thres: float = 0.25,
    iou_thres: float = 0.45,
    max_det: int = 300,
) -> Detector:
    """The detector of a model file (see the module docstring).

    Args:
        weights: `.weights`, `.ckpt` or an IR's `model.xml` (None: random weights, with `model_cfg`).
        model_cfg: a zoo name or `.cfg` (needed with `.weights`; never with an IR).
        classes: rewrite the heads for this many classes (PyTorch models).
        img_size: input size; None: the model's own.
        device: ``auto``, ``cpu`` or ``gpu`` (the torch or the OpenVINO device).
        names: class names; default the IR's, or those of the data set a training
            run's `.ckpt` was trained on (`checkpoint_names`), else ``class0``, ...
        conf_thres, iou_thres, max_det: NMS settings.

    Raises:
        ConfigError: names that do not fit the model's classes; the errors of
            `load_model` and `OpenVINODetector` for unusable files.
    """
    if is_openvino_ir(weights):
        from yolo_slim.deploy.detector import OpenVINODetector

        detector = OpenVINODetector(
            str(weights), device=openvino_device(device), conf_thres=conf_thres, iou_thres=iou_thres, max_det=max_det,
            input_hw=(int(img_size), int(img_size)) if img_size else None,
        )
        count = int(detector.meta["num_classes"])
    else:
        from yolo_slim.model import load_model

        size = resolve_img_size(img_size, model_cfg, weights)
        model = load_model(model_cfg, weights, classes, size)
        count = model.num_classes
        own = checkpoint_names(weights, count) if names is None else None
        detector = TorchDetector(model, own or default_names(count), torch_device(device), conf_thres, iou_thres, max_det)
    if names:
        if len(names) != count:
            raise ConfigError(f"names: {len(names)} class names ({', '.join(names)}) for a model with {count} classes")
        detector.names = list(names)
    return detector
