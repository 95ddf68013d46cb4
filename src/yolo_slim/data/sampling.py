"""Training order and augmentation as a function of (seed, epoch, sample index).

Exact resume needs the data pipeline to replay the interrupted epoch exactly. Saving
the RNG states of DataLoader workers is fragile (persistent workers keep theirs across
epochs, and a resumed run starts new ones), so nothing here depends on them:

- `EpochSampler` shuffles with a generator seeded by ``seed + epoch`` (it is
  torch's `DistributedSampler`, so DDP ranks get disjoint shards of the same order)
  and yields `SampleKey` (index, epoch, seed) instead of bare indices;
- the dataset draws each sample's augmentation from `sample_rng(seed, epoch, index)`.

So epoch ``e`` of a run is the same whether the run started at epoch 0 or resumed at
``e`` from a checkpoint, with any ``num_workers`` and with persistent workers. Lightning
calls `EpochSampler.set_epoch` at the start of every training epoch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
from torch.utils.data import Dataset, DistributedSampler

_SAMPLE_STREAM = 0x5A3D  # keeps sample streams apart from any other use of the same seed
_SEED_MASK = 2**63 - 1


class SampleKey(NamedTuple):
    """What the training sampler yields: which sample, in which epoch, under which seed."""

    index: int
    epoch: int
    seed: int


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The augmentation generator of sample `index` in `epoch` of a run seeded `seed`.

    Independent streams for every (seed, epoch, index) (numpy's SeedSequence), the
    same in every process, so workers, ranks and resumed runs agree.
    """
    return np.random.default_rng([_SAMPLE_STREAM, seed & _SEED_MASK, epoch, index])


class EpochSampler(DistributedSampler):
    """torch's DistributedSampler yielding `SampleKey`s: order from ``seed + epoch``.

    Args:
        dataset: the training dataset (only its length is used).
        seed: the run's data seed.
        num_replicas: DDP world size (1 without DDP).
        rank: this process's global rank.
        shuffle: shuffle every epoch (the order depends on ``seed + epoch`` only).
        drop_last: as `DistributedSampler` (pad shards to equal length when False).
    """

    def __init__(self, dataset: Dataset, seed: int, num_replicas: int = 1, rank: int = 0, shuffle: bool = True, drop_last: bool = False) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed & _SEED_MASK, drop_last=drop_last)

    def __iter__(self) -> Iterator[SampleKey]:  # type: ignore[override]
        epoch, seed = int(self.epoch), int(self.seed)
        for index in super().__iter__():
            yield SampleKey(int(index), epoch, seed)
