"""The detection dataset: images + YOLO labels -> letterboxed, augmented tensors.

:class:`YoloDataset` checks every image and label file when it is built (counting
problems in a :class:`~yolo_slim.data.labels.DataReport`, dropping what cannot be
used, or raising in strict mode), optionally keeps the images in RAM, and produces
one sample dict per image. :func:`collate_detection` stacks samples into a batch.

Randomness: indexed with a :class:`~yolo_slim.data.sampling.SampleKey` (what the
training sampler yields), a sample's augmentation is a function of ``(seed, epoch,
index)`` alone (:func:`~yolo_slim.data.sampling.sample_rng`), whichever process
loads it, so an interrupted run resumes exactly. Indexed with a plain ``int``, it
draws from its own generator seeded by ``(a draw from torch's default generator,
index)``: reproducible after ``seed_everything(seed, workers=True)``, different from
call to call.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from yolo_slim.data.augment import FILL_VALUE, AugmentConfig, flip_lr, hsv_jitter, mosaic4, random_affine
from yolo_slim.data.formats import label_path_for
from yolo_slim.data.labels import DataReport, LabelIssue, read_labels
from yolo_slim.data.sampling import SampleKey, sample_rng
from yolo_slim.errors import ConfigError, DataError
from yolo_slim.ops.letterbox import RESIZE_INTERPOLATION

__all__ = ["YoloDataset", "collate_detection"]

_log = logging.getLogger(__name__)

Sample = dict[str, Any]


def _letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float, int, int]:
    """Resizes keeping the aspect ratio and pads to a centred ``size`` square.

    Args:
        image: ``uint8 [H, W, 3]``.
        size: Output side in pixels.

    Returns:
        ``(out, scale, pad_x, pad_y)``: ``uint8 [size, size, 3]``; a point ``(x, y)``
        of the input lands at ``(x * scale + pad_x, y * scale + pad_y)``.
    """
    h, w = image.shape[:2]
    scale = min(size / h, size / w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    if (new_h, new_w) != (h, w):
        image = cv2.resize(image, (new_w, new_h), interpolation=RESIZE_INTERPOLATION)
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
    out = cv2.copyMakeBorder(
        image, pad_y, size - new_h - pad_y, pad_x, size - new_w - pad_x,
        cv2.BORDER_CONSTANT, value=(FILL_VALUE, FILL_VALUE, FILL_VALUE),
    )
    return out, scale, pad_x, pad_y


def _read_image(path: Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray | None:
    """Reads an image as ``uint8 [H, W, 3]`` BGR; None if missing or undecodable.

    ``flags`` are OpenCV's (``cv2.IMREAD_REDUCED_COLOR_8`` decodes at 1/8 size).
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    image = cv2.imdecode(data, flags)
    if image is None or image.size == 0:
        return None
    return image


