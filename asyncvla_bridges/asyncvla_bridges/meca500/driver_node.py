"""meca500_driver: drives a Meca500 with mecademicpy from the executor's twists (ROS glue only).

Subscribes: geometry_msgs/TwistStamped setpoints (the executor's `twist` output), the latched
enable and e-stop std_msgs/Bool topics.
Publishes: sensor_msgs/JointState and geometry_msgs/PoseStamped from the robot's real-time
monitoring (the measured joints and pose, which the bring-up enables), asyncvla_msgs/SafetyStatus
(latched, ~/safety_status; the link is its `robot_monitoring` input) and /diagnostics (robot
errors with their code, the robot's e-stop, a lost link and refused frames are ERROR).
Services (std_srvs/Trigger): ~/bring_up (the whole documented sequence, only the steps still
needed), or in order ~/connect, ~/reset_error (if in error), ~/activate, ~/home; and
~/deactivate, ~/disconnect. Nothing is done to the robot unless asked, and after any of them the
operator enables again.

Every decision (readiness, the enable latch, the link watchdog, the bring-up plan, frames,
clipping) lives in driver_core.DriverCore; this node reads mecademicpy, runs the steps the core
plans, and copies numbers into messages.
"""
from __future__ import annotations

import math
import re
import sys
import time
from typing import Any, Callable

from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from asyncvla_bridges.meca500.driver_config import Meca500DriverConfig
from asyncvla_bridges.meca500.driver_core import (LINK, DriverCore, DriverLimits, Frames,
                                                  RobotView, joint_positions_rad, pose_si)
from asyncvla_common import qos
from asyncvla_common.diagnostics import DiagnosticsPublisher
from asyncvla_common.guard import guarded
from asyncvla_common.operator_inputs import OperatorInputs
from asyncvla_common.params import declare_config
from asyncvla_common.report import ERROR, OK, WARN, Report
from asyncvla_common.safety import SafetyGate
from asyncvla_common.safety_ros import operator_graphs, publishers_on, subscribe_operator
from asyncvla_common.safety_status import fill_status
from asyncvla_common.spin import spin_node
from asyncvla_common.stats import Counters
from asyncvla_common.timeconv import ns_to_stamp
from asyncvla_msgs.msg import SafetyStatus

_DURATION = re.compile(r"\d+(\.\d+)? ms")
#: The measured joints and pose (GetRtJointPos 2210, GetRtCartPos 2211), which the robot only
#: sends once SetRealTimeMonitoring lists them (mecademicpy RobotRtData: "Not enabled by default").
MEASURED = ("rt_joint_pos", "rt_cart_pos")

