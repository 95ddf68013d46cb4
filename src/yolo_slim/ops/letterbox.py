"""Letterbox resizing (keep aspect ratio, pad to a fixed shape) and its inverse.

The forward step is what the data pipeline and the deploy runtime apply to an
image before the network; the inverse maps predicted boxes back onto the
original image. Padding is split evenly between both sides (the odd pixel goes
to the bottom/right), so ``LetterboxInfo`` records the exact left/top offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import cv2
import numpy as np
import torch
from torch import Tensor

from yolo_slim.errors import DataError, YoloSlimError

BoxesT = TypeVar("BoxesT", Tensor, np.ndarray)

# The one resize filter of every image on its way to a network: training, validation,
# the export checks and deployment. Bilinear, as darknet, OpenCV's dnn blobs and the
# in-graph letterbox (`yolo_slim.deploy.graph`) resize. A model trained on INTER_AREA
# shrinks but deployed on bilinear ones saw other pixels at deployment: on the aerial
# tiles (416 px to 256) that cost 0.04 mAP@0.5 between PyTorch and OpenVINO.
RESIZE_INTERPOLATION = cv2.INTER_LINEAR


@dataclass(frozen=True)
class LetterboxInfo:
    """How an image was letterboxed.

    Attributes:
        scale: Resize factor applied to the original image (new / old).
        pad_x: Pixels of padding added on the left.
        pad_y: Pixels of padding added on the top.
        new_shape: (height, width) of the letterboxed image in pixels.
    """

    scale: float
    pad_x: float
    pad_y: float
    new_shape: tuple[int, int]


def _as_hw(new_shape: int | tuple[int, int]) -> tuple[int, int]:
    shape = (new_shape, new_shape) if isinstance(new_shape, (int, np.integer)) else tuple(new_shape)
    if len(shape) != 2 or any(int(s) != s or s <= 0 for s in shape):
        raise YoloSlimError(f"letterbox: new_shape must be a positive int or (height, width), got {new_shape!r}")
    return int(shape[0]), int(shape[1])


def letterbox(
    image: np.ndarray,
    new_shape: int | tuple[int, int],
    color: tuple[int, int, int] = (114, 114, 114),
    scaleup: bool = True,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, LetterboxInfo]:
    """Resize an image keeping its aspect ratio and pad it to ``new_shape``.

    Args:
        image: np.ndarray[H, W, 3] uint8 (any channel order; it is kept).
        new_shape: Target size, an int for a square or (height, width), pixels.
        color: Padding value per channel.
        scaleup: If False, images smaller than ``new_shape`` are only padded,
            never enlarged.
        out: Write into this np.ndarray[new_h, new_w, 3] uint8 (e.g. a view into
            a preallocated input tensor) instead of a new array: the image is
            resized straight into place and only the padding is filled, no copy.

    Returns:
        The letterboxed np.ndarray[new_h, new_w, 3] uint8 (``out`` if given) and
        the ``LetterboxInfo`` needed to map boxes back.
    """
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        desc = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise DataError(f"letterbox: expected an HxWx3 uint8 image, got a {desc}")
    h, w = image.shape[:2]
    if h == 0 or w == 0:
        raise DataError(f"letterbox: image has an empty side, shape {image.shape}")
    info, (resized_h, resized_w) = letterbox_geometry((h, w), new_shape, scaleup)
    new_h, new_w = info.new_shape
    if out is None:
        out = np.empty((new_h, new_w, 3), dtype=np.uint8)
    elif out.shape != (new_h, new_w, 3) or out.dtype != np.uint8:
        raise YoloSlimError(f"letterbox: out must be a uint8 array of shape {(new_h, new_w, 3)}, got {out.dtype} {out.shape}")
    left, top = int(info.pad_x), int(info.pad_y)
    fill = np.asarray(color, dtype=np.uint8)
    out[:top], out[top + resized_h :] = fill, fill
    out[top : top + resized_h, :left], out[top : top + resized_h, left + resized_w :] = fill, fill
    roi = out[top : top + resized_h, left : left + resized_w]
    if (resized_w, resized_h) == (w, h):
        roi[...] = image
    else:
        resized = cv2.resize(image, (resized_w, resized_h), dst=roi, interpolation=RESIZE_INTERPOLATION)
        if resized is not roi:  # OpenCV could not write into this view: copy
            roi[...] = resized
    return out, info


def letterbox_geometry(
    image_hw: tuple[int, int], new_shape: int | tuple[int, int], scaleup: bool = True
) -> tuple[LetterboxInfo, tuple[int, int]]:
    """Where ``letterbox`` puts an image of ``image_hw``, without touching pixels.

    Args:
        image_hw: (height, width) of the image, pixels, both > 0.
        new_shape: Target size, an int for a square or (height, width), pixels.
        scaleup: If False, images smaller than ``new_shape`` are never enlarged.

    Returns:
        The ``LetterboxInfo`` and the (height, width) the image is resized to
        before padding.
    """
    h, w = image_hw
    new_h, new_w = _as_hw(new_shape)
    scale = min(new_h / h, new_w / w)
    if not scaleup:
        scale = min(scale, 1.0)
    resized_w = max(1, min(new_w, round(w * scale)))
    resized_h = max(1, min(new_h, round(h * scale)))
    left = (new_w - resized_w) // 2
    top = (new_h - resized_h) // 2
    info = LetterboxInfo(scale=float(scale), pad_x=float(left), pad_y=float(top), new_shape=(new_h, new_w))
    return info, (resized_h, resized_w)


def boxes_to_original(boxes_xyxy: BoxesT, info: LetterboxInfo, orig_hw: tuple[int, int]) -> BoxesT:
    """Map boxes from letterboxed-image pixels back to original-image pixels.

    Args:
        boxes_xyxy: Tensor or np.ndarray [N, 4] of (x1, y1, x2, y2) in the
            letterboxed image; extra trailing columns are not allowed.
        info: What ``letterbox`` returned for this image.
        orig_hw: (height, width) of the original image in pixels.

    Returns:
        A new array of the same type, dtype and device, [N, 4], clipped to the
        original image.
    """
    if boxes_xyxy.ndim != 2 or boxes_xyxy.shape[1] != 4:
        raise YoloSlimError(f"boxes_to_original: expected boxes of shape [N, 4], got {tuple(boxes_xyxy.shape)}")
    h, w = orig_hw
    if isinstance(boxes_xyxy, Tensor):
        offset = torch.tensor([info.pad_x, info.pad_y] * 2, dtype=boxes_xyxy.dtype, device=boxes_xyxy.device)
        upper = torch.tensor([w, h] * 2, dtype=boxes_xyxy.dtype, device=boxes_xyxy.device)
        out = (boxes_xyxy - offset) / info.scale
        return torch.minimum(out.clamp(min=0), upper)
    if isinstance(boxes_xyxy, np.ndarray):
        offset = np.array([info.pad_x, info.pad_y] * 2, dtype=boxes_xyxy.dtype)
        out = (boxes_xyxy - offset) / info.scale
        return np.minimum(np.maximum(out, 0), np.array([w, h] * 2, dtype=out.dtype))
    raise YoloSlimError(f"boxes_to_original: expected a Tensor or np.ndarray, got {type(boxes_xyxy).__name__}")
