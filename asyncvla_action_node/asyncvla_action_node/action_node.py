"""asyncvla_action_node: fixed-rate action expert over the newest VL features (ROS glue only).

Subscribes: VL features (latched), force/OCT batches, joint states and EE pose; the enable and
e-stop std_msgs/Bool topics (latched).
Publishes: asyncvla_msgs/ActionChunk, optionally trajectory_msgs/JointTrajectory, /diagnostics,
asyncvla_msgs/SafetyStatus (latched, ~/safety_status) and Float64 topics under ~/ for rqt_plot
(vl_age, inference_time_ms, vl_reuse_count, sensor_fill, chunk_rate_hz).

Fail closed: a chunk leaves the node only when the node is enabled and not e-stopped, every input
watchdog is fed, every input is fresh and valid (ActionCore) and the output guard accepts it.

The decisions live in action_core.ActionCore; this module wires topics, parameters and timers.
The node spins a single-threaded executor (see common/spin.py for why); the stores it fills are
thread-safe all the same, so the core can be driven from any thread in tests.
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from asyncvla_action_node.action_core import ActionCore, ActionCoreConfig, TickOutcome
from asyncvla_action_node.chunk_blending import ChunkBlender, blending_modes
from asyncvla_common import qos
from asyncvla_common.diagnostics import ERROR, OK, WARN, DiagnosticsPublisher, Report
from asyncvla_common.guard import guarded, report_error, run_all
from asyncvla_common.params import ParamSpec, declare_all
from asyncvla_common.spin import spin_node
from asyncvla_common.stats import Counters, RateMeter, RollingStats
from asyncvla_common.timeconv import ns_to_stamp, stamp_to_ns
from asyncvla_action_node.input_checks import (oversize_reason, sensor_batch_size_reason,
                                               vl_message_budget)
from asyncvla_action_node.output_guard import OutputGuard
from asyncvla_action_node.publisher_lock import PublisherLock
from asyncvla_action_node.rejection_tracker import RejectionSet
from asyncvla_action_node.robot_state_input import RobotStateInput
from asyncvla_common.safety import SafetyGate, SafetyState, hold_required
from asyncvla_action_node.safety_ros import (SAFETY_PARAMETERS, WATCHDOGS, guard_limits,
                                             make_watchdogs, publishers_on, vl_report, worse)
from asyncvla_common.safety_status import fill_status, safety_report
from asyncvla_action_node.sensor_window import SensorWindow
from asyncvla_action_node.vl_store import VLFeatureStore
from asyncvla_msgs.msg import ActionChunk, ForceOctBatch, SafetyStatus, VLFeatures
from asyncvla_training.conventions import ACTION_SPACES, JOINT_NAMES, sensor_batch_reason
from asyncvla_training.vl_contract import CheckpointVL, VLSeen
from asyncvla_training.vl_payload import decode_features


#: Every parameter of the action node (name, default, description, range); declared in order.
#: The horizon and action dimension come from the checkpoint, not from parameters.
ACTION_NODE_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("checkpoint", "", "Policy checkpoint directory (model.safetensors + config.json)",
              read_only=True),
    ParamSpec("device", "cpu", "torch device for the action expert (cpu, cuda, cuda:0)",
              read_only=True),
    ParamSpec("expert_dtype", "float32", "Precision of the action expert: float32 (exact) or "
              "bfloat16 (autocast; about 2x faster on AVX-512 CPUs, outputs within ~1e-2 of "
              "float32 in normalised units)", read_only=True),
    ParamSpec("action_rate_hz", 10.0, "Action ticks per second", read_only=True,
              min_value=0.5, max_value=200.0),
    ParamSpec("max_vl_age", 1.0, "Oldest VL features (s, camera stamp to tick) the expert may "
              "act on; older -> no action, ERROR", min_value=0.0),
    ParamSpec("sensor_max_age", 0.05, "Max age (s) of the newest sensor sample at a tick",
              min_value=0.0),
    ParamSpec("sensor_max_gap", 0.01, "Largest gap (s) allowed between neighbouring samples "
              "inside the window", read_only=True, min_value=0.0),
    ParamSpec("robot_state_max_age", 0.1, "Max age (s) of the joint state and EE pose at a "
              "tick", min_value=0.0),
    ParamSpec("expected_model_id", "", "Reject VL features from any other model id ('' = the "
              "checkpoint's vl_model_id, or any)", read_only=True),
    ParamSpec("chunk_blending", "latest_only", f"Overlap handling: {blending_modes()}",
              read_only=True),
    ParamSpec("blend_old_weight", 0.3, "weighted_blend: weight of the previously published "
              "chunk", read_only=True, min_value=0.0, max_value=0.99),
    ParamSpec("ensemble_decay", 0.1, "temporal_ensemble: exp(-decay*k) weights, k=0 oldest",
              read_only=True, min_value=0.0),
    ParamSpec("publish_joint_trajectory", False, "Also publish trajectory_msgs/JointTrajectory "
              "(joint_delta policies)", read_only=True),
    ParamSpec("joint_names", list(JOINT_NAMES), "The 6 joints, base to wrist: JointState is read "
              "by these names (a message lacking one is refused), and the trajectory uses them",
              read_only=True),
    ParamSpec("max_future_stamp", 0.2, "Inputs stamped further ahead of this node's clock (s) "
              "are refused at arrival and counted (a clock step or a bad sender)",
              read_only=True, min_value=0.0),
    ParamSpec("vl_features_topic", "/asyncvla/vl_features", "VLFeatures input (latched)",
              read_only=True),
    ParamSpec("vl_publisher", "", "The node whose VL features are taken ('' = lock onto the "
              "first node seen alone on the topic); set at run time to re-lock after a second "
              "publisher was reported"),
    ParamSpec("sensor_topic", "/sensor/force_oct", "ForceOctBatch input", read_only=True),
    ParamSpec("joint_state_topic", "/robot/joint_states", "JointState input", read_only=True),
    ParamSpec("pose_topic", "/robot/ee_pose", "PoseStamped input (EE in base frame)",
              read_only=True),
    ParamSpec("action_topic", "/asyncvla/action_chunk", "ActionChunk output", read_only=True),
    ParamSpec("trajectory_topic", "/asyncvla/joint_trajectory", "JointTrajectory output",
              read_only=True),
    ParamSpec("diagnostics_period", 1.0, "Seconds between /diagnostics", read_only=True,
              min_value=0.05),
    ParamSpec("log_period", 1.0, "Seconds between status log lines (throttle)", min_value=0.0),
) + SAFETY_PARAMETERS

#: Tick outcome categories that are errors (the rest, e.g. "disabled" or a filling buffer, WARN).
ERROR_CATEGORIES = ("vl_stale", "vl_missing", "vl_future", "policy_error", "policy_output",
                    "guard", "watchdog", "estop", "robot_state_future", "robot_state_stale")


def _duration(seconds: float):
    from builtin_interfaces.msg import Duration

    sec = int(math.floor(seconds))
    return Duration(sec=sec, nanosec=int(round((seconds - sec) * 1e9)))


class ActionNode(Node):
    def __init__(self) -> None:
        super().__init__("asyncvla_action_node")
        p = declare_all(self, ACTION_NODE_PARAMETERS)
        from asyncvla_training.models.checkpoint import load_policy, read_checkpoint_config

        config, metadata = read_checkpoint_config(p["checkpoint"])
        self.policy = load_policy(p["checkpoint"], device=p["device"])
        self.policy.set_inference_dtype(p["expert_dtype"])
        self.action_space = str(metadata.get("action_space", "ee_delta"))
        if self.action_space not in ACTION_SPACES:
            raise ValueError(f"checkpoint action_space {self.action_space!r} is unknown")
        self.dim_names = list(ACTION_SPACES[self.action_space])[:config.action_dim]
        step_period = float(metadata.get("step_period", 0.1))
        expected_model = p["expected_model_id"] or str(metadata.get("vl_model_id", ""))
        self.horizon, self.action_dim = config.horizon, config.action_dim
        max_future = p["max_future_stamp"]
        contract = None if p["expected_model_id"] else CheckpointVL.from_metadata(
            metadata, p["checkpoint"])
        self.vl_store = VLFeatureStore(config.vl_num_tokens, config.vl_dim, expected_model,
                                       max_future, contract)
        self.sensor = SensorWindow(config.sensor.window, config.sensor.in_channels - 1,
                                   max_gap=p["sensor_max_gap"], max_future=max_future)
        self.robot_input = RobotStateInput(tuple(p["joint_names"]), max_future,
                                           p["robot_state_max_age"])
        self.vl_budget = vl_message_budget(config.vl_num_tokens, config.vl_dim)
        self.refusals = RejectionSet(tuple(name for name, _ in WATCHDOGS))
        blender = ChunkBlender(p["chunk_blending"], p["blend_old_weight"], p["ensemble_decay"],
                               history=config.horizon)
        core_cfg = ActionCoreConfig(
            max_vl_age=p["max_vl_age"], sensor_max_age=p["sensor_max_age"],
            robot_state_max_age=p["robot_state_max_age"], future_tolerance=max_future,
            step_period=step_period,
            action_space=self.action_space, horizon=config.horizon, action_dim=config.action_dim)
        self.guard = OutputGuard(guard_limits(p), self.action_space)
        self.core = ActionCore(self.policy.predict, self.vl_store, self.sensor, core_cfg, blender,
                               self.guard)
        self.gate = SafetyGate(p["enabled_at_start"], p["estop_timeout"], now=time.monotonic())
        self.watchdogs = make_watchdogs(p)
        self.joint_names: list[str] = list(self.robot_input.joint_names)
        self.publish_trajectory = bool(p["publish_joint_trajectory"])
        if self.publish_trajectory and self.action_space != "joint_delta":
            self.get_logger().error(
                f"publish_joint_trajectory needs a joint_delta policy; this checkpoint is "
                f"{self.action_space}: no JointTrajectory will be published")
            self.publish_trajectory = False
        self.log_period = p["log_period"]

        self.counters = Counters()
        self.chunk_rate = RateMeter()
        self.inference_stats = RollingStats()
        self.vl_age_stats = RollingStats()
        self.last_outcome: TickOutcome | None = None
        self._last_log = 0.0
        self._last_tick_ns: int | None = None
        self._sequence = 0
        self._status_key: tuple | None = None
        self._gate_state = self.gate.state  # the state the last gate report was made for

        inputs = MutuallyExclusiveCallbackGroup()
        g = lambda name, cb: guarded(self, self.counters, name, cb)  # noqa: E731
        # raw: the size is checked before the message is deserialized (oversize is refused
        # without a copy of its payload)
        self.vl_sub = self.create_subscription(
            VLFeatures, p["vl_features_topic"], g("vl", self._on_vl_raw), qos.LATCHED,
            callback_group=inputs, raw=True)
        self.create_subscription(ForceOctBatch, p["sensor_topic"], g("sensor", self._on_sensor),
                                 qos.sensor_subscriber(50), callback_group=inputs)
        self.create_subscription(JointState, p["joint_state_topic"], g("joints", self._on_joints),
                                 qos.sensor_subscriber(), callback_group=inputs)
        self.create_subscription(PoseStamped, p["pose_topic"], g("pose", self._on_pose),
                                 qos.sensor_subscriber(), callback_group=inputs)
        self.control_subs = {name: self.create_subscription(
            Bool, p[f"{name}_topic"], g(name, cb), qos.LATCHED, callback_group=inputs)
            for name, cb in (("enable", self._on_enable), ("estop", self._on_estop))}
        self.locks = {"vl_features": PublisherLock(self.vl_sub.topic_name, True,
                                                   p["vl_publisher"]),
                      **{name: PublisherLock(sub.topic_name, lock_identity=False)
                         for name, sub in self.control_subs.items()}}
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.status_pub = self.create_publisher(SafetyStatus, p["safety_status_topic"], qos.LATCHED)
        self.chunk_pub = self.create_publisher(ActionChunk, p["action_topic"], qos.COMMAND)
        self.traj_pub = self.create_publisher(JointTrajectory, p["trajectory_topic"], qos.COMMAND) \
            if self.publish_trajectory else None
        self.plot_pubs = {name: self.create_publisher(Float64, f"~/{name}", 10) for name in (
            "vl_age", "inference_time_ms", "vl_reuse_count", "sensor_fill", "chunk_rate_hz")}
        self.diagnostics = DiagnosticsPublisher(self, period=p["diagnostics_period"])
        self.diagnostics.add("action output", self._diag_output)
        self.diagnostics.add("vl features", self._diag_vl)
        self.diagnostics.add("inputs", self._diag_inputs)
        self.diagnostics.add("safety", self._diag_safety)
        self.create_timer(p["diagnostics_period"], g("status", lambda: self._publish_status(True)),
                          callback_group=MutuallyExclusiveCallbackGroup())
        self.create_timer(1.0 / p["action_rate_hz"], g("tick", self._on_tick),
                          callback_group=MutuallyExclusiveCallbackGroup())
        self.get_logger().info(
            f"action node ready: {p['action_rate_hz']:.1f} Hz, horizon {self.horizon}x"
            f"{self.action_dim} ({self.action_space}), max_vl_age {p['max_vl_age']:.2f} s, "
            f"blending {p['chunk_blending']}, expected VL model {expected_model or '(any)'}, "
            f"guard {p['guard_mode']}, {self.gate.state.name}"
            + ("" if p["enabled_at_start"] else f" (publish True on {p['enable_topic']})"))
        self._publish_status(True)

    # --- inputs -----------------------------------------------------------------------------
    def _on_vl_raw(self, raw: bytes, info: dict) -> None:
        verdict = self.locks["vl_features"].check(
            *publishers_on(self, self.vl_sub), self.get_clock().now().nanoseconds,
            info.get("source_timestamp"), info.get("publication_sequence_number"))
        reason = "" if verdict.allowed else verdict.message
        reason = reason or oversize_reason(len(raw), self.vl_budget, "VL features message")
        if reason:
            self.counters.inc("vl_oversize")
            self._input_result("vl_features", reason)
            return
        self._on_vl(deserialize_message(raw, VLFeatures))

    def _on_vl(self, msg: VLFeatures) -> None:
        try:
            features = decode_features(msg.data, msg.num_tokens, msg.feature_dim, msg.dtype)
            reason = self.vl_store.update(features, msg.sequence, stamp_to_ns(msg.header.stamp),
                                          msg.model_id, self.get_clock().now().nanoseconds,
                                          VLSeen(msg.model_id, msg.adapter_id, msg.num_tokens,
                                                 msg.feature_layer, msg.prompt))
        except ValueError as exc:
            self.counters.inc("vl_rejected_payload")
            reason = self.vl_store.last_reject_reason = str(exc)
        if self._input_result("vl_features", reason):
            self.get_logger().info(
                f"[VL #{msg.sequence}] {msg.num_tokens}x{msg.feature_dim}, computed in "
                f"{msg.compute_time * 1e3:.0f} ms from {len(msg.view_names)} views",
                throttle_duration_sec=self.log_period)

    def _on_sensor(self, msg: ForceOctBatch) -> None:
        n = msg.num_samples
        reason = sensor_batch_size_reason(n, self.sensor.capacity) or sensor_batch_reason(
            n, len(msg.sample_stamps), len(msg.force), len(msg.alines), msg.aline_length,
            self.sensor.aline_length)
        if not reason:
            stamps = np.fromiter((stamp_to_ns(s) for s in msg.sample_stamps), dtype=np.int64,
                                 count=n)
            accepted = self.sensor.add_batch(stamps, np.asarray(msg.force), np.asarray(msg.alines),
                                             self.get_clock().now().nanoseconds)
            # NaN/inf, out-of-order, duplicate or future samples: the window now has a hole
            reason = "empty batch" if n == 0 else self.sensor.describe_last_drops()
        self._input_result("sensor", reason)

    def _on_joints(self, msg: JointState) -> None:
        reason = self.robot_input.joints(msg.name, msg.position, stamp_to_ns(msg.header.stamp),
                                         self.get_clock().now().nanoseconds)
        if not self._input_result("joint_states", reason):
            self.core.clear_robot_state()  # fail closed: never act on the state before a bad one

    def _on_pose(self, msg: PoseStamped) -> None:
        pos, ori = msg.pose.position, msg.pose.orientation
        update = self.robot_input.pose([pos.x, pos.y, pos.z], [ori.x, ori.y, ori.z, ori.w],
                                       stamp_to_ns(msg.header.stamp),
                                       self.get_clock().now().nanoseconds)
        if update.reason:
            self._input_result("ee_pose", update.reason)
            self.core.clear_robot_state()
        elif update.state is not None and self._input_result("ee_pose", ""):
            self.core.set_robot_state(update.state, update.stamp_ns)

    def _input_result(self, name: str, reason: str) -> bool:
        """Count and report a refusal (True when accepted: the input's watchdog is fed)."""
        now = time.monotonic()
        if reason:
            self.counters.inc(f"refused_{name}")
            self.refusals[name].refused(now, reason)
            self.get_logger().warning(f"{name} refused: {reason}", throttle_duration_sec=2.0)
            return False
        self.refusals[name].accepted(now)
        self._feed(name)
        return True

    # --- the tick ---------------------------------------------------------------------------
    def _on_tick(self) -> None:
        now_ns = self.get_clock().now().nanoseconds
        if self._last_tick_ns is not None and now_ns < self._last_tick_ns:
            # Time went backwards (bag loop, sim reset): nothing buffered is trustworthy.
            self.counters.inc("clock_jump_backwards")
            self.sensor.clear()
            self.core.clear_robot_state()
            self.core.blender.reset()
            self.get_logger().warning("clock jumped backwards: buffers cleared")
        self._last_tick_ns = now_ns
        outcome = self._decide(now_ns)
        self.last_outcome = outcome
        if self.gate.state != self._gate_state:  # e.g. the e-stop heartbeat was lost
            self._gate_input("heartbeat", lambda: None)
        self._publish_plots(outcome)
        if outcome.guard is not None:
            for reason, count in outcome.guard.violations.items():
                self.counters.inc(f"guard_{reason}", count)
            if outcome.guard.clamped:
                self.counters.inc("guard_clamped_chunks")
        if outcome.chunk is None:
            self.counters.inc(f"withheld_{outcome.category}")
            if outcome.category in ERROR_CATEGORIES:
                self.diagnostics.publish_now_if_worse("action output", ERROR)
            self._log_throttled(f"no action: {outcome.reason}", warn=True)
        else:
            self._publish_chunk(outcome, now_ns)
        self._publish_status()

    def _decide(self, now_ns: int) -> TickOutcome:
        """Gate and watchdogs first (the policy does not even run when they say no), then core."""
        now = time.monotonic()
        silent = self.watchdogs.check(now)
        if silent:
            return self.core.refuse("input silent: " + self.watchdogs.describe(
                silent, now, self.refusals.notes(now)), "watchdog", self.vl_store.snapshot(now_ns))
        allowed, why = self.gate.allows_output(now)
        if not allowed:
            category = "estop" if self.gate.state == SafetyState.ESTOP else "disabled"
            return self.core.refuse(why, category, self.vl_store.snapshot(now_ns))
        return self.core.tick(now_ns)

    # --- safety inputs and status -----------------------------------------------------------
    def _feed(self, name: str) -> None:
        outage = self.watchdogs.feed(name, time.monotonic())
        if outage is not None:
            self.get_logger().info(f"input {name} is back after {outage * 1e3:.0f} ms")

    def _on_enable(self, msg: Bool) -> None:
        if msg.data and not self._control_allowed("enable"):
            return
        self._gate_input("enable", lambda: self.gate.on_enable(bool(msg.data), time.monotonic()))

    def _on_estop(self, msg: Bool) -> None:
        if not msg.data and not self._control_allowed("estop"):
            return
        self._gate_input("estop", lambda: self.gate.on_estop(bool(msg.data), time.monotonic()),
                         estop_pressed=bool(msg.data))

    def _control_allowed(self, name: str) -> bool:
        """May a message that lets output resume be obeyed (one node on the topic)?"""
        verdict = self.locks[name].check(*publishers_on(self, self.control_subs[name]),
                                         self.get_clock().now().nanoseconds)
        if not verdict.allowed:
            self.counters.inc(f"refused_{name}")
            self.get_logger().error(f"{name} refused: {verdict.message}",
                                    throttle_duration_sec=2.0)
            self.diagnostics.publish_now_if_worse("safety", ERROR)
        return verdict.allowed

    def _on_set_parameters(self, params: list) -> SetParametersResult:
        for param in params:
            if param.name == "vl_publisher":  # the operator's re-lock
                self.locks["vl_features"].pin(str(param.value))
                self.get_logger().warning(f"VL publisher lock set to {param.value!r}")
        return SetParametersResult(successful=True)

    def _gate_input(self, name: str, apply, estop_pressed: bool = False) -> None:
        """Apply an enable / e-stop message; the hold goes out even if anything else fails.

        `before` is the state last reported, so a change made elsewhere (the heartbeat check in
        the gate) is reported and held for too.
        """
        before = self._gate_state
        run_all([(f"{name}_gate", apply),
                 (f"{name}_hold", lambda: self._hold_if(before, estop_pressed)),
                 (f"{name}_report", lambda: self._after_gate_change(before))], self._step_failed)

    def _step_failed(self, step: str, exc: BaseException) -> None:
        report_error(self, self.counters, step, exc)

    def _hold_if(self, before: SafetyState, estop_pressed: bool) -> None:
        if self.traj_pub is None or not hold_required(before, self.gate.state, estop_pressed):
            return
        # An empty trajectory makes a joint_trajectory_controller stop and hold.
        stop = JointTrajectory()
        stop.header.stamp = self.get_clock().now().to_msg()
        stop.joint_names = self.joint_names
        self.traj_pub.publish(stop)
        self.counters.inc("hold_trajectories_published")

    def _after_gate_change(self, before: SafetyState) -> None:
        state = self._gate_state = self.gate.state
        if state == before:
            return
        text = f"safety state {before.name} -> {state.name}: {self.gate.last_change_reason}"
        # rclpy allows one severity per call site, hence two calls.
        if state == SafetyState.ESTOP:
            self.get_logger().error(text)
        else:
            self.get_logger().warning(text)
        if state != SafetyState.ENABLED:
            self.core.refuse(self.gate.last_change_reason, state.name.lower())
        self.diagnostics.publish_now_if_worse("safety", ERROR if state == SafetyState.ESTOP
                                              else WARN)
        self._publish_status(True)

    def _publish_status(self, force: bool = False) -> None:
        outcome = self.last_outcome
        allowed = outcome is not None and outcome.chunk is not None
        category = outcome.category if outcome is not None else "no tick"
        key = (self.gate.state, allowed, category)
        if not force and key == self._status_key:
            return
        self._status_key = key
        counts = self.counters.snapshot()
        withheld = sum(v for k, v in counts.items() if k.startswith("withheld_"))
        msg = fill_status(SafetyStatus(), self.gate, self.watchdogs, time.monotonic(),
                          self.get_clock().now().nanoseconds, allowed,
                          "" if allowed else (outcome.reason if outcome else "no tick yet"),
                          counts.get("chunks_published", 0), withheld)
        self.status_pub.publish(msg)

    def _publish_chunk(self, outcome: TickOutcome, now_ns: int) -> None:
        chunk, vl = outcome.chunk, outcome.vl
        self._sequence += 1
        msg = ActionChunk()
        msg.header.stamp = ns_to_stamp(now_ns)
        msg.header.frame_id = "base_link"
        msg.horizon, msg.action_dim = self.horizon, self.action_dim
        msg.actions = chunk.actions.reshape(-1).astype(np.float32)
        msg.dim_names = self.dim_names
        msg.action_space = self.action_space
        msg.reference = chunk.reference.astype(np.float32)
        msg.step_period = chunk.step_period
        msg.vl_sequence, msg.vl_age, msg.vl_reuse_count = vl.sequence, vl.age, vl.reuse_count
        msg.inference_time = outcome.inference_time
        msg.sequence = self._sequence
        self.chunk_pub.publish(msg)
        if self.traj_pub is not None:
            self.traj_pub.publish(self._trajectory(chunk, msg))
        self.counters.inc("chunks_published")
        self.chunk_rate.tick(time.monotonic())
        self.inference_stats.add(outcome.inference_time)
        self.vl_age_stats.add(vl.age)
        self._log_throttled(
            f"[ACTION #{self._sequence}] VL #{vl.sequence} age {vl.age * 1e3:.0f} ms reuse "
            f"{vl.reuse_count} | a[0]={np.array2string(chunk.actions[0][:3], precision=4)} | "
            f"{outcome.inference_time * 1e3:.1f} ms | sensor {self.sensor.fill}")

    def _trajectory(self, chunk, msg: ActionChunk) -> JointTrajectory:
        traj = JointTrajectory()
        traj.header = msg.header
        traj.joint_names = self.joint_names
        for i, row in enumerate(chunk.actions):
            point = JointTrajectoryPoint()
            point.positions = (chunk.reference + row[:6]).astype(float).tolist()
            point.time_from_start = _duration((i + 1) * chunk.step_period)
            traj.points.append(point)
        return traj

    def _publish_plots(self, outcome: TickOutcome) -> None:
        values = {"sensor_fill": float(self.sensor.fill),
                  "chunk_rate_hz": self.chunk_rate.rate(time.monotonic())}
        if outcome.vl is not None:
            values["vl_age"] = outcome.vl.age
            values["vl_reuse_count"] = float(outcome.vl.reuse_count)
        if outcome.chunk is not None:
            values["inference_time_ms"] = outcome.inference_time * 1e3
        for name, value in values.items():
            self.plot_pubs[name].publish(Float64(data=float(value)))

    def _log_throttled(self, text: str, warn: bool = False) -> None:
        now = time.monotonic()
        if now - self._last_log < self.log_period:
            return
        self._last_log = now
        # rclpy requires one severity per call site, hence two calls.
        if warn:
            self.get_logger().warning(text)
        else:
            self.get_logger().info(text)

    # --- diagnostics ------------------------------------------------------------------------
    def _diag_output(self) -> Report:
        counts = self.counters.snapshot()
        withheld = {k: v for k, v in counts.items() if k.startswith("withheld_")}
        values = {"chunks_published": counts.get("chunks_published", 0),
                  "chunk_rate_hz": self.chunk_rate.rate(time.monotonic()),
                  "inference_ms_p50": self.inference_stats.percentile(50) * 1e3,
                  "inference_ms_p99": self.inference_stats.percentile(99) * 1e3, **withheld}
        outcome = self.last_outcome
        if outcome is None:
            return Report(WARN, "no tick yet", values)
        if outcome.chunk is not None:
            return Report(OK, "publishing action chunks", values)
        level = ERROR if outcome.category in ERROR_CATEGORIES else WARN
        return Report(level, f"no action: {outcome.reason}", values)

    def _diag_vl(self) -> Report:
        snap = self.vl_store.snapshot(self.get_clock().now().nanoseconds)
        refusing = self.refusals["vl_features"].status(time.monotonic())
        values = {"received": self.vl_store.received,
                  "rejected": sum(self.vl_store.rejected.values())
                  + self.counters.get("vl_rejected_payload"),
                  "last_reject_reason": self.vl_store.last_reject_reason,
                  "refused_in_window": refusing.refused,
                  "age_ms_p50": self.vl_age_stats.percentile(50) * 1e3,
                  "age_ms_p99": self.vl_age_stats.percentile(99) * 1e3}
        if snap is not None:
            values.update(sequence=snap.sequence, age_ms=snap.age * 1e3, model_id=snap.model_id,
                          reuse_count=snap.reuse_count)
        report = vl_report(snap, self.core.config.max_vl_age, self.core.config.future_tolerance,
                           values)
        lock = self.locks["vl_features"].evaluate(*publishers_on(self, self.vl_sub),
                                                  self.get_clock().now().nanoseconds)
        return worse(worse(report, refusing), lock)

    def _diag_safety(self) -> Report:
        counts = self.counters.snapshot()
        guard = {k: v for k, v in counts.items() if k.startswith("guard_")}
        now = time.monotonic()
        report = safety_report(self.gate, self.watchdogs, now,
                               {"guard_mode": self.guard.limits.mode, **guard},
                               self.refusals.notes(now))
        for name, sub in self.control_subs.items():
            report = worse(report, self.locks[name].evaluate(
                *publishers_on(self, sub), self.get_clock().now().nanoseconds))
        return report

    def _diag_inputs(self) -> Report:
        counts = self.counters.snapshot()
        values = {"sensor_fill": self.sensor.fill, **{f"sensor_dropped_{k}": v for k, v in
                                                        self.sensor.dropped.items()},
                  **{k: v for k, v in counts.items()
                     if not k.startswith(("withheld_", "chunks", "guard_"))}}
        level = WARN if self.sensor.fill < self.sensor.window_size else OK
        report = Report(level, f"sensor {self.sensor.fill}/{self.sensor.window_size}", values)
        return worse(report, self.refusals.worst(time.monotonic(),
                                                 ("sensor", "joint_states", "ee_pose")))


def main(args: list[str] | None = None) -> int:
    return spin_node(ActionNode, "asyncvla_action_node", args)


if __name__ == "__main__":
    sys.exit(main())
