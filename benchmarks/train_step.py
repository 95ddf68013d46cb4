"""Images/s of a training step through Lightning against a plain PyTorch loop.

Both run the same `YoloLitModule` pieces on the same batch in one process: forward,
YOLO loss, backward, SGD step, LR schedule and EMA update. The Lightning side adds
what a real run has (the fit loop, logging of the loss terms, the optimizer-step
hooks); checkpointing, validation, progress bars and loggers are off on both sides.
Rounds alternate between the two so machine noise hits both alike; the median is
reported, and the overhead is ``plain_images_per_s / lightning_images_per_s - 1``.

With ``--bf16`` each round also times Lightning with ``precision="bf16-mixed"`` (what
``trainer.precision=auto`` picks on a CPU with native bf16: AMX or AVX-512 BF16) and reports its speed-up over the
float32 Lightning step.

    python benchmarks/train_step.py [--cfg yolov4-tiny] [--img-size 256] [--batch 8] [--bf16]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from yolo_slim.lit.module import YoloLitModule

ROOT = Path(__file__).resolve().parents[1]


class SameBatch(Dataset):
    """``steps`` copies of one batch (the collate passes it through)."""

    def __init__(self, batch: dict, steps: int) -> None:
        self.batch, self.steps = batch, steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int) -> dict:
        return self.batch


class StepTimer(pl.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_batch_end(self, *args) -> None:
        self.times.append(time.perf_counter())


def make_batch(batch: int, img_size: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, img_size, img_size, generator=g)
    rows = []
    for i in range(batch):
        for _ in range(4):
            wh = torch.rand(2, generator=g) * 0.3 + 0.05
            xy = torch.rand(2, generator=g) * (1 - wh) + wh / 2
            rows.append(torch.cat([torch.tensor([float(i), float(len(rows) % 2)]), xy, wh]))
    return {"images": images, "targets": torch.stack(rows)}


def build(cfg: str, img_size: int) -> YoloLitModule:
    torch.manual_seed(0)
    return YoloLitModule(cfg=cfg, classes=2, img_size=img_size, scheduler={"warmup_steps": 0})


def time_lightning(cfg: str, batch: dict, steps: int, warmup: int, precision: str = "32-true") -> float:
    lit = build(cfg, batch["images"].shape[-1])
    timer = StepTimer()
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, max_epochs=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
        accumulate_grad_batches=1, gradient_clip_val=10.0, callbacks=[timer], precision=precision,
    )
    loader = DataLoader(SameBatch(batch, steps + warmup), batch_size=None, num_workers=0)
    trainer.fit(lit, train_dataloaders=loader)
    t = timer.times
    return (len(t) - 1 - warmup) * batch["images"].shape[0] / (t[-1] - t[warmup])


def time_plain(cfg: str, batch: dict, steps: int, warmup: int) -> float:
    lit = build(cfg, batch["images"].shape[-1])
    lit.model.train()
    hp = lit.hparams
    optimizer = torch.optim.SGD(lit.parameter_groups(hp.optimizer["weight_decay"]), lr=hp.optimizer["lr"], momentum=hp.optimizer["momentum"], nesterov=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    images, targets = batch["images"], batch["targets"]
    times = []
    for _ in range(steps + warmup):
        outputs = lit.model(images)
        loss, _ = lit.criterion(outputs, targets, (images.shape[2], images.shape[3]))
        (loss * images.shape[0]).backward()
        torch.nn.utils.clip_grad_norm_(lit.model.parameters(), 10.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        lit.ema.update(lit.model)
        times.append(time.perf_counter())
    return (len(times) - 1 - warmup) * images.shape[0] / (times[-1] - times[warmup])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cfg", default=str(ROOT / "conf" / "model" / "cfg" / "yolov3-demo.cfg"))
    parser.add_argument("--img-size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--bf16", action="store_true", help="also time Lightning with precision=bf16-mixed")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    batch = make_batch(args.batch, args.img_size)
    lightning, plain, bf16 = [], [], []
    for r in range(args.rounds):
        plain.append(time_plain(args.cfg, batch, args.steps, args.warmup))
        lightning.append(time_lightning(args.cfg, batch, args.steps, args.warmup))
        line = f"round {r + 1}: plain {plain[-1]:.2f} img/s, lightning {lightning[-1]:.2f} img/s"
        if args.bf16:
            bf16.append(time_lightning(args.cfg, batch, args.steps, args.warmup, precision="bf16-mixed"))
            line += f", lightning bf16-mixed {bf16[-1]:.2f} img/s"
        print(line, flush=True)
    p, lt = statistics.median(plain), statistics.median(lightning)
    print(f"model {Path(args.cfg).name} @ {args.img_size} px, batch {args.batch}, {args.steps} timed steps x {args.rounds} rounds, {torch.get_num_threads()} threads")
    print(f"plain PyTorch loop: {p:.2f} images/s (median)")
    print(f"Lightning:          {lt:.2f} images/s (median)")
    print(f"Lightning overhead: {100 * (p / lt - 1):+.1f}% (goal < 5%)")
    if bf16:
        b = statistics.median(bf16)
        print(f"Lightning bf16-mixed: {b:.2f} images/s (median), {b / lt:.2f}x the float32 step")


if __name__ == "__main__":
    main()
