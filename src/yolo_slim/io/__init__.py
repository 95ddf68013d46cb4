"""yolo_slim.io: files written safely and the checkpoint format.

`atomic` holds `write_atomic` and `write_json_atomic` (temporary file + rename, never
a half-written output) and `temporary_path`; `staging` commits a set of outputs at
once; `finite` finds NaN/inf in arrays; `run_dir` removes the run folder a command
stopped by a user error left holding only Hydra's files;
`checkpoint` reads and writes yolo_slim's Lightning checkpoints (raw and EMA weights,
the darknet cfg text inside). Both sit below `model/` and `lit/`, which import them.
"""
