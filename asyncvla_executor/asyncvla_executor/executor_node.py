"""asyncvla_executor: executes the action node's chunks at the robot's rate (ROS glue only).

Subscribes: asyncvla_msgs/ActionChunk, the robot's JointState and PoseStamped, the latched
enable and e-stop std_msgs/Bool topics.
Publishes: one setpoint stream chosen by `output.kind` (executor_outputs: PoseStamped,
TwistStamped or JointTrajectory) at `timing.rate_hz`, asyncvla_msgs/SafetyStatus (latched,
~/safety_status), /diagnostics and ~/tracking_error (Float64, m or rad: measured state to the setpoint due now).

The decisions (queue, joining, interpolation, stops, guard) live in executor_core.ExecutorCore;
the parameters are one typed config (executor_config.ExecutorNodeConfig).
"""
from __future__ import annotations

import sys
import time

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64

from asyncvla_common import qos
from asyncvla_common.diagnostics import DiagnosticsPublisher
from asyncvla_common.guard import guarded
from asyncvla_common.log_throttle import LogThrottle
from asyncvla_common.operator_inputs import OperatorInputs
from asyncvla_common.params import declare_config
from asyncvla_common.report import ERROR, OK, WARN, Report
from asyncvla_common.robot_state_input import RobotStateInput
from asyncvla_common.safety import SafetyGate, SafetyState
from asyncvla_common.safety_ros import (make_watchdogs, operator_graphs, publishers_on,
                                        subscribe_operator)
from asyncvla_common.safety_status import fill_status, safety_report
from asyncvla_common.spin import spin_node
from asyncvla_common.stats import Counters, RateMeter
from asyncvla_common.timeconv import ns_to_stamp, stamp_to_ns
from asyncvla_core.chunk_blending import ChunkBlender
from asyncvla_core.output_guard import OutputGuard
from asyncvla_executor.executor_config import ExecutorNodeConfig
from asyncvla_executor.executor_core import ERROR_CATEGORIES, ExecutorCore
from asyncvla_executor.executor_outputs import output_class
from asyncvla_msgs.msg import ActionChunk, SafetyStatus


