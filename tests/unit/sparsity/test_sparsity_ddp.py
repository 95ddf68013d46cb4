"""BNSparsity on 2-process CPU DDP equals one process on the combined batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from sparsity_fixtures import TinyModule, images, loader, trainer
from yolo_slim.sparsity.callback import BNSparsity

HERE = Path(__file__).parent


def test_ddp_two_processes_equal_one(tmp_path):
    out = tmp_path / "ddp_gammas.pt"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")]))  # + tests/ (fixtures)
    result = subprocess.run(
        [sys.executable, str(HERE / "ddp_sparsity_script.py"), str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ddp = torch.load(out)

    single = TinyModule()
    trainer(tmp_path / "single", max_steps=1, callbacks=[BNSparsity(s=0.05, scope="all", predict_percents=())]).fit(single, loader(images(2), 2))
    for i, block in single.model.conv_blocks().items():
        if block.bn is not None:
            torch.testing.assert_close(ddp[i], block.bn.weight.detach(), rtol=0, atol=1e-6)
