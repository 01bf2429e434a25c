"""An action chunk in time, and how an older chunk is seen from a newer one.

A new chunk is computed every action period while the previous one still covers the next
`horizon - 1` steps; the strategies that join them are in the `blending` package, and
`chunk_blending.ChunkBlender` picks one by name.

Chunks are offsets from the robot state at their own stamp (see asyncvla_core.conventions), so
an older chunk is first re-referenced to the new chunk's reference (exact for positions and
joints, first order for rotation vectors) and resampled at the new chunk's step times by linear
interpolation (no extrapolation). This also makes blending correct when the action rate differs
from the chunk's step rate (e.g. 50 Hz ticks, 10 Hz steps).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


def retime(chunk: Chunk, stamp_ns: int, reference: np.ndarray) -> Chunk | None:
    """The same absolute targets seen from a later `stamp_ns` and the robot's `reference` there.

    Why: in the timing-thread design a tick publishes the newest finished inference, which was
    computed for an earlier time. Its targets are kept as they were planned (re-referenced and
    resampled at the tick's step times, as blending does); only the steps the chunk still covers
    are kept, so nothing is extrapolated and the horizon may shrink. None when no step is left.
    """
    template = Chunk(int(stamp_ns), chunk.step_period, np.asarray(reference, dtype=np.float64),
                     np.zeros_like(chunk.actions))
    values, covered = resample(chunk, template)
    n = int(np.count_nonzero(covered))  # a prefix: the tick's steps only get later
    if n == 0 or not covered[:n].all():
        return None
    return Chunk(template.stamp_ns, chunk.step_period, template.reference,
                 values[:n].astype(np.float32))
