"""The executor's standard outputs, one class per message, chosen by the `output` parameter.

* ``pose``: ``geometry_msgs/PoseStamped``, the target pose (m, quaternion, base frame) at the
  executor rate: the input of Cartesian motion / pose-tracking controllers. On a stop the hold
  pose (the last target) is sent once; the controller then keeps it.
* ``twist``: ``geometry_msgs/TwistStamped``, linear (m/s) and angular (rad/s) velocity in the
  base frame: MoveIt Servo's input, and the Meca500 driver's. While holding, zero twists are sent
  at the executor rate (a velocity stream that stops must say zero, not fall silent).
* ``joint_trajectory``: ``trajectory_msgs/JointTrajectory`` with one point (positions rad,
  velocities rad/s, ``time_from_start`` = one executor period), for ros2_control's
  joint_trajectory_controller (``joint_delta`` policies). On a stop an empty trajectory is sent,
  which makes the controller stop and hold.

Every message is stamped with the tick time; the target in it is meant for one executor period
later. Units are REP-103's.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar

from geometry_msgs.msg import PoseStamped, TwistStamped
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from asyncvla_common import qos
from asyncvla_core.rotations import matrix_to_quaternion, rotvec_to_matrix
from asyncvla_executor.executor_config import OUTPUT_TOPICS
from asyncvla_executor.executor_core import Setpoint, TickResult


class SetpointOutput:
    """Base: one publisher; subclasses fill a message from a setpoint or a hold."""

    key: ClassVar[str] = ""
    message: ClassVar[type] = object
    default_topic: ClassVar[str] = ""
    action_spaces: ClassVar[tuple[str, ...]] = ()

    def __init__(self, node: Any, topic: str, frame_id: str, joint_names: list[str],
                 period: float) -> None:
        self.frame_id, self.joint_names, self.period = frame_id, list(joint_names), period
        self.topic = topic or self.default_topic
        self._pub = node.create_publisher(self.message, self.topic, qos.COMMAND)
        self.published = 0

    def send(self, setpoint: Setpoint, stamp: Any) -> None:
        self._pub.publish(self.fill(setpoint, stamp))
        self.published += 1

    def send_hold(self, result: TickResult, stamp: Any) -> bool:
        """Publish what holding means for this output; True when something was published."""
        msg = self.hold(result, stamp)
        if msg is None:
            return False
        self._pub.publish(msg)
        return True

    def fill(self, setpoint: Setpoint, stamp: Any) -> Any:
        raise NotImplementedError

    def hold(self, result: TickResult, stamp: Any) -> Any | None:
        raise NotImplementedError


class PoseOutput(SetpointOutput):
    key, message, default_topic = "pose", PoseStamped, OUTPUT_TOPICS["pose"]
    action_spaces = ("ee_delta",)

    def _pose(self, target, stamp) -> PoseStamped:
        msg = PoseStamped()
        msg.header.stamp, msg.header.frame_id = stamp, self.frame_id
        p, o = msg.pose.position, msg.pose.orientation
        p.x, p.y, p.z = (float(v) for v in target[:3])
        o.x, o.y, o.z, o.w = (float(v) for v in matrix_to_quaternion(rotvec_to_matrix(target[3:6])))
        return msg

    def fill(self, setpoint: Setpoint, stamp: Any) -> PoseStamped:
        return self._pose(setpoint.target, stamp)

    def hold(self, result: TickResult, stamp: Any) -> PoseStamped | None:
        if not result.stopped_now or result.hold_target is None:
            return None
        return self._pose(result.hold_target, stamp)


class TwistOutput(SetpointOutput):
    key, message, default_topic = "twist", TwistStamped, OUTPUT_TOPICS["twist"]
    action_spaces = ("ee_delta",)

    def fill(self, setpoint: Setpoint, stamp: Any) -> TwistStamped:
        msg = TwistStamped()
        msg.header.stamp, msg.header.frame_id = stamp, self.frame_id
        lin, ang = msg.twist.linear, msg.twist.angular
        lin.x, lin.y, lin.z = (float(v) for v in setpoint.velocity[:3])
        ang.x, ang.y, ang.z = (float(v) for v in setpoint.velocity[3:6])
        return msg

    def hold(self, result: TickResult, stamp: Any) -> TwistStamped:
        msg = TwistStamped()  # all zero
        msg.header.stamp, msg.header.frame_id = stamp, self.frame_id
        return msg


class JointTrajectoryOutput(SetpointOutput):
    key, message = "joint_trajectory", JointTrajectory
    default_topic = OUTPUT_TOPICS["joint_trajectory"]
    action_spaces = ("joint_delta",)

    def fill(self, setpoint: Setpoint, stamp: Any) -> JointTrajectory:
        msg = JointTrajectory()
        msg.header.stamp = stamp
        msg.joint_names = self.joint_names
        point = JointTrajectoryPoint()
        point.positions = [float(v) for v in setpoint.target[:6]]
        point.velocities = [float(v) for v in setpoint.velocity[:6]]
        sec = int(math.floor(self.period))
        point.time_from_start.sec = sec
        point.time_from_start.nanosec = int(round((self.period - sec) * 1e9))
        msg.points = [point]
        return msg

    def hold(self, result: TickResult, stamp: Any) -> JointTrajectory | None:
        if not result.stopped_now:
            return None
        msg = JointTrajectory()  # empty: joint_trajectory_controller stops and holds
        msg.header.stamp = stamp
        msg.joint_names = self.joint_names
        return msg


#: The outputs by `output.kind` value (the keys of `executor_config.OUTPUT_TOPICS`).
OUTPUTS: dict[str, type[SetpointOutput]] = {cls.key: cls for cls in (
    PoseOutput, TwistOutput, JointTrajectoryOutput)}


def output_class(key: str, action_space: str) -> type[SetpointOutput]:
    """The output class for `key`; ValueError names the choices when it does not fit."""
    if key not in OUTPUTS:
        raise ValueError(f"unknown output {key!r}; expected one of {sorted(OUTPUTS)}")
    cls = OUTPUTS[key]
    if action_space not in cls.action_spaces:
        fits = sorted(k for k, c in OUTPUTS.items() if action_space in c.action_spaces)
        raise ValueError(f"output {key!r} cannot carry {action_space} setpoints (no IK/FK "
                         f"here); for {action_space} use one of {fits}")
    return cls
