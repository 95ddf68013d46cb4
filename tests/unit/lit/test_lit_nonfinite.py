"""Training stops with one clear line on a non-finite loss (Lightning would go on)."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from yolo_slim.errors import TrainingError
from yolo_slim.lit.module import YoloLitModule


def _batches(n: int, poison_at: int | None):
    targets = torch.tensor([[0, 0, 0.5, 0.5, 0.3, 0.3], [1, 0, 0.4, 0.6, 0.2, 0.4]])
    out = []
    for i in range(n):
        images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(i))
        if i == poison_at:
            images[1, :, 10:20, 10:20] = float("nan")
        out.append({"images": images, "targets": targets})
    return DataLoader(out, batch_size=None)  # the items are ready batches


def _trainer(tmp_path) -> pl.Trainer:
    return pl.Trainer(
        default_root_dir=tmp_path, max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )


def test_non_finite_loss_stops_training_with_one_line(tmp_path) -> None:
    lit = YoloLitModule(cfg="yolov3-tiny", classes=1, img_size=64)
    with pytest.raises(TrainingError) as info:
        _trainer(tmp_path).fit(lit, train_dataloaders=_batches(4, poison_at=2))
    message = str(info.value)  # batches 0 and 1 trained: finite losses pass
    assert "\n" not in message
    assert message.startswith("train: the loss is nan (non-finite; here box nan, obj nan, cls nan) at epoch 0, optimizer step 2, batch 2; training stopped.")


def test_check_without_a_trainer() -> None:
    lit = YoloLitModule(cfg="yolov3-tiny", classes=1, img_size=64)
    parts = type("Parts", (), {"box": torch.tensor(1.0), "obj": torch.tensor(float("inf")), "cls": torch.tensor(0.0)})()
    lit.check_finite_loss(torch.tensor(2.0), parts, 0)
    with pytest.raises(TrainingError, match=r"the loss is inf \(non-finite; here box 1, obj inf, cls 0\) at batch 7"):
        lit.check_finite_loss(torch.tensor(float("inf")), parts, 7)
