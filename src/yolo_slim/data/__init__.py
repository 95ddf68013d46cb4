"""yolo_slim.data."""
