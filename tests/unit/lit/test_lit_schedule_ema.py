"""The warm-up/cosine/step LR schedule and the EMA of weights."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn

from yolo_slim.errors import ConfigError
from yolo_slim.lit.ema import ModelEMA
from yolo_slim.lit.schedule import WarmupSchedule


def test_warmup_ends_exactly_at_lr0_for_every_group_and_never_overshoots() -> None:
    params = [nn.Parameter(torch.zeros(1)) for _ in range(3)]
    opt = torch.optim.SGD([{"params": [p]} for p in params], lr=0.01, momentum=0.9, nesterov=True)
    warmup, total = 7, 40
    lambdas = [WarmupSchedule(total, warmup), WarmupSchedule(total, warmup), WarmupSchedule(total, warmup, start_factor=0.1 / 0.01)]
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambdas)
    seen = []
    for _ in range(total):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    assert seen[0][:2] == [0.0, 0.0] and seen[0][2] == pytest.approx(0.1)
    assert seen[warmup] == [0.01, 0.01, 0.01]  # exactly lr0, bit for bit
    assert max(lr for step in seen for lr in step[:2]) == 0.01
    assert all(seen[i][2] >= seen[i + 1][2] for i in range(warmup))  # bias lr comes down to lr0
    assert seen[-1][0] < 0.01 * 0.02


def test_cosine_and_step_shapes() -> None:
    cos = WarmupSchedule(110, 10, "cosine", lrf=0.1)
    assert cos(10) == 1.0
    assert cos(60) == pytest.approx(0.1 + 0.9 * 0.5)
    assert cos(110) == pytest.approx(0.1)
    step = WarmupSchedule(110, 10, "step", milestones=(0.5, 0.9), gamma=0.1)
    assert [step(s) for s in (10, 59, 60, 99, 100)] == [1.0, 1.0, pytest.approx(0.1), pytest.approx(0.1), pytest.approx(0.01)]
    assert WarmupSchedule(5, 0)(0) == 1.0


def test_scheduler_state_round_trips_through_weights_only_load() -> None:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, [WarmupSchedule(20, 4, "step")])
    for _ in range(6):
        opt.step()
        sched.step()
    buf = io.BytesIO()
    torch.save(sched.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    opt2 = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    sched2 = torch.optim.lr_scheduler.LambdaLR(opt2, [WarmupSchedule(20, 4, "step")])
    sched2.load_state_dict(state)
    assert sched2.last_epoch == 6 and sched2.get_last_lr() == sched.get_last_lr()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"kind": "linear"}, "kind"), ({"total_steps": 0}, "at least 1"), ({"warmup_steps": -1}, "warm-up"),
     ({"lrf": 2.0}, "lrf"), ({"milestones": (1.5,)}, "milestones")],
)
def test_bad_schedules_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        WarmupSchedule(**{"total_steps": 10, **kwargs})


def test_ema_ramp_update_count_and_state() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = ModelEMA(model, decay=0.9, tau=10.0)
    assert not any(p.requires_grad for p in ema.module.parameters())
    start = ema.module[0].weight.clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    d = 0.9 * (1 - math.exp(-1 / 10))
    assert ema.current_decay() == pytest.approx(d)
    ema.update(model)
    torch.testing.assert_close(ema.module[0].weight, start * d + model[0].weight * (1 - d))
    assert int(ema.updates) == 1 and "updates" in ema.state_dict()
    ema.train()
    assert not ema.module.training
    model(torch.rand(4, 2))  # BN statistics move; integer buffers are copied
    ema.update(model)
    assert int(ema.module[1].num_batches_tracked) == int(model[1].num_batches_tracked)
    with pytest.raises(ConfigError, match="decay"):
        ModelEMA(model, decay=1.0)
    with pytest.raises(ConfigError, match="tau"):
        ModelEMA(model, tau=0)
