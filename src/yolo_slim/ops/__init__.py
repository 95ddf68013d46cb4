"""yolo_slim.ops."""
