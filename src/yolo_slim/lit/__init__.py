"""yolo_slim.lit."""
