"""Run by test_sparsity_ddp.py: one sparse SGD step on 2 CPU processes (gloo), one
sample per rank; rank 0 saves the resulting gammas. With a second argument ``single``:
the same step in one process on the combined batch of 2 (the reference), in a fresh
interpreter too, so it does not share the test process's state."""

from __future__ import annotations

import sys

import torch

from sparsity_fixtures import TinyModule, images, loader, trainer
from yolo_slim.sparsity.callback import BNSparsity

if __name__ == "__main__":
    out = sys.argv[1]
    single = sys.argv[2:] == ["single"]
    module = TinyModule()
    callback = BNSparsity(s=0.05, scope="all", predict_percents=())
    if single:
        t = trainer(out + ".root", max_steps=1, callbacks=[callback])
        t.fit(module, loader(images(2), 2))
    else:
        t = trainer(out + ".root", max_steps=1, strategy="ddp", devices=2, callbacks=[callback])
        t.fit(module, loader(images(2), 1))
    if t.is_global_zero:
        torch.save({i: b.bn.weight.detach().clone() for i, b in module.model.conv_blocks().items() if b.bn is not None}, out)
