"""The executor's queue of future targets by time: absolute targets, interpolation, joining.

An action chunk holds offsets from its reference state (``asyncvla_core.conventions``); the
executor needs absolute targets on its own, faster clock. This module turns a chunk into absolute
targets at ``stamp + (i + 1) * step_period`` and samples them at any time between the first and
the last one: linear for joints and positions, along the shortest rotation (slerp) for
orientations. It never extrapolates: past the last target it returns the last target, and the
executor treats that as "the queue ran dry".

Targets are 6 numbers: ``joint_delta`` the joints (rad); ``ee_delta`` the position (m, base
frame) and the orientation as a rotation vector (rad, base frame).
"""
from __future__ import annotations

import numpy as np

from asyncvla_core.chunk import Chunk
from asyncvla_core.rotations import matrix_to_rotvec, rotvec_to_matrix

SPACES = ("ee_delta", "joint_delta")


def absolute_targets(chunk: Chunk, action_space: str) -> np.ndarray:
    """(H, 6) absolute targets of ``chunk`` (its tool column is not a motion and is dropped)."""
    actions = np.asarray(chunk.actions, dtype=np.float64)[:, :6]
    ref = np.asarray(chunk.reference, dtype=np.float64)
    if action_space == "joint_delta":
        return ref[None, :] + actions
    ref_rot = rotvec_to_matrix(ref[3:6])
    rot = [matrix_to_rotvec(rotvec_to_matrix(a[3:6]) @ ref_rot) for a in actions]
    return np.hstack([ref[None, :3] + actions[:, :3], np.asarray(rot).reshape(-1, 3)])


def difference(a: np.ndarray, b: np.ndarray, action_space: str) -> np.ndarray:
    """The motion from target ``a`` to ``b``: joint deltas, or translation + rotation vector of
    ``R_b R_a^T`` (base frame), so ``difference / dt`` is a twist."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if action_space == "joint_delta":
        return b - a
    rel = rotvec_to_matrix(b[3:6]) @ rotvec_to_matrix(a[3:6]).T
    return np.concatenate([b[:3] - a[:3], matrix_to_rotvec(rel)])


def advance(a: np.ndarray, motion: np.ndarray, action_space: str) -> np.ndarray:
    """``a`` moved by ``motion`` (the inverse of ``difference``)."""
    a = np.asarray(a, dtype=np.float64)
    if action_space == "joint_delta":
        return a + motion
    rot = rotvec_to_matrix(motion[3:6]) @ rotvec_to_matrix(a[3:6])
    return np.concatenate([a[:3] + motion[:3], matrix_to_rotvec(rot)])


def interpolate(a: np.ndarray, b: np.ndarray, s: float, action_space: str) -> np.ndarray:
    """The target a fraction ``s`` in [0, 1] of the way from ``a`` to ``b``."""
    return advance(a, s * difference(a, b, action_space), action_space)


class SetpointQueue:
    """Future targets (absolute) by time (integer ns), sampled by interpolation."""

    def __init__(self, action_space: str) -> None:
        if action_space not in SPACES:
            raise ValueError(f"unknown action space {action_space!r}; expected one of {SPACES}")
        self.action_space = action_space
        self.times_ns = np.zeros(0, dtype=np.int64)
        self.targets = np.zeros((0, 6))

    @property
    def empty(self) -> bool:
        return self.times_ns.size == 0

    @property
    def last_time_ns(self) -> int:
        return int(self.times_ns[-1])

    def clear(self) -> None:
        self.times_ns = np.zeros(0, dtype=np.int64)
        self.targets = np.zeros((0, 6))

    def replace(self, start_ns: int, start: np.ndarray, times_ns: np.ndarray,
                targets: np.ndarray, min_lead_ns: int) -> int:
        """Start at ``start`` (where the robot is told to be at ``start_ns``) and go on with the
        targets timed at least ``min_lead_ns`` after it (an earlier one is already past, or too
        close to reach in time). Returns how many targets were kept; none keeps the queue empty.
        """
        keep = np.asarray(times_ns, dtype=np.int64) >= start_ns + min_lead_ns
        if not keep.any():
            self.clear()
            return 0
        self.times_ns = np.concatenate([[start_ns], np.asarray(times_ns, np.int64)[keep]])
        self.targets = np.vstack([np.asarray(start, np.float64)[None, :],
                                  np.asarray(targets, np.float64)[keep]])
        return int(keep.sum())

    def sample(self, t_ns: int) -> np.ndarray:
        """The target at ``t_ns``: interpolated inside the queue, the first or last outside it."""
        if self.empty:
            raise ValueError("sample() on an empty setpoint queue")
        times = self.times_ns
        if t_ns <= times[0]:
            return self.targets[0].copy()
        if t_ns >= times[-1]:
            return self.targets[-1].copy()
        i = int(np.searchsorted(times, t_ns, side="right")) - 1
        s = (t_ns - times[i]) / float(times[i + 1] - times[i])
        return interpolate(self.targets[i], self.targets[i + 1], s, self.action_space)
