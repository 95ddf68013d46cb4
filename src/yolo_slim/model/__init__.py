"""yolo_slim.model: the PyTorch network built from a parsed darknet cfg."""

from __future__ import annotations

from yolo_slim.model.darknet import Darknet
from yolo_slim.model.loading import load_model

__all__ = ["Darknet", "load_model"]
