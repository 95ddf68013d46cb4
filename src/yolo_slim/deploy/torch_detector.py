"""`TorchDetector`: a `Darknet` as a BGR-image detector, with `OpenVINODetector`'s interface.

Per image: the deploy letterbox (`yolo_slim.ops.letterbox`, grey 114 padding, as the IR
path), BGR -> RGB, scaled to [0, 1], the model in eval mode, the project's NMS
(`yolo_slim.ops.nms.non_max_suppression`) and boxes mapped back to the original image.
`predict` runs `.weights` and `.ckpt` files through it exactly as it runs an IR through
`OpenVINODetector`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from yolo_slim.model.darknet import Darknet
from yolo_slim.ops.letterbox import boxes_to_original, letterbox
from yolo_slim.ops.nms import non_max_suppression

PAD = (114, 114, 114)


class TorchDetector:
    """Detect objects with a PyTorch `Darknet`.

    Args:
        model: the network (put in eval mode on `device` here).
        names: class names, one per class of the model.
        device: a torch device (``cpu``, ``cuda``).
        conf_thres: score threshold (objectness x class probability) of the NMS.
        iou_thres: IoU threshold of the NMS.
        max_det: most detections per image.
        batch: images per forward pass in `detect_batch`.

    Attributes:
        input_hw: the (height, width) images are letterboxed to: the cfg's `[net]` size.
        names: class names.
    """

    def __init__(
        self,
        model: Darknet,
        names: Sequence[str],
        device: str = "cpu",
        conf_thres: float = 0.25,
        iou_thres: float = 0.45,
        max_det: int = 300,
        batch: int = 1,
    ) -> None:
        self.model = model.to(device).eval()
        self.device = device
        self.names = list(names)
        self.input_hw = tuple(int(v) for v in model.cfg.input_hw)
        self.conf_thres, self.iou_thres, self.max_det = float(conf_thres), float(iou_thres), int(max_det)
        self.batch = int(batch)

    def detect(self, image_bgr: np.ndarray) -> np.ndarray:
        """Detect in one BGR uint8 image `[H, W, 3]`.

        Returns:
            np.ndarray[K, 6] float32: x1, y1, x2, y2 (original pixels), score, class.
        """
        return self.detect_batch([image_bgr])[0]

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Detect in several BGR uint8 images, `batch` per forward pass.

        Returns:
            One np.ndarray[K, 6] per image, as `detect`.
        """
        results: list[np.ndarray] = []
        for start in range(0, len(images), self.batch):
            chunk = list(images[start : start + self.batch])
            boxed = [letterbox(image, self.input_hw, color=PAD) for image in chunk]
            rgb = np.stack([b[:, :, ::-1] for b, _ in boxed]).transpose(0, 3, 1, 2)
            tensor = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device, torch.float32) / 255.0
            with torch.no_grad():
                detections = non_max_suppression(self.model(tensor), self.conf_thres, self.iou_thres, max_det=self.max_det)
            for image, (_, info), dets in zip(chunk, boxed, detections):
                out = dets.cpu().numpy().astype(np.float32)
                if len(out):
                    out[:, :4] = boxes_to_original(out[:, :4], info, image.shape[:2])
                results.append(out.reshape(-1, 6))
        return results

    def info(self) -> dict[str, Any]:
        """A short description for logs."""
        return {"cfg": str(self.model.cfg.source), "input_hw": self.input_hw, "device": self.device}
