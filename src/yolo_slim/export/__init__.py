"""yolo_slim.export: ONNX export, OpenVINO conversion and compression, parity checks.

The package is also the export task: ``yolo_slim.export(cfg)`` runs `yolo_slim.api.export`.
"""

from yolo_slim.api import callable_package

callable_package(__name__)
