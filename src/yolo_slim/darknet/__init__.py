"""yolo_slim.darknet."""
