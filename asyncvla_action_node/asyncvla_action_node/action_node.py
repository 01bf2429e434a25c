"""asyncvla_action_node: fixed-rate action expert over the newest VL features (ROS glue only).

Subscribes: VL features (latched), force/OCT batches, joint states and EE pose; the enable and
e-stop std_msgs/Bool topics (latched).
Publishes: asyncvla_msgs/ActionChunk, optionally trajectory_msgs/JointTrajectory, /diagnostics,
asyncvla_msgs/SafetyStatus (latched, ~/safety_status) and Float64 topics under ~/ for rqt_plot
(vl_age, inference_time_ms, vl_reuse_count, sensor_fill, chunk_rate_hz).

Every decision lives in action_loop.ActionLoop (ROS-free, unit-tested); this module turns
messages into its calls and its outcomes into messages. Its parameters are one typed config
(action_config.ActionNodeConfig, dotted names by concern: timing.action_rate_hz, ...). The node
spins a single-threaded executor (see asyncvla_common/spin.py for why).
"""
from __future__ import annotations

import functools
import sys
import time

from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64
from trajectory_msgs.msg import JointTrajectory

from asyncvla_action_node import action_messages
from asyncvla_action_node.action_core import TickOutcome
from asyncvla_action_node.action_loop import ActionLoop, PolicyShape
from asyncvla_action_node.action_config import PLOT_TOPICS, ActionNodeConfig
from asyncvla_action_node.action_runner import RetimedRunner
from asyncvla_action_node.chunk_outlets import OUTLETS
from asyncvla_action_node.expert_setup import build_expert, expert_report
from asyncvla_common import qos
from asyncvla_common.diagnostics import DiagnosticsPublisher
from asyncvla_common.guard import guarded
from asyncvla_common.params import declare_config
from asyncvla_common.report import Report
from asyncvla_common.safety_ros import publishers_on, subscribe_operator, worse
from asyncvla_common.safety_status import fill_status
from asyncvla_common.spin import spin_node
from asyncvla_common.timeconv import stamp_to_ns
from asyncvla_msgs.msg import ActionChunk, ForceOctBatch, SafetyStatus, VLFeatures


