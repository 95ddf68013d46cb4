"""What the BNSparsity callback adds to a training step, measured side by side.

Runs the same Lightning training (model, data, optimizer) with and without the
callback, alternating the two several times in one process, and reports the median
time per optimizer step of each and their ratio (goal: under 1.02).

    python benchmarks/sparsity_step.py [--cfg yolov4-tiny] [--img-size 160] [--steps 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from yolo_slim.model import Darknet
from yolo_slim.sparsity import BNSparsity


class _StepModule(pl.LightningModule):
    """A quadratic loss on the head maps: the callback's cost does not depend on the loss."""

    def __init__(self, cfg: str, img_size: int) -> None:
        super().__init__()
        self.model = Darknet.from_cfg(cfg, classes=2, img_size=img_size)

    def training_step(self, batch, batch_idx):
        return sum((m**2).mean() for m in self.model.forward_maps(batch[0]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1e-3, momentum=0.9)


class _StepTimer(pl.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.times.append(time.perf_counter() - self._start)


def _run(args, sparse: bool) -> list[float]:
    torch.manual_seed(0)
    module = _StepModule(args.cfg, args.img_size)
    timer = _StepTimer()
    callbacks = [timer] + ([BNSparsity(s=1e-3, scope="prunable", log_every_n_epochs=10**6, predict_percents=())] if sparse else [])
    data = TensorDataset(torch.rand(args.steps * args.batch, 3, args.img_size, args.img_size))
    with tempfile.TemporaryDirectory() as root:  # the callback's gamma plot goes here
        trainer = pl.Trainer(
            accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, callbacks=callbacks, default_root_dir=root,
        )
        trainer.fit(module, DataLoader(data, batch_size=args.batch))
    return timer.times[1:]  # the first step warms up allocators


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cfg", default="yolov4-tiny")
    parser.add_argument("--img-size", type=int, default=160)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    plain: list[float] = []
    sparse: list[float] = []
    for _ in range(args.rounds):  # alternate, so drifting machine load hits both alike
        plain += _run(args, sparse=False)
        sparse += _run(args, sparse=True)
    p, s = statistics.median(plain), statistics.median(sparse)
    print(f"{args.cfg} @{args.img_size}, batch {args.batch}, {len(plain)} steps each")
    print(f"median step without BNSparsity: {p * 1000:.1f} ms")
    print(f"median step with BNSparsity:    {s * 1000:.1f} ms")
    print(f"ratio: {s / p:.4f} (goal < 1.02)")


if __name__ == "__main__":
    main()
