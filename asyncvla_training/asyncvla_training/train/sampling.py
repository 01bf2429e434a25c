"""Which samples a rank trains on at a given micro-step, and how stale their VL features are.

Everything is a pure function of (seed, epoch/step, rank), never of a stateful iterator, so a
resumed run draws exactly the batches and staleness offsets the uninterrupted run would have.

* Order: ``torch.utils.data.DistributedSampler`` (shuffle, ``seed``, ``set_epoch``) over all
  (episode, index) pairs, so each rank sees a disjoint shard per epoch (the original system's weighted sampler
  was not split across ranks). With one process it is a plain seeded shuffle.
* Staleness: sample ``i`` draws a VL age ``a`` in milliseconds (:class:`VLAgeDistribution`: uniform
  over a range, or the ages a recorded action node met) and trains with the frame set the VLM
  would have used ``a`` earlier (``Episode.stale_frame_set``), told the resulting age. At run time
  the age is the tick time minus the newest frame's stamp: transport, the VLM's compute and the
  wait for the next update, 300-700 ms with five views. (The original system shared one feature
  over groups of ``reuse`` consecutive samples: an age counted in action periods, 0-200 ms at
  reuse 3 and 10 Hz, and no age at all once the node ticks on sensor batches or at 50-100 Hz.)
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


class VLAgeDistribution:
    """The VL ages training draws, in nanoseconds: uniform over ``[low_ms, high_ms]``, or, given
    ``recorded_ns``, the ages a recorded action node met (each drawn with equal weight).

    Draws are a pure function of (seed, rank, micro-step): a resumed run draws the same ages."""

    def __init__(self, low_ms: float, high_ms: float,
                 recorded_ns: np.ndarray | None = None) -> None:
        if not 0.0 <= float(low_ms) <= float(high_ms):
            raise ValueError(f"VL age range must satisfy 0 <= low <= high, got [{low_ms}, {high_ms}] ms")
        self.low_ns, self.high_ns = int(round(low_ms * 1e6)), int(round(high_ms * 1e6))
        self.recorded_ns = None
        if recorded_ns is not None:
            recorded = np.asarray(recorded_ns, dtype=np.int64).reshape(-1)
            recorded = recorded[recorded >= 0]
            if recorded.size == 0:
                raise ValueError("vl_age_source 'recorded': the training recordings hold no "
                                 "VLFeatures message received before an action time")
            self.recorded_ns = np.sort(recorded)

    def draw(self, seed: int, rank: int, micro_step: int, count: int) -> np.ndarray:
        """``count`` ages (int64 ns), reproducible per micro-step and rank."""
        rng = np.random.default_rng([int(seed), int(rank), int(micro_step), 0x5A1E])
        if self.recorded_ns is not None:
            return self.recorded_ns[rng.integers(0, self.recorded_ns.size, size=count)]
        return rng.integers(self.low_ns, self.high_ns + 1, size=count, dtype=np.int64)

    def describe(self) -> dict[str, float | str | int]:
        """For logs and checkpoints: the source and the range (ms) the ages come from."""
        if self.recorded_ns is not None:
            ms = self.recorded_ns / 1e6
            return {"source": "recorded", "samples": int(ms.size), "p5_ms": float(np.percentile(ms, 5)),
                    "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95))}
        return {"source": "range", "low_ms": self.low_ns / 1e6, "high_ms": self.high_ns / 1e6}


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
