"""yolo_slim.prune."""
