"""Overrides shared by the integration tests that train: a tiny run of the real configs."""

from __future__ import annotations

# the built-in data at 64 px: 8 training and 4 validation images, batches of 4, no workers
TINY_DATA = [
    "img_size=64",
    "loader.batch_size=4",
    "loader.num_workers=0",
    "builtin.n_train=8",
    "builtin.n_val=4",
]

# CPU, no progress bar or model summary, CSV logs only
QUIET_CPU_TRAINER = [
    "device=cpu",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "logger=csv",
]