def _resize_longest(image: np.ndarray, size: int) -> np.ndarray:
    """Resizes so the longest side is ``size`` pixels, keeping the aspect ratio."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    if scale == 1:
        return image
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    return cv2.resize(image, (new_w, new_h), interpolation=RESIZE_INTERPOLATION)


def _to_pixels(labels: np.ndarray, width: float, height: float) -> np.ndarray:
    """``[M, 5]`` cls, cx, cy, w, h normalised -> cls, x1, y1, x2, y2 in pixels."""
    out = np.empty((len(labels), 5), dtype=np.float32)
    out[:, 0] = labels[:, 0]
    out[:, 1] = (labels[:, 1] - labels[:, 3] / 2) * width
    out[:, 2] = (labels[:, 2] - labels[:, 4] / 2) * height
    out[:, 3] = (labels[:, 1] + labels[:, 3] / 2) * width
    out[:, 4] = (labels[:, 2] + labels[:, 4] / 2) * height
    return out


def _to_normalised(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """``[M, 5]`` cls, x1, y1, x2, y2 in pixels -> cls, cx, cy, w, h normalised."""
    out = np.empty((len(boxes), 5), dtype=np.float32)
    out[:, 0] = boxes[:, 0]
    out[:, 1] = (boxes[:, 1] + boxes[:, 3]) / 2 / width
    out[:, 2] = (boxes[:, 2] + boxes[:, 4]) / 2 / height
    out[:, 3] = (boxes[:, 3] - boxes[:, 1]) / width
    out[:, 4] = (boxes[:, 4] - boxes[:, 2]) / height
    return out


class YoloDataset(Dataset):
    """Images with YOLO labels, letterboxed to a square and optionally augmented.

    Building the dataset reads every label file and decodes every image once
    (threads; decoding at reduced size unless ``cache``), so bad data is found at
    setup rather than mid-epoch. The findings are in :attr:`report`.

    Each sample is a dict:

    * ``image``: ``float32 [3, S, S]`` RGB in [0, 1], ``S = img_size``;
    * ``targets``: ``float32 [M, 5]``: ``cls, cx, cy, w, h`` normalised to the
      ``S x S`` sample;
    * ``path``: the image path (str);
    * ``shape``: original ``(height, width)`` in pixels;
    * ``letterbox``: ``(scale, pad_x, pad_y)`` mapping original pixels to sample
      pixels (``x * scale + pad_x``); exact for unaugmented samples, and for
      augmented ones it describes the letterbox of the image before augmentation.

    Without augmentation every labelled box is kept (only clipped to the image), so
    evaluation sees all objects; with augmentation boxes under 2 px or mostly cut
    off are dropped.

    Args:
        images: Image paths; labels are found with
            :func:`~yolo_slim.data.formats.label_path_for` unless ``label_reader``
            is given.
        num_classes: Number of classes; larger class ids are label errors.
        img_size: Sample side ``S`` in pixels, a positive multiple of 32.
        augment: Training augmentation, or None for plain letterboxing.
        cache: Keep every image in RAM (resized to longest side ``S``), uint8.
        strict: Raise a :class:`~yolo_slim.errors.DataError` on any data issue
            instead of repairing or dropping it.
        name: Name used in the report (e.g. ``"train"``).
        workers: Threads used for the initial check; default ``os.cpu_count()``.
        label_reader: ``image path -> (labels, issues)`` as
            :func:`~yolo_slim.data.labels.read_labels` returns them, for labels that
            are not one file per image (e.g. :meth:`~yolo_slim.data.formats.DataSpec.read_labels`
            for COCO json); called once per image while the dataset is built.

    Raises:
        DataError: ``strict`` and any issue found, or no usable image left.
        ConfigError: Bad ``num_classes`` or ``img_size``.
    """

    def __init__(
        self,
        images: Sequence[str | Path],
        num_classes: int,
        img_size: int = 416,
        augment: AugmentConfig | None = None,
        cache: bool = False,
        strict: bool = False,
        *,
        name: str = "dataset",
        workers: int | None = None,
        label_reader: Callable[[Path], tuple[np.ndarray, list[LabelIssue]]] | None = None,
    ) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
        if isinstance(img_size, bool) or not isinstance(img_size, int) or img_size < 32 or img_size % 32:
            raise ConfigError(f"img_size must be a positive multiple of 32, got {img_size!r}")
        self.num_classes = num_classes
        self.img_size = img_size
        self.augment = augment
        self.strict = strict
        self.report = DataReport(name=name)

        paths = [Path(p) for p in images]
        self.report.images = len(paths)
        workers = max(1, workers or os.cpu_count() or 1)
        check = self._load_resized if cache else self._check_image
        with ThreadPoolExecutor(max_workers=workers) as pool:
            loaded = list(pool.map(check, paths))

        self.images: list[Path] = []
        self.labels: list[np.ndarray] = []
        self._cache: list[tuple[np.ndarray, tuple[int, int]] | None] = []
        for path, result in zip(paths, loaded):
            if result is None:
                self.report.add(LabelIssue("image_unreadable", path, None, "image missing, unreadable or corrupt"))
                continue
            labels, issues = (
                label_reader(path) if label_reader is not None else read_labels(label_path_for(path), num_classes)
            )
            self.report.extend(issues)
            self.images.append(path)
            self.labels.append(labels)
            self._cache.append(result if cache else None)
        self.report.images_kept = len(self.images)
        self.report.boxes = int(sum(len(lb) for lb in self.labels))
        self.report.raise_if_strict(strict)
        if not self.images:
            raise DataError(f"{name}: none of the {len(paths)} images could be read\n{self.report.summary()}")
        self._warned: set[int] = set()

    # ------------------------------------------------------------------ loading
    def _check_image(self, path: Path) -> bool | None:
        """Decodes an image cheaply (1/8 size) to prove it is readable."""
        return True if _read_image(path, cv2.IMREAD_REDUCED_COLOR_8) is not None else None

    def _load_resized(self, path: Path) -> tuple[np.ndarray, tuple[int, int]] | None:
        """Reads an image for the RAM cache: resized copy and original (h, w)."""
        image = _read_image(path)
        if image is None:
            return None
        return _resize_longest(image, self.img_size), (int(image.shape[0]), int(image.shape[1]))

    def load_image(self, index: int) -> tuple[np.ndarray, tuple[int, int]]:
        """Loads image ``index`` resized to longest side ``img_size``.

        Returns:
            ``(image, (h0, w0))``: ``uint8 [h, w, 3]`` BGR with ``max(h, w) ==
            img_size``, and the original height and width (pixels).

        Raises:
            DataError: The image cannot be read (it passed the initial check, so it
                changed or is partly corrupt).
        """
        cached = self._cache[index]
        if cached is not None:
            return cached
        path = self.images[index]
        image = _read_image(path)
        if image is None:
            raise DataError(f"{path}: image became unreadable after the dataset check")
        h0, w0 = image.shape[:2]
        return _resize_longest(image, self.img_size), (h0, w0)

    # ------------------------------------------------------------------ samples
    def __len__(self) -> int:
        return len(self.images)

    def _rng(self, index: int, key: SampleKey | None) -> np.random.Generator:
        if key is not None:
            return sample_rng(key.seed, key.epoch, index)
        # a draw from torch's generator of this process: seeded per worker by the
        # DataLoader, it advances with every sample
        seed = int(torch.randint(0, 2**62, (1,)).item())
        return np.random.default_rng([seed, index])

    def __getitem__(self, item: int | SampleKey) -> Sample:
        key = item if isinstance(item, SampleKey) else None
        index = int(item.index if key is not None else item)
        try:
            return self._sample(index, key)
        except DataError:
            if self.strict:
                raise
            if index not in self._warned:
                self._warned.add(index)
                _log.warning("%s: unreadable at load time, using the next image instead", self.images[index])
            for step in range(1, min(len(self), 8)):
                try:
                    return self._sample((index + step) % len(self), key)
                except DataError:
                    continue
            raise

    def _sample(self, index: int, key: SampleKey | None = None) -> Sample:
        size = self.img_size
        aug = self.augment
        rng = self._rng(index, key) if aug is not None else None
        image, (h0, w0) = self.load_image(index)
        h, w = image.shape[:2]
        scale = size / max(h0, w0)

        if aug is not None and rng is not None and aug.mosaic > 0 and rng.random() < aug.mosaic:
            others = rng.integers(0, len(self), 3)
            tiles, tile_boxes = [image], [_to_pixels(self.labels[index], w, h)]
            for j in others:
                tile, _ = self.load_image(int(j))
                tiles.append(tile)
                tile_boxes.append(_to_pixels(self.labels[int(j)], tile.shape[1], tile.shape[0]))
            canvas, boxes = mosaic4(tiles, tile_boxes, rng, size)
            out, boxes = random_affine(
                canvas, boxes, rng, scale=aug.scale, translate=aug.translate, out_size=(size, size)
            )
            pad_x, pad_y = (size - w) // 2, (size - h) // 2  # the letterbox of the base image
        else:
            out, _, pad_x, pad_y = _letterbox(image, size)
            boxes = _to_pixels(self.labels[index], w, h)
            boxes[:, [1, 3]] += pad_x
            boxes[:, [2, 4]] += pad_y
            if aug is not None and rng is not None:
                out, boxes = random_affine(
                    out, boxes, rng, scale=aug.scale, translate=aug.translate, out_size=(size, size)
                )
            else:
                boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, size)
                boxes[:, [2, 4]] = boxes[:, [2, 4]].clip(0, size)

        if aug is not None and rng is not None:
            out = hsv_jitter(out, rng, aug.hsv_h, aug.hsv_s, aug.hsv_v)
            if aug.flip_lr > 0 and rng.random() < aug.flip_lr:
                out, boxes = flip_lr(out, boxes)

        # numpy, single-threaded: torch's intra-op threads only contend with the loader workers here
        chw = out[:, :, ::-1].transpose(2, 0, 1).astype(np.float32)
        chw /= np.float32(255.0)
        tensor = torch.from_numpy(chw)
        return {
            "image": tensor,
            "targets": torch.from_numpy(_to_normalised(boxes, size, size)),
            "path": str(self.images[index]),
            "shape": (int(h0), int(w0)),
            "letterbox": (float(scale), float(pad_x), float(pad_y)),
        }


def collate_detection(batch: Sequence[Sample]) -> dict[str, Any]:
    """Stacks samples of :class:`YoloDataset` into a batch.

    Args:
        batch: ``B`` sample dicts.

    Returns:
        A dict with

        * ``images``: ``float32 [B, 3, S, S]`` RGB in [0, 1];
        * ``targets``: ``float32 [M, 6]``: ``image index in batch, cls, cx, cy, w,
          h`` (normalised), ``M`` boxes over the whole batch;
        * ``paths``: ``list[str]`` of length ``B``;
        * ``shapes``: ``int64 [B, 2]`` original ``(height, width)``;
        * ``letterbox``: ``float32 [B, 3]``: ``scale, pad_x, pad_y``.
    """
    images = torch.stack([s["image"] for s in batch])
    targets = []
    for i, sample in enumerate(batch):
        t = sample["targets"]
        targets.append(torch.cat([torch.full((len(t), 1), float(i)), t], dim=1))
    return {
        "images": images,
        "targets": torch.cat(targets, dim=0) if targets else torch.zeros((0, 6)),
        "paths": [s["path"] for s in batch],
        "shapes": torch.tensor([s["shape"] for s in batch], dtype=torch.int64).reshape(-1, 2),
        "letterbox": torch.tensor([s["letterbox"] for s in batch], dtype=torch.float32).reshape(-1, 3),
    }
