"""`val(cfg)`: the validation task behind `val.py` and `yolo-slim val`.

P, R, mAP@0.5 and mAP@0.5:0.95 for every class and for all, of any model file on any
data set the project reads:

- a `.ckpt` (its EMA weights and the cfg it carries), or a zoo name or `.cfg` with
  darknet `.weights`: the PyTorch model on the validation loader of training
  (`YoloDataModule`: the same letterbox), the same NMS and `DetectionMetrics` with the
  `eval` block, so `val` on a run's `best.ckpt` gives the run's best logged
  `val/mAP50`. The table adds the model's params and BFLOPs.
- an OpenVINO IR (`model.xml`, `meta.json` beside it): `OpenVINODetector` on the
  validation images with the same metric code (boxes in original pixels).

The size is `img_size`, else the model's own (`yolo_slim.config.sizes`; an IR's
exported size). The data set is `data`, else the one a training run's `.ckpt` was
trained on (`yolo_slim.config.datasets.choose_data`); `loader.val_subset` limits the
images as in training. The table is printed and written as `val.json` and `val.md`
into the run dir (`paths.output_dir`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from yolo_slim.config import validate_config
from yolo_slim.config.datasets import DataChoice, build_datamodule, choose_data
from yolo_slim.config.devices import torch_device
from yolo_slim.config.sizes import is_openvino_ir, resolve_img_size
from yolo_slim.errors import ConfigError, DataError
from yolo_slim.io.atomic import write_atomic
from yolo_slim.metrics.detection import DetectionMetrics
from yolo_slim.metrics.val_table import ImageCounter, ValTable
from yolo_slim.progress import track

log = logging.getLogger(__name__)


def _output_dir(cfg: DictConfig) -> Path:
    try:
        return Path(str(cfg.paths.output_dir))
    except (OmegaConfBaseException, ValueError) as exc:
        raise ConfigError(f"paths.output_dir cannot be resolved outside a Hydra run; set it ({exc})") from None


def _datamodule(cfg: DictConfig, choice: DataChoice, img_size: int):
    datamodule = build_datamodule(cfg, img_size, choice)
    try:
        datamodule.prepare_data()
        datamodule.setup("validate")
    except DataError as exc:
        if not choice.recorded:
            raise
        raise DataError(f"{exc} ({choice.origin}; give data=PATH to validate on another)") from None
    return datamodule


def _check_classes(model_classes: int, data_classes: int, weights: object, choice: DataChoice) -> None:
    if model_classes != data_classes:
        raise DataError(f"{weights} detects {model_classes} classes but {choice.origin} has {data_classes}; "
                        "validate it on the data set it was trained for")


def _own_classes(cfg: DictConfig) -> int | None:
    """The classes a `.cfg` file or a `.ckpt` says; None for a zoo name (its heads follow the data set)."""
    from yolo_slim.config.sizes import model_sources

    if cfg.model.cfg and not Path(str(cfg.model.cfg)).is_file():
        return None
    arch, _ = model_sources(cfg.model.cfg, cfg.weights)
    return arch.num_classes


def _model_name(cfg: DictConfig) -> str:
    return " + ".join(str(x) for x in (cfg.model.cfg, cfg.weights) if x)


def _val_torch(cfg: DictConfig, choice: DataChoice) -> ValTable:
    from yolo_slim.metrics.cost import count_cost
    from yolo_slim.metrics.evaluate import predict_batches
    from yolo_slim.model import load_model

    img_size = resolve_img_size(cfg.img_size, cfg.model.cfg, cfg.weights)
    datamodule = _datamodule(cfg, choice, img_size)
    classes = cfg.model.classes or _own_classes(cfg) or datamodule.num_classes
    _check_classes(classes, datamodule.num_classes, cfg.weights or cfg.model.cfg, choice)
    model = load_model(cfg.model.cfg, cfg.weights, classes, img_size).to(torch_device(cfg.device))
    e = cfg.eval
    metric = DetectionMetrics(datamodule.num_classes, score_threshold=float(e.score_threshold))
    counts = ImageCounter(datamodule.num_classes)
    loader = datamodule.val_dataloader()
    for _, detections, targets in track(predict_batches(model, loader, float(e.conf_thres), float(e.iou_thres), int(e.max_det)),
                                        "val: batches", total=len(loader)):
        metric.update(detections, targets)
        counts.update(targets)
    cost = count_cost(model.cfg, model.cfg.input_hw)
    return ValTable.build(metric, counts, datamodule.class_names, model=_model_name(cfg), data=choice.origin, img_size=img_size,
                          conf_thres=float(e.conf_thres), iou_thres=float(e.iou_thres), max_det=int(e.max_det),
                          params=cost.params, bflops=cost.bflops)


def _val_ir(cfg: DictConfig, choice: DataChoice) -> ValTable:
    from yolo_slim.deploy.evaluate import detector_batches
    from yolo_slim.deploy.models import open_detector

    e = cfg.eval
    detector = open_detector(str(cfg.weights), img_size=cfg.img_size, device=str(cfg.device), conf_thres=float(e.conf_thres),
                             iou_thres=float(e.iou_thres), max_det=int(e.max_det))
    img_size = int(detector.input_hw[0])
    datamodule = _datamodule(cfg, choice, img_size)  # the validation list training checks and subsets
    _check_classes(int(detector.meta["num_classes"]), datamodule.num_classes, cfg.weights, choice)
    images = list(datamodule.val_set.images)
    metric = DetectionMetrics(datamodule.num_classes, score_threshold=float(e.score_threshold))
    counts = ImageCounter(datamodule.num_classes)
    batches = detector_batches(detector, images, datamodule.num_classes, read_labels=datamodule.spec.read_labels)
    with_progress = track(batches, "val: batches", total=-(-len(images) // detector.batch))
    for detections, targets in with_progress:
        metric.update(detections, targets)
        counts.update(targets)
    return ValTable.build(metric, counts, datamodule.class_names, model=str(cfg.weights), data=choice.origin, img_size=img_size,
                          conf_thres=float(e.conf_thres), iou_thres=float(e.iou_thres), max_det=int(e.max_det))


def val(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Path]]:
    """Validate the model `cfg.weights` (with `cfg.model.cfg`) on `cfg.data`.

    Args:
        cfg: the composed `conf/val.yaml` (validated here first).

    Returns:
        ``(metrics, artifacts)``: ``val/precision``, ``val/recall``, ``val/mAP50``,
        ``val/mAP50_95`` (the ``all`` row), ``val/images``, ``val/labels`` and, for a
        PyTorch model, ``val/params`` and ``val/bflops``; the paths ``run_dir``,
        ``json`` and ``markdown``.

    Raises:
        YoloSlimError: a bad config, model file or data set.
    """
    cfg = validate_config(cfg, "val")
    out = _output_dir(cfg)
    choice = choose_data(cfg.data, cfg.builtin, cfg.weights)
    log.info("val: %s on %s", _model_name(cfg), choice.origin)
    table = _val_ir(cfg, choice) if is_openvino_ir(cfg.weights) else _val_torch(cfg, choice)
    artifacts = {
        "run_dir": out,
        "json": write_atomic(out / "val.json", json.dumps(table.to_dict(), indent=1) + "\n"),
        "markdown": write_atomic(out / "val.md", table.markdown()),
    }
    print(f"{table.text()}\n\nresults: {artifacts['markdown']}, {artifacts['json']}", flush=True)
    return table.metrics(), artifacts