class ExecutorNode(Node):
    def __init__(self) -> None:
        super().__init__("asyncvla_executor")
        cfg = declare_config(self, ExecutorNodeConfig)
        self.cfg = cfg
        space = cfg.output.action_space
        out_cls = output_class(cfg.output.kind, space)
        core = cfg.core()
        dogs = make_watchdogs({"joint_states": core.robot_state_max_age,
                               "ee_pose": core.robot_state_max_age})
        blending = cfg.blending
        self.core = ExecutorCore(
            core, OutputGuard(cfg.guard.limits(), space),
            ChunkBlender(blending.mode, blending.old_weight, blending.ensemble_decay),
            SafetyGate(cfg.safety.enabled_at_start, cfg.safety.estop_timeout,
                       now=time.monotonic()), dogs)
        self.joint_names = list(cfg.joint_names)
        self.output = out_cls(self, cfg.output.topic, cfg.output.frame_id, self.joint_names,
                              core.period)
        self.counters = Counters()
        self.setpoint_rate = RateMeter()
        self.chunk_rate = RateMeter()
        self.robot_input = RobotStateInput(tuple(self.joint_names),
                                           cfg.freshness.max_future_stamp,
                                           core.robot_state_max_age)
        self._status_key: tuple | None = None
        self._log = LogThrottle(self.get_logger(), cfg.reporting.log_period)

        topics = cfg.topics
        inputs = MutuallyExclusiveCallbackGroup()
        g = lambda name, cb: guarded(self, self.counters, name, cb)  # noqa: E731
        self.create_subscription(ActionChunk, topics.action, g("chunk", self._on_chunk),
                                 qos.COMMAND, callback_group=inputs)
        self.create_subscription(JointState, topics.joint_state, g("joints", self._on_joints),
                                 qos.sensor_subscriber(), callback_group=inputs)
        self.create_subscription(PoseStamped, topics.pose, g("pose", self._on_pose),
                                 qos.sensor_subscriber(), callback_group=inputs)
        operator_topics = {"enable": topics.enable, "estop": topics.estop}
        self.operator = OperatorInputs(operator_topics)
        self.operator_subs = subscribe_operator(self, operator_topics, g("enable", self._on_enable),
                                                g("estop", self._on_estop), inputs)
        self.status_pub = self.create_publisher(SafetyStatus, topics.safety_status, qos.LATCHED)
        self.tracking_pub = self.create_publisher(Float64, "~/tracking_error", 10)
        period = cfg.reporting.diagnostics_period
        self.diagnostics = DiagnosticsPublisher(self, period=period)
        self.diagnostics.add("executor output", self._diag_output)
        self.diagnostics.add("safety", self._diag_safety)
        self.create_timer(period, g("status", lambda: self._publish_status(True)),
                          callback_group=MutuallyExclusiveCallbackGroup())
        self.create_timer(core.period, g("tick", self._on_tick),
                          callback_group=MutuallyExclusiveCallbackGroup())
        self.get_logger().info(
            f"executor ready: {cfg.timing.rate_hz:.0f} Hz, {space} -> {self.output.key} on "
            f"{self.output.topic}, blending {blending.mode}, max_chunk_age "
            f"{core.max_chunk_age:.2f} s, guard {cfg.guard.mode}, {self.core.gate.state.name}")
        self._publish_status(True)

    # --- inputs -------------------------------------------------------------------------------
    def _on_chunk(self, msg: ActionChunk) -> None:
        self.counters.inc("chunks_received")
        self.chunk_rate.tick(time.monotonic())
        n = int(msg.horizon) * int(msg.action_dim)
        if len(msg.actions) != n or n == 0 or len(msg.reference) != 6:
            why = "shape"
        else:
            actions = np.asarray(msg.actions, dtype=np.float32).reshape(msg.horizon,
                                                                        msg.action_dim)
            why = self.core.on_chunk(stamp_to_ns(msg.header.stamp), float(msg.step_period),
                                     np.asarray(msg.reference, dtype=np.float64), actions,
                                     msg.action_space, list(msg.dim_names),
                                     self.get_clock().now().nanoseconds)
        if why:
            self.counters.inc(f"chunk_dropped_{why}")
            self._log(f"chunk #{msg.sequence} dropped: {why}", warn=True)

    def _on_joints(self, msg: JointState) -> None:
        reason = self.robot_input.joints(msg.name, msg.position, stamp_to_ns(msg.header.stamp),
                                         self.get_clock().now().nanoseconds)
        if reason:
            self._robot_rejected("joint_state_rejected", f"joint state rejected: {reason}")
            return
        self.core.watchdogs.feed("joint_states", time.monotonic())

    def _on_pose(self, msg: PoseStamped) -> None:
        pos, ori = msg.pose.position, msg.pose.orientation
        update = self.robot_input.pose([pos.x, pos.y, pos.z], [ori.x, ori.y, ori.z, ori.w],
                                       stamp_to_ns(msg.header.stamp),
                                       self.get_clock().now().nanoseconds)
        if update.reason:
            self._robot_rejected("pose_rejected", f"EE pose rejected: {update.reason}")
            return
        if update.state is not None:
            self.core.watchdogs.feed("ee_pose", time.monotonic())
            self.core.set_robot_state(update.state, update.stamp_ns)

    def _robot_rejected(self, counter: str, text: str) -> None:
        self.counters.inc(counter)
        self.get_logger().warning(text, throttle_duration_sec=2.0)
        self.core.clear_robot_state()

    def _on_enable(self, msg: Bool) -> None:
        self._gate_input("enable", bool(msg.data),
                         lambda now: self.core.gate.on_enable(bool(msg.data), now))

    def _on_estop(self, msg: Bool) -> None:
        self._gate_input("estop", bool(msg.data),
                         lambda now: self.core.gate.on_estop(bool(msg.data), now))

    def _gate_input(self, name: str, data: bool, apply) -> None:
        verdict = self.operator.admit(name, data, publishers_on(self, self.operator_subs[name]))
        if not verdict.allowed:  # a second publisher could restart the robot: only stops count
            self.counters.inc(f"refused_{name}")
            self.get_logger().error(f"{name} refused: {verdict.message}",
                                    throttle_duration_sec=2.0)
            self.diagnostics.publish_now_if_worse("safety", ERROR)
            return
        before = self.core.gate.state
        apply(time.monotonic())
        state = self.core.gate.state
        if state == before:
            return
        text = f"safety state {before.name} -> {state.name}: {self.core.gate.last_change_reason}"
        if state == SafetyState.ESTOP:  # rclpy wants one severity per call site
            self.get_logger().error(text)
        else:
            self.get_logger().warning(text)
        if state != SafetyState.ENABLED:
            self._on_tick()  # hold now, not at the next tick
        self.diagnostics.publish_now_if_worse("safety", ERROR if state == SafetyState.ESTOP
                                              else WARN)
        self._publish_status(True)

    # --- the tick -----------------------------------------------------------------------------
    def _on_tick(self) -> None:
        now_ns = self.get_clock().now().nanoseconds
        result = self.core.tick(now_ns, time.monotonic())
        stamp = ns_to_stamp(now_ns)
        if result.setpoint is not None:
            self.output.send(result.setpoint, stamp)
            self.setpoint_rate.tick(time.monotonic())
            self._publish_tracking()
        else:
            self.output.send_hold(result, stamp)
            if result.stopped_now:
                self._log(f"holding: {result.reason}", warn=True, force=True)
                if result.category in ERROR_CATEGORIES:
                    self.diagnostics.publish_now_if_worse("executor output", ERROR)
        self._publish_status()

    def _publish_tracking(self) -> None:
        error = self.core.tracking_error()
        if error is not None:
            self.tracking_pub.publish(Float64(data=error))

    # --- status -------------------------------------------------------------------------------
    def _publish_status(self, force: bool = False) -> None:
        result = self.core.last_result
        allowed = result is not None and result.setpoint is not None
        key = (self.core.gate.state, allowed, result.category if result else "no tick")
        if not force and key == self._status_key:
            return
        self._status_key = key
        stats = self.core.stats
        msg = fill_status(SafetyStatus(), self.core.gate, self.core.watchdogs, time.monotonic(),
                          self.get_clock().now().nanoseconds, allowed,
                          "" if allowed else (result.reason if result else "no tick yet"),
                          stats.setpoints,
                          int(round(sum(stats.held_s.values()) / self.core.config.period)))
        self.status_pub.publish(msg)

    def _values(self) -> dict[str, object]:
        stats = self.core.stats
        now = time.monotonic()
        values: dict[str, object] = {
            "setpoints": stats.setpoints, "setpoint_rate_hz": self.setpoint_rate.rate(now),
            "chunk_rate_hz": self.chunk_rate.rate(now), "chunks_accepted": stats.chunks_accepted,
            "clamped": stats.clamped, "guard_refusals": stats.guard_refusals,
            "output": self.output.key}
        values.update({f"held_s_{k}": round(v, 3) for k, v in stats.held_s.items()})
        values.update({f"chunks_dropped_{k}": v for k, v in stats.chunks_dropped.items()})
        values.update({f"guard_{k}": v for k, v in stats.guard_violations.items()})
        values.update(self.counters.snapshot())
        return values

    def _diag_output(self) -> Report:
        result = self.core.last_result
        values = self._values()
        if result is None:
            return Report(WARN, "no tick yet", values)
        if result.setpoint is not None:
            return Report(OK, "executing", values)
        receiving = self.chunk_rate.rate(time.monotonic()) > 0
        if result.category in ERROR_CATEGORIES or (receiving and result.category != "disabled"):
            return Report(ERROR, f"holding while chunks arrive: {result.reason}"
                          if receiving else f"holding: {result.reason}", values)
        return Report(WARN, f"holding: {result.reason}", values)

    def _diag_safety(self) -> Report:
        report = safety_report(self.core.gate, self.core.watchdogs, time.monotonic(),
                               {"guard_mode": self.core.guard.limits.mode,
                                **{f"refused_{name}": self.operator.refused(name)
                                   for name in self.operator.locks}})
        return self.operator.report(report, operator_graphs(self, self.operator_subs))


def main(args: list[str] | None = None) -> int:
    return spin_node(ExecutorNode, "asyncvla_executor", args)


if __name__ == "__main__":
    sys.exit(main())
