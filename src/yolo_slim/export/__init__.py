"""yolo_slim.export."""
