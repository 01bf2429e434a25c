"""The Meca500 driver's decisions, without ROS or sockets: what may be sent to the robot now.

A needle is on the robot, so the rules are fail-closed and checked at every command tick:

* Nothing at all is sent to a robot that is not connected, not activated, not homed, in error or
  with its own e-stop pressed (the robot would refuse it anyway; we do not even try). Connecting,
  activating and homing happen only on request (the node's Trigger services), never by themselves.
* A velocity is sent only while the safety gate is ENABLED (the suite's latched enable / e-stop
  topics) and the newest setpoint is younger than ``setpoint_timeout``. When any of this stops
  holding while the robot moves, one zero velocity is sent (the robot also stops by itself after
  its own velocity timeout, ``SetVelTimeout``).
* Velocities are clipped to the driver's limits (m/s, rad/s) before conversion to the robot's
  units (mm/s, deg/s), keeping their direction.

Monitoring data (degrees, mm, Mecademic's mobile XYZ Euler angles) is converted to REP-103 units
here too, so the node only copies numbers into messages.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from asyncvla_common.safety import SafetyGate, SafetyState
from asyncvla_training.rotations import euler_to_quaternion

#: Mecademic's Euler convention for poses: alpha about x, then beta about the new y, then gamma
#: about the new z (see asyncvla_bridges/README.md).
MECA_EULER = "xyz_intrinsic"


@dataclass(frozen=True)
class DriverLimits:
    max_linear_velocity: float = 0.05  # m/s
    max_angular_velocity: float = 0.5  # rad/s
    setpoint_timeout: float = 0.05  # s from a setpoint's arrival


@dataclass(frozen=True)
class RobotView:
    """What the robot reports (mecademicpy's status and safety status, condensed)."""

    connected: bool
    activated: bool = False
    homed: bool = False
    error: bool = False
    error_code: int | None = None
    error_message: str = ""
    estop: bool = False  # the robot's own e-stop (any state but reset)


@dataclass(frozen=True)
class Decision:
    velocity: tuple[float, ...] | None  # MoveLinVelWrf args (mm/s, deg/s); None: send nothing
    category: str  # "moving", "stopping", or why nothing is sent
    reason: str  # one line ("" when moving)
    robot_error: bool = False  # the robot itself reports a fault (error or its own e-stop)


def robot_velocity(twist: np.ndarray, limits: DriverLimits) -> tuple[float, ...]:
    """A base-frame twist (m/s, rad/s) clipped to the limits, in the robot's mm/s and deg/s."""
    linear = np.asarray(twist[:3], dtype=np.float64)
    angular = np.asarray(twist[3:6], dtype=np.float64)
    for vec, limit in ((linear, limits.max_linear_velocity),
                       (angular, limits.max_angular_velocity)):
        norm = float(np.linalg.norm(vec))
        if limit > 0 and norm > limit:
            vec *= limit / norm
    return tuple(float(v) for v in (*(linear * 1e3), *np.degrees(angular)))


class DriverCore:
    """Holds the newest setpoint; ``decide`` at the command rate."""

    def __init__(self, limits: DriverLimits, gate: SafetyGate) -> None:
        self.limits = limits
        self.gate = gate
        self._twist: np.ndarray | None = None
        self._twist_at = -math.inf
        self._moving = False
        self.last: Decision | None = None
        self.sent = 0
        self.rejected_setpoints = 0

    def on_setpoint(self, twist: np.ndarray, mono: float) -> bool:
        """A twist setpoint (m/s, rad/s, base frame); False (and counted) when not finite."""
        twist = np.asarray(twist, dtype=np.float64).reshape(-1)
        if twist.size != 6 or not np.all(np.isfinite(twist)):
            self.rejected_setpoints += 1
            return False
        self._twist, self._twist_at = twist, mono
        return True

    def decide(self, robot: RobotView, mono: float) -> Decision:
        decision = self._decide(robot, mono)
        if decision.velocity is not None:
            self.sent += 1
            self._moving = any(v != 0.0 for v in decision.velocity)
        self.last = decision
        return decision

    def _decide(self, robot: RobotView, mono: float) -> Decision:
        if not robot.connected:
            return Decision(None, "not_connected", "not connected to the robot (call ~/connect)")
        if robot.estop:
            self._moving = False
            return Decision(None, "robot_estop", "the robot's e-stop is pressed", True)
        if robot.error:
            self._moving = False
            code = f" {robot.error_code}" if robot.error_code else ""
            return Decision(None, "robot_error", f"robot in error{code}: {robot.error_message} "
                            "(call ~/reset_error)", True)
        if not robot.activated:
            self._moving = False
            return Decision(None, "not_activated", "robot not activated (call ~/activate)")
        if not robot.homed:
            self._moving = False
            return Decision(None, "not_homed", "robot not homed (call ~/home)")
        allowed, why = self.gate.allows_output(mono)
        if not allowed:
            category = "estop" if self.gate.state == SafetyState.ESTOP else "disabled"
            return self._stop(category, why)
        age = mono - self._twist_at
        if self._twist is None or age > self.limits.setpoint_timeout:
            return self._stop("no_setpoint", "no setpoint" if self._twist is None else
                              f"newest setpoint is {age * 1e3:.0f} ms old (setpoint_timeout "
                              f"{self.limits.setpoint_timeout * 1e3:.0f} ms)")
        velocity = robot_velocity(self._twist, self.limits)
        if not any(velocity) and not self._moving:
            return Decision(None, "holding", "the setpoint is zero")
        return Decision(velocity, "moving", "")

    def _stop(self, category: str, reason: str) -> Decision:
        """One zero velocity if the robot was moving, else nothing."""
        if self._moving:
            return Decision((0.0,) * 6, "stopping", reason)
        return Decision(None, category, reason)


def joint_positions_rad(joints_deg) -> list[float]:
    return [math.radians(float(v)) for v in joints_deg]


def pose_si(pose_mm_deg) -> tuple[list[float], list[float]]:
    """(position m, quaternion xyzw) of a Meca500 pose (x, y, z mm, alpha, beta, gamma deg)."""
    values = [float(v) for v in pose_mm_deg]
    quat = euler_to_quaternion(values[3:6], MECA_EULER)
    return [v * 1e-3 for v in values[:3]], [float(q) for q in quat]
