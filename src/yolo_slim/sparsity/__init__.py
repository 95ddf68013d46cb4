"""yolo_slim.sparsity."""
