"""meca500_driver: drives a Meca500 with mecademicpy from the executor's twists (ROS glue only).

Subscribes: geometry_msgs/TwistStamped setpoints (the executor's `twist` output), the latched
enable and e-stop std_msgs/Bool topics.
Publishes: sensor_msgs/JointState and geometry_msgs/PoseStamped from the robot's real-time
monitoring (so no separate robot sender is needed), asyncvla_msgs/SafetyStatus (latched,
~/safety_status) and /diagnostics (robot errors and the robot's own e-stop are ERROR).
Services (std_srvs/Trigger): ~/connect, ~/activate (also sets the velocity limits), ~/home,
~/reset_error, ~/deactivate, ~/disconnect. Nothing is done to the robot unless asked.

The decisions live in driver_core.DriverCore.
"""
from __future__ import annotations

import sys
import time
from typing import Any, Callable

from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from asyncvla_action_node.action_node import ACTION_NODE_PARAMETERS
from asyncvla_common import qos
from asyncvla_common.diagnostics import DiagnosticsPublisher
from asyncvla_common.report import ERROR, OK, WARN, Report
from asyncvla_common.guard import guarded
from asyncvla_common.params import ParamSpec, declare_all, select_specs
from asyncvla_common.spin import spin_node
from asyncvla_common.stats import Counters
from asyncvla_common.timeconv import ns_to_stamp
from asyncvla_action_node.meca500.driver_core import (DriverCore, DriverLimits, RobotView,
                                                      joint_positions_rad, pose_si)
from asyncvla_common.safety import SafetyGate, WatchdogSet
from asyncvla_action_node.operator_inputs import OperatorInputs
from asyncvla_action_node.safety_ros import (SAFETY_PARAMETERS, operator_graphs, publishers_on,
                                             subscribe_operator)
from asyncvla_common.safety_status import fill_status
from asyncvla_msgs.msg import SafetyStatus


MECA500_DRIVER_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("robot_address", "192.168.0.100", "IP address of the Meca500 (its factory "
              "default)", read_only=True),
    ParamSpec("control_port", 10000, "TCP control port (10000 on a robot; other values for "
              "an emulator)", read_only=True, min_value=1, max_value=65535),
    ParamSpec("setpoint_topic", "/asyncvla/setpoint/twist", "TwistStamped setpoints (the "
              "executor's twist output; m/s, rad/s, base frame)", read_only=True),
    ParamSpec("rate_hz", 100.0, "Command and monitoring ticks per second", read_only=True,
              min_value=1.0, max_value=1000.0),
    ParamSpec("setpoint_timeout", 0.05, "Oldest setpoint (s since arrival) still sent to the "
              "robot", read_only=True, min_value=0.001),
    ParamSpec("max_linear_velocity", 0.05, "Largest EE speed sent (m/s); also the robot's "
              "SetCartLinVel", read_only=True, min_value=0.001),
    ParamSpec("max_angular_velocity", 0.5, "Largest EE angular speed sent (rad/s); also the "
              "robot's SetCartAngVel", read_only=True, min_value=0.001),
    ParamSpec("joint_velocity_percent", 10.0, "The robot's SetJointVel (% of its maximum joint "
              "speeds)", read_only=True, min_value=0.001, max_value=100.0),
    ParamSpec("velocity_timeout", 0.05, "The robot's SetVelTimeout (s): it stops by itself when "
              "no velocity command arrives for this long", read_only=True, min_value=0.001,
              max_value=1.0),
    ParamSpec("connect_timeout", 2.0, "Seconds allowed for connect, activate and home",
              read_only=True, min_value=0.1),
    ParamSpec("frame_id", "base_link", "frame_id of the published EE pose", read_only=True),
) + select_specs(ACTION_NODE_PARAMETERS, (
    "joint_names", "joint_state_topic", "pose_topic", "diagnostics_period",
)) + select_specs(SAFETY_PARAMETERS, (
    "enabled_at_start", "enable_topic", "estop_topic", "estop_timeout", "safety_status_topic"))


