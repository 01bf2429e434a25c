"""Overlap handling between consecutive action chunks.

A new chunk is computed every action period while the previous one still covers the next
`horizon - 1` steps. Three strategies, selectable by parameter:

- `latest_only`: publish the new chunk as is (LeRobot `latest_only`).
- `weighted_blend`: where the previously *published* chunk covers a step, publish
  `old_weight * old + (1 - old_weight) * new` (LeRobot `weighted_average` uses 0.3 / 0.7).
- `temporal_ensemble`: every raw chunk of the last `history` that covers a step votes with weight
  `exp(-ensemble_decay * k)`, k = 0 for the oldest (ACT's temporal ensembling): smooth, but slower
  to follow a change.

Chunks are offsets from the robot state at their own stamp (see asyncvla_training.conventions), so
an older chunk is first re-referenced to the new chunk's reference (exact for positions and
joints, first order for rotation vectors) and resampled at the new chunk's step times by linear
interpolation (no extrapolation). This also makes blending correct when the action rate differs
from the chunk's step rate (e.g. 50 Hz ticks, 10 Hz steps).
"""
from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np

MODES = ("latest_only", "weighted_blend", "temporal_ensemble")


@dataclass(frozen=True)
class Chunk:
    stamp_ns: int
    step_period: float
    reference: np.ndarray  # (6,)
    actions: np.ndarray  # (H, A)

    def step_times(self) -> np.ndarray:
        return self.stamp_ns / 1e9 + self.step_period * np.arange(1, self.actions.shape[0] + 1)


def resample(old: Chunk, new: Chunk) -> tuple[np.ndarray, np.ndarray]:
    """Old chunk's actions at the new chunk's step times, expressed relative to new.reference.

    Returns (values (H, A), covered (H,) bool); uncovered rows are zeros.
    """
    times_old = old.step_times()
    times_new = new.step_times()
    shifted = old.actions.astype(np.float64).copy()
    shifted[:, :6] += old.reference - new.reference
    covered = (times_new >= times_old[0] - 1e-9) & (times_new <= times_old[-1] + 1e-9)
    values = np.zeros_like(new.actions, dtype=np.float64)
    for dim in range(new.actions.shape[1]):
        values[:, dim] = np.interp(times_new, times_old, shifted[:, dim])
    values[~covered] = 0.0
    return values, covered


class ChunkBlender:
    """Stateful: remembers what it published (and raw chunks, for temporal ensembling)."""

    def __init__(self, mode: str = "latest_only", old_weight: float = 0.3,
                 ensemble_decay: float = 0.1, history: int = 8) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown chunk blending mode {mode!r}; expected one of {MODES}")
        if not 0.0 <= old_weight < 1.0:
            raise ValueError("old_weight must be in [0, 1)")
        self.mode = mode
        self.old_weight = old_weight
        self.ensemble_decay = ensemble_decay
        self._published: Chunk | None = None
        self._raw: collections.deque[Chunk] = collections.deque(maxlen=max(1, history))

    def reset(self) -> None:
        """Forget history (after a pause, an e-stop or stale features): never blend across it."""
        self._published = None
        self._raw.clear()

    def replace_published(self, chunk: Chunk) -> None:
        """The chunk that actually went out differs from the blend (the output guard clamped it)."""
        if self._published is not None:
            self._published = chunk

    def blend(self, new: Chunk) -> Chunk:
        if self.mode == "latest_only":
            out = new
        elif self.mode == "weighted_blend":
            out = new
            if self._published is not None:
                old_values, covered = resample(self._published, new)
                actions = new.actions.astype(np.float64).copy()
                actions[covered] = (self.old_weight * old_values[covered]
                                    + (1.0 - self.old_weight) * actions[covered])
                out = Chunk(new.stamp_ns, new.step_period, new.reference,
                            actions.astype(np.float32))
        else:
            self._raw.append(new)
            total = np.zeros_like(new.actions, dtype=np.float64)
            weight = np.zeros((new.actions.shape[0], 1))
            for k, chunk in enumerate(self._raw):  # k = 0 is the oldest
                values, covered = (new.actions.astype(np.float64), np.ones(len(new.actions), bool)) \
                    if chunk is new else resample(chunk, new)
                w = np.exp(-self.ensemble_decay * k)
                total[covered] += w * values[covered]
                weight[covered] += w
            out = Chunk(new.stamp_ns, new.step_period, new.reference,
                        (total / weight).astype(np.float32))
        self._published = out
        return out
