"""yolo_slim.graph."""
