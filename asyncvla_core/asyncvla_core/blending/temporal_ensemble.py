"""`temporal_ensemble`: every raw chunk of the last `history` that covers a step votes with weight
`exp(-ensemble_decay * k)`, k = 0 for the oldest (ACT's temporal ensembling): smooth, but slower
to follow a change."""
from __future__ import annotations

import collections

import numpy as np

from ..chunk import Chunk, resample
from .base import ENSEMBLE_DECAY, HISTORY, OLD_WEIGHT, BlendingStrategy


class TemporalEnsemble(BlendingStrategy):
    name = "temporal_ensemble"

    def __init__(self, old_weight: float = OLD_WEIGHT, ensemble_decay: float = ENSEMBLE_DECAY,
                 history: int = HISTORY) -> None:
        super().__init__()
        self.ensemble_decay = ensemble_decay
        self._raw: collections.deque[Chunk] = collections.deque(maxlen=max(1, history))

    def reset(self) -> None:
        super().reset()
        self._raw.clear()

    def combine(self, new: Chunk) -> Chunk:
        self._raw.append(new)
        total = np.zeros_like(new.actions, dtype=np.float64)
        weight = np.zeros((new.actions.shape[0], 1))
        for k, chunk in enumerate(self._raw):  # k = 0 is the oldest
            if chunk is new:
                values, covered = new.actions.astype(np.float64), np.ones(len(new.actions), bool)
            else:
                values, covered = resample(chunk, new)
            w = np.exp(-self.ensemble_decay * k)
            total[covered] += w * values[covered]
            weight[covered] += w
        return Chunk(new.stamp_ns, new.step_period, new.reference,
                     (total / weight).astype(np.float32))
