"""A minimal LightningModule around a tiny Darknet, to test BNSparsity in isolation."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset
from fixtures.cfg_texts import cfg_text, conv, head, net, shortcut

from yolo_slim.darknet.cfg import parse_cfg_text
from yolo_slim.model import Darknet

TINY_CFG = cfg_text(
    net(32),
    conv(8, stride=2),
    conv(4, 1),
    conv(8),
    shortcut(-3),
    conv(8, stride=2, activation="mish"),
    head(anchors="4,5, 8,9, 12,14", pad=True),
)


class TinyModule(pl.LightningModule):
    """Plain SGD on a quadratic loss of the head maps; BN kept in eval mode so that
    per-sample gradients are independent of how samples are batched."""

    def __init__(self, lr: float = 0.1, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.model = Darknet(parse_cfg_text(TINY_CFG, "<tiny>"))
        with torch.no_grad():
            for block in self.model.conv_blocks().values():
                if block.bn is not None:
                    block.bn.weight.uniform_(-1.0, 1.0)
        self.lr = lr

    def on_train_epoch_start(self) -> None:
        for module in self.model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.eval()

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        return sum((m**2).mean() for m in self.model.forward_maps(x))

    def training_step(self, batch, batch_idx):
        (x,) = batch
        return self.loss(x)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def images(n: int = 4, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def loader(x: torch.Tensor, batch_size: int) -> DataLoader:
    return DataLoader(TensorDataset(x), batch_size=batch_size, shuffle=False)


def trainer(tmp_path, **kwargs) -> pl.Trainer:
    defaults = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        max_epochs=1,
    )
    defaults.update(kwargs)
    return pl.Trainer(**defaults)
