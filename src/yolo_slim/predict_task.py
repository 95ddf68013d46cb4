"""`predict(cfg)`: the prediction task behind `predict.py` and `yolo-slim predict`.

Any model file (`yolo_slim.deploy.models.open_detector`: `.weights`/`.ckpt` through
PyTorch, an OpenVINO IR through `OpenVINODetector`) on any source:

- an image or an image folder: one annotated image per input image, in the run dir
  under the image's own name (a second image of the same name gets ``_2``);
- a video file, a camera index or a stream URL (`yolo_slim.deploy.sources`): one
  annotated video per source (``<name>.mp4``), up to `max_frames` frames.

With `output.labels`, each image or frame also gets ``labels/<name>.txt`` (frames:
``labels/<video>_<frame>.txt``) with one ``class cx cy w h score`` line per detection,
normalised; with `output.json`, ``predictions.json`` holds every image or frame with
its detections in pixels. Class names: `names`, else an IR's `meta.json`, else the
data set `data` (or the one a training run's `.ckpt` was trained on), else ``class0``,
``class1``, .... Every source is opened before anything is written.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from yolo_slim.config import validate_config
from yolo_slim.config.datasets import choose_data, class_names, has_data
from yolo_slim.errors import ConfigError, DeployError
from yolo_slim.io.atomic import write_atomic
from yolo_slim.progress import track

log = logging.getLogger(__name__)


def _output_dir(cfg: DictConfig) -> Path:
    try:
        return Path(str(cfg.paths.output_dir))
    except (OmegaConfBaseException, ValueError) as exc:
        raise ConfigError(f"paths.output_dir cannot be resolved outside a Hydra run; set it ({exc})") from None


@dataclass(frozen=True)
class ImageSource:
    """An image file or an image folder: its images in sorted order."""

    spec: str
    files: tuple[Path, ...]


def open_sources(specs: list[Any]) -> list[Any]:
    """Each source spec as an `ImageSource` or an open `FrameSource` (videos, cameras, streams).

    Raises:
        DeployError: a source that is missing or cannot be opened (any open ones are closed).
    """
    from yolo_slim.deploy.sources import IMAGE_SUFFIXES, ImageFolderSource, open_source

    opened: list[Any] = []
    try:
        for i, spec in enumerate(specs):
            path = Path(str(spec)).expanduser()
            if isinstance(spec, str) and "://" not in spec and path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                opened.append(ImageSource(str(spec), (path,)))
            elif isinstance(spec, str) and path.is_dir():
                opened.append(ImageSource(str(spec), tuple(ImageFolderSource(path).files)))
            else:
                opened.append(open_source(spec, i))
    except DeployError:
        for source in opened:
            if not isinstance(source, ImageSource):
                source.close()
        raise
    return opened


def resolve_names(cfg: DictConfig) -> list[str] | None:
    """The class names `names` or `data` give (None: the detector's own; see the module docstring)."""
    if cfg.names:
        return [str(n) for n in cfg.names]
    if has_data(cfg.data):
        return list(class_names(choose_data(cfg.data, cfg.builtin, cfg.weights)))
    return None


class _Names:
    """Output file names that stay unique within one run (``a.jpg``, ``a_2.jpg``, ...)."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def unique(self, stem: str) -> str:
        name, n = stem, 1
        while name in self.used:
            n += 1
            name = f"{stem}_{n}"
        self.used.add(name)
        return name


def _image_suffix(path: Path) -> str:
    """The annotated copy keeps the input's format when OpenCV writes it losslessly or as JPEG, else JPEG."""
    suffix = path.suffix.lower()
    return suffix if suffix in (".jpg", ".jpeg", ".png", ".bmp") else ".jpg"


def _write_image(path: Path, image: np.ndarray) -> Path:
    """Encode `image` (BGR uint8) by `path`'s suffix and write it atomically."""
    ok, encoded = cv2.imencode(path.suffix, image)
    if not ok:
        raise DeployError(f"{path}: OpenCV cannot encode this image")
    return write_atomic(path, encoded.tobytes())


def _frames(source: Any, limit: int | None) -> Iterator[tuple[int, np.ndarray]]:
    index = 0
    while limit is None or index < limit:
        frame = source.read()
        if frame is None:
            return
        yield index, frame
        index += 1


def predict(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Path]]:
    """Detect with `cfg.weights` on every source of `cfg.source`.

    Args:
        cfg: the composed `conf/predict.yaml` (validated here first).

    Returns:
        ``(metrics, artifacts)``: ``predict/images``, ``predict/frames``,
        ``predict/detections``; the paths ``run_dir``, ``labels`` (a folder),
        ``json`` and ``video_<i>`` per video source (those written).

    Raises:
        YoloSlimError: a bad config, model file or source.
    """
    from yolo_slim.deploy.models import open_detector
    from yolo_slim.deploy.predictions import PredictionsJson, detection_records, yolo_label_lines
    from yolo_slim.deploy.writers import VideoSink, draw_detections

    cfg = validate_config(cfg, "predict")
    out = _output_dir(cfg)
    o = cfg.output
    if o.video_suffix not in (".mp4", ".avi"):
        raise ConfigError(f"output.video_suffix: expected .mp4 or .avi, got {o.video_suffix!r}")
    specs = list(cfg.source) if isinstance(cfg.source, (list, ListConfig)) else [cfg.source]
    if not specs:
        raise ConfigError("predict: source is empty; give source=PATH (an image, image folder, video, camera index or stream URL)")
    detector = open_detector(cfg.weights, cfg.model.cfg, classes=cfg.model.classes, img_size=cfg.img_size, device=str(cfg.device),
                             names=resolve_names(cfg), conf_thres=float(cfg.conf_thres), iou_thres=float(cfg.iou_thres),
                             max_det=int(cfg.max_det))
    names = list(detector.names)
    sources = open_sources(specs)
    out.mkdir(parents=True, exist_ok=True)
    labels_dir = out / "labels"
    settings = {"conf_thres": float(cfg.conf_thres), "iou_thres": float(cfg.iou_thres), "max_det": int(cfg.max_det),
                "input_hw": list(detector.input_hw)}
    json_out = PredictionsJson(out / "predictions.json", {"model": str(cfg.weights or cfg.model.cfg), "names": names,
                                                          "settings": settings}) if o.json else None
    unique = _Names()
    counts = {"images": 0, "frames": 0, "detections": 0}
    artifacts: dict[str, Path] = {"run_dir": out}

    def emit(image: np.ndarray, dets: np.ndarray, stem: str, record: dict[str, Any]) -> None:
        counts["detections"] += len(dets)
        if o.labels:
            lines = yolo_label_lines(dets, image.shape[:2], bool(o.label_scores))
            record["labels"] = str(write_atomic(labels_dir / f"{stem}.txt", "".join(f"{line}\n" for line in lines)))
        if json_out is not None:
            json_out.write({**record, "height": int(image.shape[0]), "width": int(image.shape[1]),
                            "detections": detection_records(dets, names)})

    try:
        for i, source in enumerate(sources):
            if isinstance(source, ImageSource):
                for path in track(source.files, f"predict: {source.spec}"):
                    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                    if image is None:
                        raise DeployError(f"{path}: cannot read image")
                    dets = detector.detect(image)
                    stem = unique.unique(path.stem)
                    record: dict[str, Any] = {"source": source.spec, "file": str(path)}
                    if o.images:
                        record["image"] = str(_write_image(out / f"{stem}{_image_suffix(path)}", draw_detections(image, dets, names)))
                    emit(image, dets, stem, record)
                    counts["images"] += 1
                continue
            stem = unique.unique(Path(str(specs[i])).stem if Path(str(specs[i])).is_file() else source.name)
            sink = VideoSink(out / f"{stem}{o.video_suffix}", source.fps) if o.images else None
            limit = OmegaConf.select(cfg, "max_frames")
            total = min(x for x in (source.length, limit) if x is not None) if (source.length or limit) else None
            try:
                for index, frame in track(_frames(source, limit), f"predict: {specs[i]}", total=total):
                    dets = detector.detect(frame)
                    if sink is not None:
                        sink.write(draw_detections(frame, dets, names))
                    emit(frame, dets, f"{stem}_{index:06d}", {"source": str(specs[i]), "frame": index})
                    counts["frames"] += 1
            finally:
                if sink is not None:
                    sink.close()
                source.close()
            if sink is not None:
                artifacts[f"video_{i}"] = sink.path
    except BaseException:
        if json_out is not None:
            json_out.discard()
        for source in sources[i + 1:]:
            if not isinstance(source, ImageSource):
                source.close()
        raise
    if o.labels:
        artifacts["labels"] = labels_dir
    if json_out is not None:
        artifacts["json"] = json_out.close()
    metrics = {f"predict/{k}": float(v) for k, v in counts.items()}
    _report(counts, artifacts, bool(o.images))
    return metrics, artifacts


def _report(counts: dict[str, int], artifacts: dict[str, Path], images: bool) -> None:
    lines = [f"predict: {counts['images']} images, {counts['frames']} video frames, {counts['detections']} detections"]
    if images and counts["images"]:
        lines.append(f"  annotated images: {artifacts['run_dir']}")
    lines += [f"  annotated video:  {path}" for key, path in artifacts.items() if key.startswith("video_")]
    if "labels" in artifacts:
        lines.append(f"  labels:           {artifacts['labels']} (class cx cy w h score, normalised)")
    if "json" in artifacts:
        lines.append(f"  detections:       {artifacts['json']}")
    print("\n".join(lines), flush=True)
