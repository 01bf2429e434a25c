"""Joint state + EE pose -> the robot state the action expert sees, or why not (ROS-free).

The two halves arrive on separate topics; the state is as old as the older of them. A JointState
is read by name (`conventions.joint_positions_by_name`): a message without every configured joint
is refused, never read as "the first six". Messages stamped further in the future than
`max_future` are refused at arrival (input_checks). Every refusal says why; the node counts it,
and clears the held state (fail closed: never act on the state from before a bad message).

Orientation sign (conventions.continuous_orientation, the function training uses): each state's
quaternion is signed against the previous state this input built. "Previous" is forgotten - the
next state is signed against the fixed anchor orientation, as the first state of a training
segment is - after any refusal, after `reset()`, and when the new state is more than
`continuity_gap` (the node's robot_state_max_age) newer than the previous one: such a gap makes
the samples in between stale, which is where training splits an episode into segments.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asyncvla_core import freshness
from asyncvla_core.conventions import (JOINT_NAMES, NUM_JOINTS, joint_positions_by_name,
                                       robot_state_vector)
from asyncvla_core.input_checks import future_stamp_reason


def check_joint_names(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The configured joint names, validated (ValueError names the problem)."""
    names = tuple(str(n) for n in names)
    if len(names) != NUM_JOINTS or len(set(names)) != NUM_JOINTS or not all(names):
        raise ValueError(f"joint_names must be {NUM_JOINTS} distinct non-empty names "
                         f"(default {list(JOINT_NAMES)}), got {list(names)}")
    return names


@dataclass(frozen=True)
class RobotStateUpdate:
    state: np.ndarray | None  # the 13-d state, when a pose completed one
    stamp_ns: int
    reason: str  # "" when accepted


class RobotStateInput:
    """Holds the newest joint positions; `pose()` combines them with an EE pose."""

    def __init__(self, joint_names: tuple[str, ...] = JOINT_NAMES,
                 max_future: float = freshness.MAX_FUTURE_STAMP_S,
                 continuity_gap: float = freshness.ROBOT_STATE_MAX_AGE_S) -> None:
        self.joint_names = check_joint_names(joint_names)
        self.max_future = max_future
        self.continuity_gap_ns = int(round(continuity_gap * 1e9))
        self._joints: np.ndarray | None = None
        self._joint_stamp_ns = 0
        self._previous_quat: np.ndarray | None = None
        self._previous_stamp_ns = 0

    def reset(self) -> None:
        """Forget the held joints and the previous orientation (the next motion starts afresh)."""
        self._joints = None
        self._previous_quat = None

    def joints(self, names, positions, stamp_ns: int, now_ns: int) -> str:
        """Take a JointState's fields; "" when accepted, else why it was refused."""
        future = future_stamp_reason(stamp_ns, now_ns, self.max_future)
        try:
            if future:
                raise ValueError(f"joint state {future}")
            values = joint_positions_by_name(names, positions, self.joint_names)
        except ValueError as exc:
            self.reset()
            return str(exc)
        self._joints, self._joint_stamp_ns = values, stamp_ns
        return ""

    def pose(self, position, quaternion_xyzw, stamp_ns: int, now_ns: int) -> RobotStateUpdate:
        """Take an EE pose; the full state when joints are held, else no state and no reason."""
        future = future_stamp_reason(stamp_ns, now_ns, self.max_future)
        if future:
            self._previous_quat = None
            return RobotStateUpdate(None, stamp_ns, f"EE pose {future}")
        if self._joints is None:
            return RobotStateUpdate(None, stamp_ns, "")
        state_stamp = min(self._joint_stamp_ns, stamp_ns)
        previous = self._previous_quat
        if previous is not None and abs(state_stamp - self._previous_stamp_ns) > self.continuity_gap_ns:
            previous = None
        try:
            state = robot_state_vector(self._joints, position, quaternion_xyzw, previous)
        except ValueError as exc:
            self._previous_quat = None
            return RobotStateUpdate(None, stamp_ns, f"EE pose rejected: {exc}")
        self._previous_quat = state[9:13].astype(np.float64)
        self._previous_stamp_ns = state_stamp
        return RobotStateUpdate(state, state_stamp, "")