class Meca500Driver(Node):
    def __init__(self) -> None:
        super().__init__("meca500_driver")
        p = declare_all(self, MECA500_DRIVER_PARAMETERS)
        import mecademicpy.robot as mdr

        self.p = p
        self.robot = mdr.Robot()
        self.core = DriverCore(DriverLimits(p["max_linear_velocity"], p["max_angular_velocity"],
                                            p["setpoint_timeout"]),
                               SafetyGate(p["enabled_at_start"], p["estop_timeout"],
                                          now=time.monotonic()))
        self.dogs = WatchdogSet()
        self.dogs.add("setpoint", 0.0)
        self.counters = Counters()
        self.joint_names = list(p["joint_names"])
        self._rt_stamp = -1
        self._status_key: tuple | None = None
        g = lambda name, cb: guarded(self, self.counters, name, cb)  # noqa: E731
        inputs = MutuallyExclusiveCallbackGroup()
        self.create_subscription(TwistStamped, p["setpoint_topic"], g("setpoint", self._on_twist),
                                 qos.COMMAND, callback_group=inputs)
        self.operator = OperatorInputs.from_params(p)
        self.operator_subs = subscribe_operator(self, p, g("enable", self._on_enable),
                                                g("estop", self._on_estop), inputs)
        self.joint_pub = self.create_publisher(JointState, p["joint_state_topic"],
                                               qos.stream_publisher())
        self.pose_pub = self.create_publisher(PoseStamped, p["pose_topic"], qos.stream_publisher())
        self.status_pub = self.create_publisher(SafetyStatus, p["safety_status_topic"],
                                                qos.LATCHED)
        services = MutuallyExclusiveCallbackGroup()
        for name, action in (("connect", self._connect), ("activate", self._activate),
                             ("home", self._home), ("reset_error", self._reset_error),
                             ("deactivate", self._deactivate), ("disconnect", self._disconnect)):
            self.create_service(Trigger, f"~/{name}", self._trigger(name, action),
                                callback_group=services)
        self.diagnostics = DiagnosticsPublisher(self, period=p["diagnostics_period"])
        self.diagnostics.add("robot", self._diag_robot)
        self.create_timer(1.0 / p["rate_hz"], g("tick", self._on_tick),
                          callback_group=MutuallyExclusiveCallbackGroup())
        self.get_logger().info(
            f"meca500 driver ready: robot {p['robot_address']}:{p['control_port']} (not "
            f"connected: call ~/connect, ~/activate, ~/home), setpoints {p['setpoint_topic']}, "
            f"limits {p['max_linear_velocity']} m/s {p['max_angular_velocity']} rad/s")

    # --- services -----------------------------------------------------------------------------
    def _trigger(self, name: str, action: Callable[[], str]) -> Callable:
        def serve(request: Any, response: Trigger.Response) -> Trigger.Response:
            try:
                response.message = action()
                response.success = True
            except Exception as exc:  # noqa: BLE001 - the caller gets the robot's reason
                response.success, response.message = False, f"{type(exc).__name__}: {exc}"
            self.get_logger().info(f"~/{name}: {'ok' if response.success else 'FAILED'} "
                                   f"{response.message}")
            return response
        return serve

    def _connect(self) -> str:
        self.robot.Connect(f"{self.p['robot_address']}:{self.p['control_port']}",
                           timeout=self.p["connect_timeout"])
        return "connected"

    def _activate(self) -> str:
        self.robot.ActivateRobot()
        self.robot.WaitActivated(timeout=self.p["connect_timeout"])
        p = self.p
        self.robot.SetVelTimeout(p["velocity_timeout"])
        self.robot.SetCartLinVel(p["max_linear_velocity"] * 1e3)
        self.robot.SetCartAngVel(p["max_angular_velocity"] * 180.0 / 3.141592653589793)
        self.robot.SetJointVel(p["joint_velocity_percent"])
        return "activated; velocity limits set"

    def _home(self) -> str:
        self.robot.Home()
        self.robot.WaitHomed(timeout=self.p["connect_timeout"])
        return "homed"

    def _reset_error(self) -> str:
        self.robot.ResetError()
        return "error reset requested"

    def _deactivate(self) -> str:
        self.robot.DeactivateRobot()
        return "deactivated"

    def _disconnect(self) -> str:
        self.robot.Disconnect()
        return "disconnected"

    # --- inputs -------------------------------------------------------------------------------
    def _on_twist(self, msg: TwistStamped) -> None:
        lin, ang = msg.twist.linear, msg.twist.angular
        if self.core.on_setpoint([lin.x, lin.y, lin.z, ang.x, ang.y, ang.z], time.monotonic()):
            self.dogs.feed("setpoint", time.monotonic())

    def _on_enable(self, msg: Bool) -> None:
        if self._admitted("enable", bool(msg.data)):
            self.core.gate.on_enable(bool(msg.data), time.monotonic())
            self._on_tick()

    def _on_estop(self, msg: Bool) -> None:
        if self._admitted("estop", bool(msg.data)):
            self.core.gate.on_estop(bool(msg.data), time.monotonic())
            self._on_tick()  # stop now, not at the next tick

    def _admitted(self, name: str, data: bool) -> bool:
        """Stops always; a resume only while one node publishes the topic (OperatorInputs)."""
        verdict = self.operator.admit(name, data, publishers_on(self, self.operator_subs[name]))
        if not verdict.allowed:
            self.counters.inc(f"refused_{name}")
            self.get_logger().error(f"{name} refused: {verdict.message}",
                                    throttle_duration_sec=2.0)
            self.diagnostics.publish_now_if_worse("robot", ERROR)
        return verdict.allowed

    # --- the tick -----------------------------------------------------------------------------
    def _view(self) -> RobotView:
        if not self.robot.IsConnected():
            return RobotView(False)
        status = self.robot.GetStatusRobot()
        safety = self.robot.GetSafetyStatus()
        return RobotView(True, bool(status.activation_state), bool(status.homing_state),
                         bool(status.error_status),
                         int(status.error_code) if status.error_code else None,
                         status.error_msg or "", int(safety.estop_state) != 0)

    def _on_tick(self) -> None:
        view = self._view()
        before = self.core.last
        decision = self.core.decide(view, time.monotonic())
        if decision.velocity is not None:
            self.robot.MoveLinVelWrf(*decision.velocity)
        if before is None or before.category != decision.category:
            if decision.robot_error:
                self.get_logger().error(f"robot: {decision.reason}")
                self.diagnostics.publish_now_if_worse("robot", ERROR)
            elif decision.reason:
                self.get_logger().info(f"not moving: {decision.reason}")
        if view.connected:
            self._publish_state()
        self._publish_status()

    def _publish_state(self) -> None:
        data = self.robot.GetRobotRtData()
        joints, pose = data.rt_joint_pos, data.rt_cart_pos
        if not (joints.enabled and pose.enabled) or pose.timestamp == self._rt_stamp:
            return
        self._rt_stamp = pose.timestamp
        stamp = ns_to_stamp(self.get_clock().now().nanoseconds)
        js = JointState()
        js.header.stamp, js.name = stamp, self.joint_names
        js.position = joint_positions_rad(joints.data[:6])
        position, quat = pose_si(pose.data[:6])
        ps = PoseStamped()
        ps.header.stamp, ps.header.frame_id = stamp, self.p["frame_id"]
        ps.pose.position.x, ps.pose.position.y, ps.pose.position.z = position
        o = ps.pose.orientation
        o.x, o.y, o.z, o.w = quat
        self.joint_pub.publish(js)
        self.pose_pub.publish(ps)

    def _publish_status(self) -> None:
        d = self.core.last
        moving = d is not None and d.category == "moving"
        key = (self.core.gate.state, moving, d.category if d else "")
        if key == self._status_key:
            return
        self._status_key = key
        msg = fill_status(SafetyStatus(), self.core.gate, self.dogs, time.monotonic(),
                          self.get_clock().now().nanoseconds, moving,
                          "" if moving or d is None else d.reason, self.core.sent, 0)
        self.status_pub.publish(msg)

    def _diag_robot(self) -> Report:
        return self.operator.report(self._robot_report(), operator_graphs(self, self.operator_subs))

    def _robot_report(self) -> Report:
        d = self.core.last
        values = {"commands_sent": self.core.sent,
                  "rejected_setpoints": self.core.rejected_setpoints,
                  "gate": self.core.gate.state.name, **self.counters.snapshot()}
        if d is None:
            return Report(WARN, "no tick yet", values)
        values["state"] = d.category
        if d.robot_error or d.category == "estop":
            return Report(ERROR, d.reason, values)
        if d.category in ("moving", "holding"):
            return Report(OK, d.category, values)
        return Report(WARN, d.reason, values)

    def destroy_node(self) -> None:
        try:
            if self.robot.IsConnected():
                self.robot.Disconnect()
        finally:
            super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return spin_node(Meca500Driver, "meca500_driver", args)


if __name__ == "__main__":
    sys.exit(main())
