"""yolo_slim: make darknet YOLO detectors slim and fast.

Sparsity training, channel and layer pruning, fine-tuning and OpenVINO deployment
for darknet-cfg YOLO models, as a PyTorch Lightning plugin configured with Hydra.
"""

from __future__ import annotations

__version__ = "0.1.0"
