"""yolo_slim.deploy."""
