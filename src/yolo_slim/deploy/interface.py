"""`ImageDetector`: what every detector offers (`OpenVINODetector`, `TorchDetector`).

A detector takes BGR uint8 images as OpenCV reads them and returns, per image,
``np.ndarray[K, 6]`` float32 rows of x1, y1, x2, y2 (original pixels), score, class;
predict, val and the video apps use nothing else.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import numpy as np


class ImageDetector(abc.ABC):
    """Detect objects in BGR images; a subclass implements `detect_batch`."""

    @abc.abstractmethod
    def detect_batch(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Detect in several BGR uint8 images ``[H, W, 3]``.

        Returns:
            One np.ndarray[K, 6] float32 per image: x1, y1, x2, y2 (original pixels), score, class.
        """

    def detect(self, image_bgr: np.ndarray) -> np.ndarray:
        """Detect in one BGR uint8 image `[H, W, 3]`.

        Returns:
            np.ndarray[K, 6] float32: x1, y1, x2, y2 (original pixels), score, class.
        """
        return self.detect_batch([image_bgr])[0]
