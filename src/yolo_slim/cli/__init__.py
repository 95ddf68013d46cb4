"""Small argparse sub-commands of `python -m yolo_slim` (info, graph, sparsity)."""
