"""Which samples a rank trains on at a given micro-step, and how stale their VL features are.

Everything is a pure function of (seed, epoch/step, rank), never of a stateful iterator, so a
resumed run draws exactly the batches and staleness offsets the uninterrupted run would have.

* Order: ``torch.utils.data.DistributedSampler`` (shuffle, ``seed``, ``set_epoch``) over all
  (episode, index) pairs, so each rank sees a disjoint shard per epoch (the original system's weighted sampler
  was not split across ranks). With one process it is a plain seeded shuffle.
* Staleness: sample ``i`` trains with the frame set of ``Episode.stale_index(i, k)`` with ``k``
  uniform in ``0..reuse-1``: the expert learns to act on VL features 0..reuse-1 action periods old,
  as the action node sees them between two VL updates (the original system shared one feature over groups of
  ``reuse`` consecutive samples: the same distribution of ages).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

from ..data.episode import Episode


class SampleIndex(Dataset):
    """All (episode number, sample index) pairs of a list of episodes, in order."""

    def __init__(self, episodes: Sequence[Episode]) -> None:
        self.pairs = [(e, i) for e, ep in enumerate(episodes) for i in range(len(ep))]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, item: int) -> tuple[int, int]:
        return self.pairs[item]


def stale_offsets(seed: int, rank: int, micro_step: int, count: int, reuse: int) -> np.ndarray:
    """``count`` staleness offsets k in 0..reuse-1 (uniform), reproducible per micro-step and rank."""
    rng = np.random.default_rng([int(seed), int(rank), int(micro_step), 0x5A1E])
    return rng.integers(0, reuse, size=count)


class BatchPlan:
    """Micro-batch ``g`` (0, 1, ...) of one rank -> dataset indices, epoch by epoch."""

    def __init__(self, num_samples: int, batch_size: int, world_size: int, rank: int, seed: int) -> None:
        self.batch_size = int(batch_size)
        self.sampler = DistributedSampler(
            range(num_samples), num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True
        )
        self.per_rank = len(self.sampler)
        self.batches_per_epoch = self.per_rank // self.batch_size
        if self.batches_per_epoch < 1:
            raise ValueError(
                f"{num_samples} training samples are too few for batch_size {batch_size} on "
                f"{world_size} process(es): need at least {batch_size * world_size}"
            )
        self._epoch = -1
        self._order: list[int] = []

    def indices(self, micro_step: int) -> list[int]:
        epoch, position = divmod(int(micro_step), self.batches_per_epoch)
        if epoch != self._epoch:
            self.sampler.set_epoch(epoch)
            self._order = list(iter(self.sampler))
            self._epoch = epoch
        start = position * self.batch_size
        return self._order[start : start + self.batch_size]

    def epoch_of(self, micro_step: int) -> int:
        return int(micro_step) // self.batches_per_epoch


def reseed_torch(seed: int, rank: int, micro_step: int) -> None:
    """Seed torch's global RNG (dropout, LoRA dropout) per micro-step and rank: exact on resume."""
    value = np.random.default_rng([int(seed), int(rank), int(micro_step), 0xD20F]).integers(0, 2**62)
    torch.manual_seed(int(value))