class Meca500Driver(Node):
    def __init__(self) -> None:
        super().__init__("meca500_driver")
        cfg = declare_config(self, Meca500DriverConfig)
        import mecademicpy.robot as mdr
        from mecademicpy.mx_robot_def import robot_status_code_info
        from mecademicpy.robot_classes import RobotCallbacks

        self.cfg = cfg
        robot, limits, timing, topics = cfg.robot, cfg.limits, cfg.timing, cfg.topics
        self._code_info = robot_status_code_info
        self.robot = mdr.Robot()
        callbacks = RobotCallbacks()
        callbacks.on_command_message = self._on_robot_message
        # a thread of mecademicpy's own, so the robot's messages are read while ROS is busy
        self.robot.RegisterCallbacks(callbacks, run_callbacks_in_separate_thread=True)
        self.core = DriverCore(
            DriverLimits(limits.max_linear_velocity, limits.max_angular_velocity,
                         timing.setpoint_timeout, timing.link_timeout),
            # never enabled at start: the robot cannot be ready yet, and the latch needs an
            # enable that comes after the bring-up
            SafetyGate(False, cfg.safety.estop_timeout, now=time.monotonic()),
            Frames(robot.world_frame, robot.tool_frame))
        self.counters = Counters()
        self.joint_names = list(cfg.joint_names)
        self._rt_stamp = -1
        self._status_key: tuple | None = None
        self._checkpoint = 0
        g = lambda name, cb: guarded(self, self.counters, name, cb)  # noqa: E731
        inputs = MutuallyExclusiveCallbackGroup()
        self.create_subscription(TwistStamped, topics.setpoint, g("setpoint", self._on_twist),
                                 qos.COMMAND, callback_group=inputs)
        operator_topics = {"enable": topics.enable, "estop": topics.estop}
        self.operator = OperatorInputs(operator_topics)
        self.operator_subs = subscribe_operator(self, operator_topics, g("enable", self._on_enable),
                                                g("estop", self._on_estop), inputs)
        self.joint_pub = self.create_publisher(JointState, topics.joint_state,
                                               qos.stream_publisher())
        self.pose_pub = self.create_publisher(PoseStamped, topics.pose, qos.stream_publisher())
        self.status_pub = self.create_publisher(SafetyStatus, topics.safety_status,
                                                qos.LATCHED)
        services = MutuallyExclusiveCallbackGroup()
        for name in ("bring_up", "connect", "reset_error", "activate", "home"):
            self.create_service(Trigger, f"~/{name}",
                                self._trigger(name, lambda n=name: self._run_service(n)),
                                callback_group=services)
        for name, action in (("deactivate", self._deactivate), ("disconnect", self._disconnect)):
            self.create_service(Trigger, f"~/{name}", self._trigger(name, action),
                                callback_group=services)
        self._steps: dict[str, Callable[[], None]] = {
            "reconnect": self._step_reconnect, "connect": self._step_connect,
            "reset_error": self._step_reset_error, "monitoring": self._step_monitoring,
            "activate": self._step_activate, "home": self._step_home,
            "resume": self._step_resume, "configure": self._step_configure}
        self.diagnostics = DiagnosticsPublisher(self, period=cfg.reporting.diagnostics_period)
        self.diagnostics.add("robot", self._diag_robot)
        self.create_timer(1.0 / timing.rate_hz, g("tick", self._on_tick),
                          callback_group=MutuallyExclusiveCallbackGroup())
        self.get_logger().info(
            f"meca500 driver ready: robot {robot.address}:{robot.control_port} (not "
            f"connected: call ~/bring_up, then enable), setpoints {topics.setpoint} in "
            f"{robot.world_frame} (MoveLinVelWrf) or {robot.tool_frame} (MoveLinVelTrf), limits "
            f"{limits.max_linear_velocity} m/s {limits.max_angular_velocity} rad/s, "
            f"link_timeout {timing.link_timeout} s")

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

    def _run_service(self, service: str) -> str:
        """Run the core's plan for `service` step by step, re-planning from the robot's state
        after each one (the robot's answers, not the driver's hopes, decide what comes next)."""
        self.core.operator_action(service)
        done: list[str] = []
        for _ in range(2 * len(self._steps)):
            verdict, what = self.core.service_step(service, self._observe(), time.monotonic())
            if verdict == "run":
                if what in done:
                    raise RuntimeError(f"{what} did not take effect (done so far: "
                                       f"{', '.join(done)}); see /diagnostics")
                self._steps[what]()
                done.append(what)
                continue
            if verdict == "blocked" and not done:
                raise RuntimeError(what)
            return f"{', '.join(done) or 'nothing to do'}; {what}"
        raise RuntimeError(f"no end to the bring-up plan after {done}")

    def _wait(self, what: str, condition: Callable[[], bool], timeout: float) -> None:
        """Wait for the robot's state to show a step took effect (its status arrives async)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not within {timeout} s (robot error, if any: "
                                   f"{self.core.errors.describe(self._view())})")
            time.sleep(0.01)

    def _step_reconnect(self) -> None:
        """A connection whose link is dead (cable, power cut): mecademicpy still holds it (it
        would notice only after 10 s), so drop it before connecting anew."""
        self.robot.Disconnect()
        self._step_connect()

    def _step_connect(self) -> None:
        # disconnect_on_exception=False: a refused command must not drop the link (a dropped
        # control connection pauses the robot); socket errors still disconnect.
        self.robot.Connect(f"{self.cfg.robot.address}:{self.cfg.robot.control_port}",
                           timeout=self.cfg.timing.connect_timeout, disconnect_on_exception=False)
        self.core.on_connected()
        self._rt_stamp = -1
        self._wait("the first monitoring cycle", lambda: self._observe().monitoring_token
                   is not None, self.cfg.timing.connect_timeout)

    def _step_reset_error(self) -> None:
        self.robot.ResetError()
        self.robot.WaitErrorReset(timeout=self.cfg.timing.step_timeout)

    def _step_monitoring(self) -> None:
        self.robot.SetRealTimeMonitoring(*MEASURED)
        start = self.robot.GetRobotRtData().cycle_count

        def flowing() -> bool:
            data = self.robot.GetRobotRtData()
            return (data.rt_joint_pos.enabled and data.rt_cart_pos.enabled
                    and data.cycle_count >= start + 2)
        self._wait("the measured joints and pose in the monitoring", flowing,
                   self.cfg.timing.step_timeout)

    def _step_activate(self) -> None:
        self.robot.ActivateRobot()
        self.robot.WaitActivated(timeout=self.cfg.timing.step_timeout)

    def _step_home(self) -> None:
        self.robot.Home()
        self.robot.WaitHomed(timeout=self.cfg.timing.step_timeout)

    def _step_resume(self) -> None:
        """ClearMotion first: whatever is still queued (e.g. velocity commands written into a
        link that came back) must not run when motion resumes."""
        self.robot.ClearMotion()  # leaves motion paused; the robot runs commands in order
        self.robot.ResumeMotion()
        self.robot.WaitMotionResumed(timeout=self.cfg.timing.step_timeout)

    def _step_configure(self) -> None:
        """The velocity settings, after homing (motion-queue commands: refused before, reset at
        every activation), confirmed by a checkpoint the robot reaches only after them."""
        robot, limits = self.cfg.robot, self.cfg.limits
        self.robot.SetVelTimeout(robot.velocity_timeout)
        self.robot.SetCartLinVel(limits.max_linear_velocity * 1e3)
        self.robot.SetCartAngVel(math.degrees(limits.max_angular_velocity))
        self.robot.SetJointVel(robot.joint_velocity_percent)
        self._checkpoint = self._checkpoint % 8000 + 1
        self.robot.SetCheckpoint(self._checkpoint).wait(timeout=self.cfg.timing.step_timeout)
        self.core.on_configured()

    def _deactivate(self) -> str:
        self.core.operator_action("deactivate")
        self.robot.DeactivateRobot()
        return "deactivated"

    def _disconnect(self) -> str:
        self.core.operator_action("disconnect")
        self.robot.Disconnect()
        return "disconnected"

    # --- inputs -------------------------------------------------------------------------------
    def _on_robot_message(self, message: Any) -> None:
        """Every message on the control port (mecademicpy's callback thread)."""
        code = int(getattr(message, "id", 0) or 0)
        info = self._code_info.get(code)
        # [1xxx] are command errors [PM9 2.5]; for the rest mecademicpy's table says which are
        is_error = bool(info.is_error) if info is not None else 1000 <= code < 2000
        self.core.errors.on_message(code, str(getattr(message, "data", "")), is_error,
                                    time.monotonic())

    def _on_twist(self, msg: TwistStamped) -> None:
        lin, ang = msg.twist.linear, msg.twist.angular
        if not self.core.on_setpoint([lin.x, lin.y, lin.z, ang.x, ang.y, ang.z],
                                     msg.header.frame_id, time.monotonic()):
            self.get_logger().warning(
                f"setpoint refused (frame {msg.header.frame_id!r}: robot.world_frame "
                f"{self.cfg.robot.world_frame!r}, robot.tool_frame "
                f"{self.cfg.robot.tool_frame!r}; or not finite)",
                throttle_duration_sec=2.0)

    def _on_enable(self, msg: Bool) -> None:
        if self._admitted("enable", bool(msg.data)):
            if not self.core.on_enable(bool(msg.data), time.monotonic()):
                reason = self.core.last.reason if self.core.last else "no tick yet"
                self.get_logger().warning(f"enable refused: the robot is not ready ({reason})")
            self._on_tick()

    def _on_estop(self, msg: Bool) -> None:
        if self._admitted("estop", bool(msg.data)):
            self.core.on_estop(bool(msg.data), time.monotonic())
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
        data = self.robot.GetRobotRtData()
        token = (data.cycle_count, data.rt_target_joint_pos.timestamp) if data.cycle_count \
            else None
        code = status.error_code
        return RobotView(True, bool(status.activation_state), bool(status.homing_state),
                         bool(status.error_status), int(code) if code else None,
                         status.error_msg or "", int(safety.estop_state) != 0,
                         bool(status.pause_motion_status),
                         bool(data.rt_joint_pos.enabled and data.rt_cart_pos.enabled), token)

    def _observe(self) -> RobotView:
        """The robot's state, its newest monitoring cycle fed to the link watchdog (the tick
        does not run while a service does, so the services observe it this way too)."""
        view = self._view()
        self.core.on_monitoring(view.monitoring_token, time.monotonic())
        return view

    def _on_tick(self) -> None:
        now = time.monotonic()
        view = self._observe()
        before = self.core.last
        decision = self.core.decide(view, now)
        if decision.velocity is not None:
            getattr(self.robot, decision.command)(*decision.velocity)
        if before is None or before.category != decision.category:
            if decision.level == ERROR:
                self.get_logger().error(f"robot: {decision.reason}")
                self.diagnostics.publish_now_if_worse("robot", ERROR)
            elif decision.reason:
                self.get_logger().info(f"not moving: {decision.reason}")
        if view.connected and self.core.link_ok(now):
            self._publish_state()
        self._publish_status(now)

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
        ps.header.stamp, ps.header.frame_id = stamp, self.cfg.robot.world_frame
        ps.pose.position.x, ps.pose.position.y, ps.pose.position.z = position
        o = ps.pose.orientation
        o.x, o.y, o.z, o.w = quat
        self.joint_pub.publish(js)
        self.pose_pub.publish(ps)

    def _publish_status(self, now: float) -> None:
        d = self.core.last
        moving = d is not None and d.category == "moving"
        # the reason without its changing ages, so a lost link is not republished every tick
        reason = _DURATION.sub("N ms", d.reason) if d else ""
        key = (self.core.gate.state, moving, d.category if d else "", reason,
               self.core.link_ok(now))
        if key == self._status_key:
            return
        self._status_key = key
        msg = fill_status(SafetyStatus(), self.core.gate, self.core.dogs, now,
                          self.get_clock().now().nanoseconds, moving,
                          "" if moving or d is None else d.reason, self.core.sent, 0)
        self.status_pub.publish(msg)

    def _diag_robot(self) -> Report:
        return self.operator.report(self._robot_report(), operator_graphs(self, self.operator_subs))

    def _robot_report(self) -> Report:
        d = self.core.last
        now = time.monotonic()
        link = next(w for w in self.core.dogs.snapshot(now) if w.name == LINK)
        values = {"commands_sent": self.core.sent,
                  "rejected_setpoints": self.core.rejected_setpoints,
                  "refused_frame": self.core.refused_frames,
                  "refused_enables_not_ready": self.core.refused_enables,
                  "latch_trips": self.core.latch_trips,
                  "link_ok": self.core.link_ok(now), "link_trips": link.trips,
                  "monitoring_age_ms": round(link.age(now) * 1e3, 1) if link.last_seen else -1,
                  "robot_errors_seen": self.core.errors.count,
                  "gate": self.core.gate.state.name, **self.counters.snapshot()}
        if d is None:
            return Report(WARN, "no tick yet", values)
        values["state"] = d.category
        return Report(d.level, d.category if d.level == OK else d.reason, values)

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
