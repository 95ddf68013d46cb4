"""Training batches are a function of (seed, epoch, sample index): the same with 0 or 2
(persistent) workers, for a run that resumes at an epoch, and different across epochs
and seeds. The end-to-end kill-and-resume test is tests/integration/test_resume_exact.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from yolo_slim.data.datamodule import YoloDataModule
from yolo_slim.data.sampling import EpochSampler, SampleKey, sample_rng

BUILTIN = {"n_train": 12, "n_val": 2, "img_size": 64}


def _datamodule(root: Path, workers: int, seed: int | None = 5) -> YoloDataModule:
    dm = YoloDataModule("builtin", img_size=64, batch_size=4, num_workers=workers, builtin={**BUILTIN, "root": str(root)}, seed=seed)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def _epochs(dm: YoloDataModule, epochs: range) -> list[list[dict]]:
    """The batches of `epochs` from one loader, driven as Lightning drives it: the first
    iterator (whose workers prefetch at once) exists before the first ``set_epoch``."""
    loader = dm.train_dataloader()
    first = iter(loader)
    out = []
    for epoch in epochs:
        loader.sampler.set_epoch(epoch)
        out.append(list(first if epoch == epochs[0] else loader))
    return out


def _same(a: list[dict], b: list[dict]) -> bool:
    return all(x["paths"] == y["paths"] and torch.equal(x["images"], y["images"]) and torch.equal(x["targets"], y["targets"]) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data") / "builtin"


def test_resumed_epoch_equals_the_uninterrupted_one_with_persistent_workers(root: Path) -> None:
    straight = _epochs(_datamodule(root, workers=2), range(3))  # one loader, persistent workers, epochs 0..2
    fresh = _datamodule(root, workers=2)
    fresh.load_state_dict({"seed": 5, "epoch": 2})  # a run resuming at epoch 2 (Lightning restores this first)
    resumed = _epochs(fresh, range(2, 3))
    unrestored = _epochs(_datamodule(root, workers=2), range(2, 3))
    in_process = _epochs(_datamodule(root, workers=0), range(3))
    assert _same(resumed[0], straight[2])
    assert not _same(unrestored[0], straight[2])  # without the checkpoint's epoch, workers prefetch epoch 0
    assert all(_same(a, b) for a, b in zip(in_process, straight))  # workers change nothing
    assert not _same(straight[0], straight[1])  # a new order and new augmentation every epoch
    assert [p for b in straight[0] for p in b["paths"]] != [p for b in straight[1] for p in b["paths"]]


def test_the_seed_decides_and_is_kept_in_the_checkpoint(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not _same(_epochs(_datamodule(root, 0, seed=1), range(1))[0], _epochs(_datamodule(root, 0, seed=2), range(1))[0])
    monkeypatch.setenv("PL_GLOBAL_SEED", "17")  # what seed_everything(17) sets
    dm = _datamodule(root, 0, seed=None)
    assert dm.seed == 17 and dm.state_dict() == {"seed": 17}
    monkeypatch.delenv("PL_GLOBAL_SEED")
    fresh = _datamodule(root, 0, seed=None)
    fresh.load_state_dict({"seed": 17})  # Lightning restores it on resume
    assert _same(_epochs(fresh, range(1))[0], _epochs(dm, range(1))[0])


def test_sampler_shards_one_order_over_ranks() -> None:
    data = list(range(10))
    shards = [EpochSampler(data, seed=3, num_replicas=2, rank=r) for r in range(2)]
    for s in shards:
        s.set_epoch(4)
    keys = [list(s) for s in shards]
    assert all(isinstance(k, SampleKey) and (k.epoch, k.seed) == (4, 3) for shard in keys for k in shard)
    assert sorted(k.index for shard in keys for k in shard) == data
    again = EpochSampler(data, seed=3, num_replicas=2, rank=0)
    again.set_epoch(4)
    assert list(again) == keys[0]


def test_sample_streams_are_independent() -> None:
    draws = {(s, e, i): sample_rng(s, e, i).random() for s in (0, 1) for e in (0, 1) for i in (0, 1)}
    assert len(set(draws.values())) == len(draws)
    assert sample_rng(1, 2, 3).random() == sample_rng(1, 2, 3).random()
    assert np.isfinite(sample_rng(-1, 0, 0).random())  # negative seeds are mapped, not refused


def test_bad_seed_is_a_config_error() -> None:
    from yolo_slim.errors import ConfigError

    with pytest.raises(ConfigError, match=r"seed must be an integer or None, got 'x'"):
        YoloDataModule("builtin", seed="x")
