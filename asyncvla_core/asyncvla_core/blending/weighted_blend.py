"""`weighted_blend`: where the previously published chunk covers a step, publish
`old_weight * old + (1 - old_weight) * new` (LeRobot's `weighted_average` uses 0.3 / 0.7)."""
from __future__ import annotations

import numpy as np

from ..chunk import Chunk, resample
from .base import ENSEMBLE_DECAY, HISTORY, OLD_WEIGHT, BlendingStrategy


class WeightedBlend(BlendingStrategy):
    name = "weighted_blend"

    def __init__(self, old_weight: float = OLD_WEIGHT, ensemble_decay: float = ENSEMBLE_DECAY,
                 history: int = HISTORY) -> None:
        super().__init__()
        if not 0.0 <= old_weight < 1.0:
            raise ValueError("old_weight must be in [0, 1)")
        self.old_weight = old_weight

    def combine(self, new: Chunk) -> Chunk:
        if self._published is None:
            return new
        old_values, covered = resample(self._published, new)
        actions = new.actions.astype(np.float64).copy()
        actions[covered] = (self.old_weight * old_values[covered]
                            + (1.0 - self.old_weight) * actions[covered])
        return Chunk(new.stamp_ns, new.step_period, new.reference, actions.astype(np.float32))
