"""`rtc_soft_mask`: the previous chunk's steps kept where they are already being executed, then
handed over to the new chunk along real-time chunking's soft mask.

Source: K. Black, M. Y. Galliker, S. Levine, "Real-Time Execution of Action Chunking Flow
Policies" (2025, arXiv:2506.07339), Eq. 5. RTC freezes the first ``d`` steps of the new chunk to
the previous one (the steps the robot executes while the new chunk is computed), lets the
steps after the previous chunk's end follow the new chunk alone, and in between guides the new
chunk towards the previous one with weights that decay exponentially:
``W_i = 1`` for ``i < d``; ``W_i = c_i (e^c_i - 1) / (e - 1)``, ``c_i = (H - s - i) / (H - s - d + 1)``
for ``d <= i < H - s``; ``W_i = 0`` beyond (``H`` the horizon, ``s`` the steps executed before the
next chunk). RTC applies the weights as inpainting guidance while a flow policy samples; this
expert is a deterministic regression with nothing to sample, so here the same weights blend
directly: ``W_i * previous_i + (1 - W_i) * new_i``, where the previous chunk covers step ``i``.
``d = 1`` and ``s = 1``: the action node publishes within a step of its inputs and a new chunk
comes every step at the default 10 Hz.
"""
from __future__ import annotations

import math

import numpy as np

from ..chunk import Chunk, resample
from .base import ENSEMBLE_DECAY, HISTORY, OLD_WEIGHT, BlendingStrategy

FROZEN_STEPS = 1  # d: steps of the new chunk the robot executes before it arrives
EXECUTED_STEPS = 1  # s: steps executed from one chunk before the next replaces it


def soft_mask(horizon: int, frozen: int = FROZEN_STEPS, executed: int = EXECUTED_STEPS) -> np.ndarray:
    """(horizon,) RTC's guidance weights of the previous chunk, step by step."""
    weights = np.zeros(horizon, dtype=np.float64)
    end = horizon - executed
    for i in range(horizon):
        if i < frozen:
            weights[i] = 1.0
        elif i < end:
            c = (end - i) / (end - frozen + 1)
            weights[i] = c * (math.exp(c) - 1.0) / (math.e - 1.0)
    return weights


class RtcSoftMask(BlendingStrategy):
    name = "rtc_soft_mask"

    def __init__(self, old_weight: float = OLD_WEIGHT, ensemble_decay: float = ENSEMBLE_DECAY,
                 history: int = HISTORY) -> None:
        super().__init__()

    def combine(self, new: Chunk) -> Chunk:
        if self._published is None:
            return new
        old_values, covered = resample(self._published, new)
        weights = soft_mask(new.actions.shape[0])[:, None] * covered[:, None]
        actions = weights * old_values + (1.0 - weights) * new.actions.astype(np.float64)
        return Chunk(new.stamp_ns, new.step_period, new.reference, actions.astype(np.float32))
