"""The 13-d robot state from a node's two robot inputs (JointState, EE PoseStamped), without ROS.

Why: a driver may publish joints in any order or with extra joints (a gripper); a consumer needs
exactly its six, in its `joint_names` order, and must refuse a message without them rather than
guess. The state is as old as the older of its two halves, and a bad message clears it (never
act on the state from before a bad one).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from asyncvla_training.conventions import robot_state_vector


def ordered_joints(names: Sequence[str], positions: Sequence[float],
                   joint_names: Sequence[str]) -> np.ndarray:
    """Positions in `joint_names` order (unnamed messages: the first six, as sent).

    Raises ValueError when a joint is missing or a value is not finite.
    """
    if names and all(n in names for n in joint_names):
        index = {n: i for i, n in enumerate(names)}
        out = np.array([positions[index[n]] for n in joint_names], dtype=np.float64)
    else:
        out = np.asarray(list(positions)[:len(joint_names)], dtype=np.float64)
    if out.size != len(joint_names) or not np.all(np.isfinite(out)):
        raise ValueError(f"{len(joint_names)} finite joint positions needed "
                         f"(got {out.size}: {list(names)[:8]})")
    return out


class RobotStateInput:
    """Joint positions, then each EE pose, give a (state, stamp_ns); errors raise ValueError."""

    def __init__(self, joint_names: Sequence[str]) -> None:
        self.joint_names = list(joint_names)
        self._joints: np.ndarray | None = None
        self._joint_stamp_ns = 0

    def on_joints(self, names: Sequence[str], positions: Sequence[float], stamp_ns: int) -> None:
        try:
            self._joints = ordered_joints(names, positions, self.joint_names)
        except ValueError:
            self._joints = None
            raise
        self._joint_stamp_ns = int(stamp_ns)

    def on_pose(self, position: Sequence[float], quaternion_xyzw: Sequence[float],
                stamp_ns: int) -> tuple[np.ndarray, int] | None:
        """(13-d state, stamp of its older half), or None before the first joint state."""
        if self._joints is None:
            return None
        state = robot_state_vector(self._joints, position, quaternion_xyzw)
        return state, min(self._joint_stamp_ns, int(stamp_ns))
