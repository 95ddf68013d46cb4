"""yolo_slim.metrics."""
