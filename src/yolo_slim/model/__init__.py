"""yolo_slim.model."""
