"""BNSparsity: the penalty's arithmetic, its accumulation semantics, schedules, resume."""

from __future__ import annotations

import copy

import pytest
import pytorch_lightning as pl
import torch

from sparsity_fixtures import TinyModule, images, loader, trainer
from yolo_slim.errors import ConfigError
from yolo_slim.sparsity.callback import BNSparsity
from yolo_slim.sparsity.schedule import SparsitySchedule
from yolo_slim.sparsity.scope import select_bn_layers


def _gammas(module: TinyModule) -> dict[int, torch.Tensor]:
    return {i: b.bn.weight.detach().clone() for i, b in module.model.conv_blocks().items() if b.bn is not None}


def test_one_step_matches_hand_computed_sgd_update(tmp_path):
    s, lr = 0.05, 0.1
    module = TinyModule(lr=lr)
    reference = copy.deepcopy(module)
    x = images(2)
    reference.on_train_epoch_start()
    reference.loss(x).backward()
    before = _gammas(reference)
    callback = BNSparsity(s=s, scope="all", predict_percents=())
    trainer(tmp_path, max_steps=1, callbacks=[callback]).fit(module, loader(x, 2))
    after = _gammas(module)
    for i, gamma in before.items():
        grad = reference.model.layers[i].bn.weight.grad
        expected = gamma - lr * (grad + s * torch.sign(gamma))
        torch.testing.assert_close(after[i], expected, rtol=0, atol=1e-6)
    assert callback.steps_applied == 1


def test_strength_is_per_optimizer_step_not_per_batch(tmp_path):
    """Accumulating 2 batches of 1 equals one step on the batch of 2, penalty included."""
    x = images(2)
    accumulated, single = TinyModule(), TinyModule()
    cb_acc, cb_single = BNSparsity(s=0.05, scope="all", predict_percents=()), BNSparsity(s=0.05, scope="all", predict_percents=())
    trainer(tmp_path / "a", max_steps=1, accumulate_grad_batches=2, callbacks=[cb_acc]).fit(accumulated, loader(x, 1))
    trainer(tmp_path / "b", max_steps=1, callbacks=[cb_single]).fit(single, loader(x, 2))
    assert cb_acc.steps_applied == cb_single.steps_applied == 1
    for i, gamma in _gammas(single).items():
        torch.testing.assert_close(_gammas(accumulated)[i], gamma, rtol=0, atol=1e-6)


def test_zero_strength_is_plain_training(tmp_path):
    x = images(2)
    with_cb, without = TinyModule(), TinyModule()
    trainer(tmp_path / "a", max_steps=2, callbacks=[BNSparsity(s=0.0, scope="all", predict_percents=())]).fit(with_cb, loader(x, 1))
    trainer(tmp_path / "b", max_steps=2).fit(without, loader(x, 1))
    for i, gamma in _gammas(without).items():
        torch.testing.assert_close(_gammas(with_cb)[i], gamma)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(s=-1.0), "s=-1.0 must be a number >= 0"),
        (dict(scope="some"), "scope='some' is not supported; expected one of prunable, prunable\\+shortcut, all"),
        (dict(schedule={"kind": "exp"}), "schedule 'exp' is not supported; expected one of constant, step, cosine, linear, keep_top"),
        (dict(schedule={"kind": "step", "start": 1.5}), "start=1.5 must be a progress fraction"),
        (dict(log_every_n_epochs=0), "log_every_n_epochs=0 must be >= 1"),
        (dict(predict_percents=(0.5, 1.2)), "predict_percents \\[1.2\\] must lie in \\[0, 1\\)"),
    ],
)
def test_bad_arguments_name_the_allowed_values(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        BNSparsity(**kwargs)


def test_ignore_must_name_bn_layers():
    module = TinyModule()
    with pytest.raises(ConfigError, match=r"ignore ids \[3\] are not convolutional layers with batch_normalize=1"):
        select_bn_layers(module.model, "all", ignore=[3])
    assert select_bn_layers(module.model, "all", ignore=[1]) == [0, 2, 4]


@pytest.mark.parametrize(
    ("kind", "progress", "expected"),
    [
        ("constant", 0.9, 1.0),
        ("step", 0.4, 1.0),
        ("step", 0.6, 0.01),
        ("linear", 0.75, 0.5),
        ("cosine", 0.75, 0.5),
        ("cosine", 1.0, 0.0),
        ("keep_top", 0.9, 1.0),
    ],
)
def test_schedule_multipliers(kind, progress, expected):
    assert SparsitySchedule(kind=kind, start=0.5, factor=0.01, final=0.0).multiplier(progress) == pytest.approx(expected)


def test_keep_top_weakens_the_penalty_on_survivors(tmp_path):
    s = 0.05
    module = TinyModule(lr=0.1)
    reference = copy.deepcopy(module)
    x = images(2)
    reference.on_train_epoch_start()
    reference.loss(x).backward()
    callback = BNSparsity(s=s, scope="all", schedule={"kind": "keep_top", "start": 0.0, "factor": 0.0, "keep_percent": 0.5}, predict_percents=())
    trainer(tmp_path, max_steps=1, callbacks=[callback]).fit(module, loader(x, 2))
    before, after = _gammas(reference), _gammas(module)
    everything = torch.cat([g.abs() for g in before.values()])
    threshold = torch.sort(everything).values[int(everything.numel() * 0.5)]
    for i, gamma in before.items():
        survivor = gamma.abs() >= threshold
        penalty = torch.where(survivor, torch.zeros_like(gamma), s * torch.sign(gamma))
        expected = gamma - 0.1 * (reference.model.layers[i].bn.weight.grad + penalty)
        torch.testing.assert_close(after[i], expected, rtol=0, atol=1e-6)


class _StopAfterFirstEpoch(pl.Callback):
    """Interrupts a 2-epoch run after its first epoch, as a user's Ctrl-C would."""

    def on_train_epoch_end(self, trainer, pl_module):
        trainer.should_stop = True


def test_resume_continues_the_schedule(tmp_path):
    x = images(4)
    schedule = {"kind": "step", "start": 0.5, "factor": 0.1}
    straight = TinyModule()
    cb_straight = BNSparsity(s=0.05, scope="all", schedule=schedule, predict_percents=())
    trainer(tmp_path / "straight", max_epochs=2, callbacks=[cb_straight]).fit(straight, loader(x, 1))

    first = TinyModule()
    cb_first = BNSparsity(s=0.05, scope="all", schedule=schedule, predict_percents=())
    t1 = trainer(tmp_path / "first", max_epochs=2, callbacks=[cb_first, _StopAfterFirstEpoch()])
    t1.fit(first, loader(x, 1))
    ckpt = tmp_path / "first.ckpt"
    t1.save_checkpoint(ckpt)

    resumed = TinyModule(seed=123)  # different init: everything must come from the checkpoint
    cb_resumed = BNSparsity(s=0.05, scope="all", schedule=schedule, predict_percents=())
    trainer(tmp_path / "resumed", max_epochs=2, callbacks=[cb_resumed]).fit(resumed, loader(x, 1), ckpt_path=str(ckpt))

    assert cb_resumed.steps_applied == cb_straight.steps_applied == 8
    torch.testing.assert_close(cb_resumed.initial_gammas, cb_straight.initial_gammas)
    for i, gamma in _gammas(straight).items():
        torch.testing.assert_close(_gammas(resumed)[i], gamma, rtol=0, atol=1e-6)