class ActionNode(Node):
    def __init__(self) -> None:
        super().__init__("asyncvla_action_node")
        cfg = declare_config(self, ActionNodeConfig)
        cfg.timing.check()
        self.cfg = cfg
        from asyncvla_policy.checkpoint import load_policy, read_checkpoint_config

        config, metadata = read_checkpoint_config(cfg.checkpoint)
        policy = load_policy(cfg.checkpoint, device=cfg.expert.device)
        self.expert = build_expert(policy, cfg.expert)
        if self.expert.auto_choice is not None:
            self.get_logger().info(self.expert.auto_choice.summary())
        shape = PolicyShape.from_checkpoint(config, metadata, cfg.checkpoint,
                                            cfg.vl.expected_model_id)
        self.loop = ActionLoop(cfg, shape, self.expert.predict, self._log, self._hold,
                               self._report_now)
        self.counters = self.loop.counters
        self.joint_names = list(self.loop.robot_input.joint_names)
        publish_trajectory = cfg.publish_joint_trajectory
        if publish_trajectory and shape.action_space != "joint_delta":
            self.get_logger().error(
                f"publish_joint_trajectory needs a joint_delta policy; this checkpoint is "
                f"{shape.action_space}: no JointTrajectory will be published")
            publish_trajectory = False
        self._status_key: tuple | None = None
        timing, topics = cfg.timing, cfg.topics
        self.runner = RetimedRunner(
            self.loop, timing.action_rate_hz, timing.inference_trigger,
            timing.inference_max_rate_hz, self._now_ns, self._publish_outcome,
            self._thread_failed, timing.tick_thread_priority, timing.lead_s())
        # Every entry into the loop holds this lock (the runner's threads take it too).
        self._lock = self.runner.lock

        inputs = MutuallyExclusiveCallbackGroup()
        g = lambda name, cb: guarded(self, self.counters, name, self._locked(cb))  # noqa: E731
        # raw: the size is checked before the message is deserialized
        self.vl_sub = self.create_subscription(
            VLFeatures, topics.vl_features, g("vl", self._on_vl), qos.LATCHED,
            callback_group=inputs, raw=True)
        self.create_subscription(ForceOctBatch, topics.sensor, g("sensor", self._on_sensor),
                                 qos.sensor_subscriber(50), callback_group=inputs)
        self.create_subscription(JointState, topics.joint_state, g("joints", self._on_joints),
                                 qos.sensor_subscriber(), callback_group=inputs)
        self.create_subscription(PoseStamped, topics.pose, g("pose", self._on_pose),
                                 qos.sensor_subscriber(), callback_group=inputs)
        self.control_subs = subscribe_operator(
            self, {"enable": topics.enable, "estop": topics.estop},
            g("enable", self._control_cb("enable")), g("estop", self._control_cb("estop")),
            inputs)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.status_pub = self.create_publisher(SafetyStatus, topics.safety_status, qos.LATCHED)
        self.publish_trajectory = publish_trajectory
        outlets = [(ActionChunk, topics.action)]
        if publish_trajectory:
            outlets.append((JointTrajectory, topics.trajectory))
        # The chunk (outlet 0) and the trajectory (1) go out as the tick design says.
        self.outlet = OUTLETS[timing.tick_source](
            self, outlets, qos.COMMAND, qos_name="COMMAND", priority=timing.tick_thread_priority,
            max_late_s=0.5 / timing.action_rate_hz, hold_outlets={1})
        self.plot_pubs = {name: self.create_publisher(Float64, f"~/{name}", 10)
                          for name in PLOT_TOPICS}
        period = cfg.reporting.diagnostics_period
        self.diagnostics = DiagnosticsPublisher(self, period=period)
        self.diagnostics.add("action output", self._locked(self._output_report))
        self.diagnostics.add("vl features", self._locked(lambda: self.loop.vl_report(
            self._now_ns(), publishers_on(self, self.vl_sub))))
        self.diagnostics.add("inputs", self._locked(self.loop.inputs_report))
        expert_status = expert_report(self.expert)  # fixed at start-up
        self.diagnostics.add("expert runtime", lambda: expert_status)
        self.diagnostics.add("safety", self._locked(lambda: self.loop.safety_report(
            {n: publishers_on(self, sub) for n, sub in self.control_subs.items()})))
        self.create_timer(period, g("status", lambda: self._publish_status(True)),
                          callback_group=MutuallyExclusiveCallbackGroup())
        self.get_logger().info(
            f"action node ready: {timing.action_rate_hz:.1f} Hz ({timing.tick_source}, expert "
            f"on {timing.inference_trigger} <= {timing.inference_max_rate_hz:.0f} Hz), expert "
            f"{self.expert.name}" + (" (auto)" if self.expert.auto_choice is not None else "")
            + f", horizon {shape.horizon}x"
            f"{shape.action_dim} ({shape.action_space}), max_vl_age "
            f"{cfg.freshness.max_vl_age:.2f} s, blending {cfg.blending.mode}, expected VL model "
            f"{self.loop.expected_model or '(any)'}, guard {cfg.guard.mode}, "
            f"{self.loop.gate.state.name}"
            + ("" if cfg.safety.enabled_at_start else f" (publish True on {topics.enable})"))
        self._publish_status(True)
        self.loop.tick_note = lambda: (f"timing thread, {self.runner.ticker.priority_note}; "
                                       f"{self.outlet.note}")
        self.runner.start()

    def destroy_node(self) -> None:
        self.runner.stop()
        self.outlet.stop()
        super().destroy_node()

    def _locked(self, fn):
        @functools.wraps(fn)  # rclpy reads the signature: (msg) or (msg, info)
        def call(*args):
            with self._lock:
                return fn(*args)
        return call

    def _thread_failed(self, where: str, exc: BaseException) -> None:
        self.counters.inc(f"callback_errors_{where}")
        self.loop.log_throttled(f"thread_{where}", "error",
                                f"{where} thread: {type(exc).__name__}: {exc}", 2.0)

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    # --- inputs -----------------------------------------------------------------------------
    def _on_vl(self, raw: bytes, info: dict) -> None:
        if not self.loop.vl_arrival(len(raw), publishers_on(self, self.vl_sub),
                                    info.get("source_timestamp"),
                                    info.get("publication_sequence_number")):
            return
        msg = deserialize_message(raw, VLFeatures)
        if self.loop.vl_features(msg.data, msg.num_tokens, msg.feature_dim, msg.dtype,
                                 msg.sequence, stamp_to_ns(msg.header.stamp), msg.model_id,
                                 self._now_ns(), msg.adapter_id, msg.feature_layer, msg.prompt):
            self.loop.log_throttled(
                "vl", "info", f"[VL #{msg.sequence}] {msg.num_tokens}x{msg.feature_dim}, "
                f"computed in {msg.compute_time * 1e3:.0f} ms from {len(msg.view_names)} views")

    def _on_sensor(self, msg: ForceOctBatch) -> None:
        if self.loop.sensor_batch(msg.num_samples, [stamp_to_ns(s) for s in msg.sample_stamps],
                                  msg.force, msg.alines, msg.aline_length, self._now_ns()):
            self.runner.sensor_batch_arrived()

    def _on_joints(self, msg: JointState) -> None:
        self.loop.joints(msg.name, msg.position, stamp_to_ns(msg.header.stamp), self._now_ns())

    def _on_pose(self, msg: PoseStamped) -> None:
        pos, ori = msg.pose.position, msg.pose.orientation
        self.loop.pose([pos.x, pos.y, pos.z], [ori.x, ori.y, ori.z, ori.w],
                       stamp_to_ns(msg.header.stamp), self._now_ns())

    def _control_cb(self, name: str):
        return lambda msg: self.loop.control(name, bool(msg.data),
                                             publishers_on(self, self.control_subs[name]))

    def _on_set_parameters(self, params: list) -> SetParametersResult:
        for param in params:
            if param.name == "vl.publisher":  # the operator's re-lock
                self.loop.relock_vl(str(param.value))
        return SetParametersResult(successful=True)

    # --- the tick and what the loop asks for ----------------------------------------------------
    def _publish_outcome(self, outcome: TickOutcome, deadline_ns: int = 0) -> None:
        """A tick's outcome as messages (from the tick's thread, holding the loop's lock); the
        chunk and trajectory through the outlet, for the tick's monotonic deadline."""
        if outcome.chunk is not None:
            msg = action_messages.action_chunk(outcome, self.loop.sequence,
                                               self.loop.dim_names, self.loop.shape.action_space)
            messages: list[tuple[int, object]] = [(0, msg)]
            if self.publish_trajectory:
                messages.append((1, action_messages.joint_trajectory(
                    outcome.chunk, msg.header, self.joint_names)))
            self.outlet.publish(messages, deadline_ns)
        for name, value in self.loop.plot_values().items():
            self.plot_pubs[name].publish(Float64(data=float(value)))
        self._publish_status()

    def _output_report(self) -> Report:
        """The loop's "action output", worse when the outlet (the publisher process) fails."""
        report, outlet = self.loop.output_report(), self.outlet.report()
        if outlet is None:
            return report
        merged = worse(report, outlet)
        merged.values.update(outlet.values)
        return merged

    def _log(self, level: str, text: str) -> None:
        # One call site per severity: rclpy refuses one site used at two severities.
        if level == "error":
            self.get_logger().error(text)
        elif level == "warning":
            self.get_logger().warning(text)
        else:
            self.get_logger().info(text)

    def _hold(self) -> None:
        """Stop and hold: the hold trajectory where one is published, and in every design a
        cancel of the tick the publisher process may hold prepared."""
        if not self.publish_trajectory:
            self.outlet.hold([])
            return
        self.outlet.hold([(1, action_messages.hold_trajectory(
            self.get_clock().now().to_msg(), self.joint_names))])
        self.counters.inc("hold_trajectories_published")

    def _report_now(self, status: str, level: int) -> None:
        self.diagnostics.publish_now_if_worse(status, level)
        if status == "safety":
            self._publish_status(True)

    def _publish_status(self, force: bool = False) -> None:
        with self._lock:
            self._publish_status_locked(force)

    def _publish_status_locked(self, force: bool) -> None:
        key = self.loop.status_key()
        if not force and key == self._status_key:
            return
        self._status_key = key
        allowed, reason, published, withheld = self.loop.status()
        self.status_pub.publish(fill_status(
            SafetyStatus(), self.loop.gate, self.loop.watchdogs, time.monotonic(),
            self._now_ns(), allowed, reason, published, withheld))


def main(args: list[str] | None = None) -> int:
    return spin_node(ActionNode, "asyncvla_action_node", args)


if __name__ == "__main__":
    sys.exit(main())
