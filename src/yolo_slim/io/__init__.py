"""yolo_slim.io: files written safely and the checkpoint format.

`atomic` holds `write_atomic` (temporary file + rename, never a half-written output);
`checkpoint` reads and writes yolo_slim's Lightning checkpoints (raw and EMA weights,
the darknet cfg text inside). Both sit below `model/` and `lit/`, which import them.
"""
