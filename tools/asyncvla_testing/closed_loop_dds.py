"""The closed loop of the moving-target task with the real nodes over real DDS.

What closed_loop_sim.py runs in simulated time, run here in real time by the real processes on
this machine (loopback, a private DDS domain):

* the world (closed_loop_world.py): the scene's camera frames (CompressedImage, 10 fps, true
  capture stamps) and force/OCT batches (650 Hz) computed from the robot's real height;
* the real VLM node (tiny Qwen2.5-VL, its VL settings from the policy checkpoint) on the world
  camera, publishing on ``VLM_TOPIC``, and the relay (vl_delay_relay.py) that republishes its
  features on /asyncvla/vl_features ``latency - compute`` after they arrive; the VLM node's
  ``timing.target_period`` is the latency (less 10 ms: ``DdsSettings.period_trim_s``), so updates
  start ``latency`` apart and each reaches the
  action node ``latency`` (plus encoding and transport) after it started: a VLM whose compute
  takes ``latency``, back to back, as the simulator's ``LatencyModel``;
* the real action node (the checkpoint, ``max_vl_age``, the default tick design, ``blending``),
  the real executor (``output`` pose or twist setpoints at 100 Hz), the kinematic robot
  (kinematic_robot.py, the task's joints) sending its state in the lab's wire format to the
  real robot bridge, whose /robot/joint_states and /robot/ee_pose the nodes and the world read.

Episodes (:meth:`DdsLoop.run_episode`): with output disabled (/asyncvla/enable False) and the
VLM paused (``timing.target_period`` set far out through its parameter service), the robot is put at
the scene's start (kinematic_robot's reset topic), the world is given the scene with its first
action time ``t0`` on the wall clock, far enough ahead that every VL feature of the previous
episode is older than ``max_vl_age`` by then, and current from ``t0 - latency - 0.25 s``. The
simulator's VLM is warm-started: its first update takes the frame of ``t0 - latency - 5 ms``
(on the 100 ms grid: ``t0 - latency - 100 ms``) and its features arrive at ``t0``, the next
updates start ``latency`` later. Here the VLM's ``timing.target_period`` is set to the latency at
``t0 - latency - 50 ms`` (``RESUME_LEAD_S``), halfway between two frames: its first update
takes the same frame, the next ones start ``latency`` apart and take the frames the simulator's
take, and their features reach the action node about 50 ms before the simulator's arrive (the
action node's own 10 Hz ticks, at a phase of their own, pick them up 0-100 ms after arrival,
the simulator's ticks at their arrival). At ``t0`` - 50 ms the inputs are checked fresh (robot
pose at the start and streaming, force/OCT of the new scene streaming, the first features of
this scene arrived); at ``t0`` output is enabled. ``duration`` after ``t0`` output is disabled
and the VLM paused again.

Success is measured from the kinematic robot's own logged states (every 10 ms step) against the
scene's analytic target, exactly as the simulator defines it (closed_loop_sim.LoopSettings).
"""
from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from asyncvla_testing import closed_loop_sim as sim
from asyncvla_testing.bridge_harness import start_bridge
from asyncvla_testing.closed_loop_world import SCENE_TOPIC, scene_message
from asyncvla_testing.pipeline import KINEMATIC_ROBOT, ros_args
from asyncvla_testing.ros_listener import wait_until
from asyncvla_testing.processes import ManagedProcess, ProcessGroup
from asyncvla_testing import tracking_task as task

HERE = os.path.dirname(os.path.abspath(__file__))
WORLD = os.path.join(HERE, "closed_loop_world.py")
RELAY = os.path.join(HERE, "vl_delay_relay.py")
VLM_TOPIC = "/asyncvla/vl_features_vlm"  # the VLM node's own output; the relay's is the suite's
VL_TOPIC = "/asyncvla/vl_features"
RESET_TOPIC = "/test/robot_reset"
PAUSED_PERIOD = 1.0e6  # s: a VLM target_period that starts no update
FIRST_ACTION_S = task.LEAD_IN + task.FIRST_SAMPLE_DELAY
NS = 1_000_000_000


@dataclass(frozen=True)
class DdsSettings:
    latency_s: float = 1.5  # the VLM's compute per update (its period: it runs back to back)
    max_vl_age: float = 3.5  # s, the action node's (and its VL watchdog's vl_timeout)
    blending: str = "latest_only"
    output: str = "pose"  # the executor's setpoints: pose (the simulator's robot) or twist
    loop: sim.LoopSettings = sim.LoopSettings()
    margin_s: float = 0.4  # beyond max_vl_age between the last VLM update and the next t0
    resume_lead_s: float = 0.05  # the VLM resumes latency + this before t0 (between frames)
    # The VLM node starts an update on its 20 ms timer once target_period has passed since the
    # last start; target_period = latency - 10 ms makes that exactly latency (a whole number of
    # timer periods), where latency itself would add a timer period whenever the timer is early.
    period_trim_s: float = 0.01
    world_lead_s: float = 0.25  # the scene is current latency + this before t0


def start_pose(scene: task.TrackingScene) -> np.ndarray:
    """Where the simulator's robot starts: the recorded tip at the first action time."""
    xy = scene.tip(np.array([FIRST_ACTION_S]))[0]
    return np.array([xy[0], xy[1], float(scene.tip_height(FIRST_ACTION_S))])


def start_processes(group: ProcessGroup, checkpoint: str, model_path: str,
                    settings: DdsSettings, timeout: float = 180.0) -> dict[str, ManagedProcess]:
    """Start every process of the loop and wait for their ready lines (VLM node paused)."""
    procs: dict[str, ManagedProcess] = {}
    procs["world"] = group.start("world", [WORLD])
    procs["robot"] = group.start("robot", [
        KINEMATIC_ROBOT, "--roles", "robot", "--mode", settings.output,
        "--setpoint-topic", f"/asyncvla/setpoint/{settings.output}", "--state-out", "wire",
        "--log-period", "0", "--joint-model", "tracking", "--reset-topic", RESET_TOPIC])
    endpoint = procs["robot"].wait_for_line("robot state wire:", timeout).rsplit(" ", 1)[-1]
    procs["robot_bridge"], _ = start_bridge(group, "robot", {"wire": {"endpoint": endpoint}},
                                          timeout)
    procs["executor"] = group.start("executor", ["-m", "asyncvla_executor.executor_node",
                                                 *ros_args({"output": {"kind": settings.output},
                                                            "safety": {"enabled_at_start": False}})])
    procs["vlm"] = group.start("vlm", ["-m", "asyncvla_vlm_node.vlm_node", *ros_args({
        "policy_checkpoint": checkpoint, "model": {"path": model_path, "device": "cpu"},
        "timing": {"target_period": PAUSED_PERIOD}, "topics": {"vl_features": VLM_TOPIC}})])
    procs["relay"] = group.start("relay", [RELAY, "--latency", str(settings.latency_s),
                                           "--input-topic", VLM_TOPIC, "--output-topic",
                                           VL_TOPIC])
    procs["action"] = group.start("action", ["-m", "asyncvla_action_node.action_node",
                                             *ros_args({
                                                 "checkpoint": checkpoint,
                                                 "expert": {"device": "cpu"},
                                                 "freshness": {"max_vl_age": settings.max_vl_age},
                                                 "watchdog": {"vl_timeout": settings.max_vl_age},
                                                 "blending": {"mode": settings.blending},
                                                 "safety": {"enabled_at_start": False}})])
    for name, needle in (("world", "WORLD READY"), ("relay", "RELAY READY"),
                         ("executor", "executor ready"), ("vlm", "VLM node ready"),
                         ("action", "action node ready")):
        procs[name].wait_for_line(needle, timeout)
    return procs


def robot_states(robot: ManagedProcess) -> tuple[np.ndarray, np.ndarray]:
    """(t_ns, positions (n, 3)) of every STATE line the kinematic robot logged so far."""
    times, points = [], []
    for line in list(robot.lines):
        if line.startswith("STATE "):
            _, t, x, y, z = line.split()
            times.append(int(round(float(t) * 1e9)))
            points.append((float(x), float(y), float(z)))
    return np.asarray(times, dtype=np.int64), np.asarray(points, dtype=np.float64).reshape(-1, 3)


def score_episode(times_ns: np.ndarray, points: np.ndarray, scene: task.TrackingScene,
                  t0_ns: int, settings: sim.LoopSettings = sim.LoopSettings()) -> dict[str, Any]:
    """Success, time to success, final and smallest error of the robot's states from ``t0_ns``
    to ``duration`` after it, by the simulator's rule (closed_loop_sim.run_episode): the tip
    within ``tolerance`` (x, y) of the target for ``settle`` without a break."""
    end = t0_ns + int(round(settings.duration_s * NS))
    sel = (times_ns >= t0_ns) & (times_ns <= end)
    t, p = times_ns[sel], points[sel]
    out = {"success": False, "time_to_success_s": None, "final_error_m": math.nan,
           "min_error_m": math.inf, "states": int(sel.sum()),
           "state_gap_ms_max": float(np.diff(t).max() / 1e6) if t.size > 1 else math.nan}
    if not t.size:
        return out
    scene_t = FIRST_ACTION_S + (t - t0_ns) / NS
    errors = np.hypot(*(scene.target(scene_t) - p[:, :2]).T)
    inside_since = None
    for now, error in zip(t, errors):
        if error <= settings.tolerance_m:
            inside_since = now if inside_since is None else inside_since
            if not out["success"] and now - inside_since >= int(settings.settle_s * NS):
                out["success"] = True
                out["time_to_success_s"] = (inside_since - t0_ns) / NS
        else:
            inside_since = None
    out["final_error_m"] = float(errors[-1])
    out["min_error_m"] = float(errors.min())
    out["initial_error_m"] = float(errors[0])
    return out


@dataclass
class Records:
    """What the monitor heard, with this machine's wall-clock receipt times (ns)."""

    chunks: list[tuple[int, int, float, int]] = field(default_factory=list)  # recv, stamp, vl_age, vl_seq
    vl_out: list[tuple[int, int, int, float, Any]] = field(default_factory=list)  # recv, stamp, seq, compute, msg
    vl_in: list[tuple[int, int, int, float]] = field(default_factory=list)  # recv, stamp, seq, compute
    setpoints: list[int] = field(default_factory=list)  # recv
    setpoint_targets: list[tuple[int, np.ndarray]] = field(default_factory=list)  # stamp, xyz (pose)
    pose: tuple[int, np.ndarray] | None = None  # recv, position
    sensor: tuple[int, int] | None = None  # recv, newest sample stamp
    diagnostics: dict[str, dict[str, str]] = field(default_factory=dict)


class Monitor:
    """The operator and the observer: an rclpy node in a private context, spun in a thread."""

    DIAGNOSTICS = {"executor": "asyncvla_executor: executor output",
                   "action": "asyncvla_action_node: action output"}

    def __init__(self, domain_id: int, output: str = "pose") -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseStamped, TwistStamped
        from rcl_interfaces.srv import SetParameters
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.signals import SignalHandlerOptions
        from std_msgs.msg import Bool, String

        from asyncvla_common import qos
        from asyncvla_common.timeconv import stamp_to_ns
        from asyncvla_msgs.msg import ActionChunk, ForceOctBatch, VLFeatures
        from asyncvla_testing.ros_listener import diagnostic_values

        self.rec = Records()
        self._lock = threading.Lock()
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id,
                   signal_handler_options=SignalHandlerOptions.NO)
        node = self.node = Node("closed_loop_dds_monitor", context=self.context)
        self._Bool, self._String, self._PoseStamped = Bool, String, PoseStamped
        self.enable_pub = node.create_publisher(Bool, "/asyncvla/enable", qos.LATCHED)
        self.reset_pub = node.create_publisher(PoseStamped, RESET_TOPIC, qos.COMMAND)
        self.scene_pub = node.create_publisher(String, SCENE_TOPIC, qos.LATCHED)
        self.params = node.create_client(SetParameters, "/asyncvla_vlm_node/set_parameters")
        self._SetParameters = SetParameters
        now = time.time_ns
        rec = self.rec

        def on_chunk(m) -> None:
            rec.chunks.append((now(), stamp_to_ns(m.header.stamp), float(m.vl_age),
                               int(m.vl_sequence)))

        def on_vl_out(m) -> None:
            rec.vl_out.append((now(), stamp_to_ns(m.header.stamp), int(m.sequence),
                               float(m.compute_time), m))

        def on_vl_in(m) -> None:
            rec.vl_in.append((now(), stamp_to_ns(m.header.stamp), int(m.sequence),
                              float(m.compute_time)))

        def on_pose(m) -> None:
            p = m.pose.position
            rec.pose = (now(), np.array([p.x, p.y, p.z]))

        def on_sensor(m) -> None:
            rec.sensor = (now(), stamp_to_ns(m.header.stamp))

        def on_diagnostics(m) -> None:
            for key, name in self.DIAGNOSTICS.items():
                values = diagnostic_values(m, name)
                if values is not None:
                    with self._lock:
                        rec.diagnostics[key] = values

        node.create_subscription(ActionChunk, "/asyncvla/action_chunk", on_chunk, qos.COMMAND)
        node.create_subscription(VLFeatures, VL_TOPIC, on_vl_out, qos.LATCHED)
        node.create_subscription(VLFeatures, VLM_TOPIC, on_vl_in, qos.LATCHED)
        def on_setpoint(m) -> None:
            rec.setpoints.append(now())
            if output == "pose":
                p = m.pose.position
                rec.setpoint_targets.append((stamp_to_ns(m.header.stamp),
                                             np.array([p.x, p.y, p.z])))

        setpoint_type = PoseStamped if output == "pose" else TwistStamped
        node.create_subscription(setpoint_type, f"/asyncvla/setpoint/{output}", on_setpoint,
                                 qos.COMMAND)
        node.create_subscription(PoseStamped, "/robot/ee_pose", on_pose,
                                 qos.sensor_subscriber(1))
        node.create_subscription(ForceOctBatch, "/sensor/force_oct", on_sensor,
                                 qos.sensor_subscriber(1))
        node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 50)
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self._executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - the context closed under the executor
                if not self.context.ok():
                    return
                raise

    # --- the operator's actions ---------------------------------------------------------------
    def enable(self, on: bool) -> None:
        self.enable_pub.publish(self._Bool(data=bool(on)))

    def set_vlm_period(self, seconds: float):
        """Set the VLM node's timing.target_period (its parameter service); returns the
        future."""
        from rclpy.parameter import Parameter

        request = self._SetParameters.Request()
        request.parameters = [Parameter("timing.target_period", value=float(seconds)).to_parameter_msg()]
        return self.params.call_async(request)

    def reset_robot(self, position: np.ndarray) -> None:
        msg = self._PoseStamped()
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.header.frame_id = "base_link"
        p, o = msg.pose.position, msg.pose.orientation
        p.x, p.y, p.z = (float(v) for v in position)
        o.x, o.y, o.z, o.w = (float(v) for v in task.TOOL_DOWN_XYZW)
        self.reset_pub.publish(msg)

    def set_scene(self, scene_id: int, scene: task.TrackingScene, t0_ns: int,
                  current_from_ns: int | None = None) -> None:
        self.scene_pub.publish(self._String(data=scene_message(scene_id, scene, t0_ns,
                                                               current_from_ns)))

    def diagnostics(self) -> dict[str, dict[str, str]]:
        with self._lock:
            return {k: dict(v) for k, v in self.rec.diagnostics.items()}

    def wait_until(self, predicate, timeout: float, what: str) -> None:
        wait_until(predicate, timeout, what, poll=0.01)

    def close(self) -> None:
        self.context.try_shutdown()
        self._thread.join(5.0)
        self._executor.shutdown()
        self.node.destroy_node()


def sleep_until_ns(wall_ns: int) -> None:
    while True:
        left = (wall_ns - time.time_ns()) / NS
        if left <= 0:
            return
        time.sleep(min(left, 0.05) if left > 0.002 else left)


def _held(before: dict[str, str], after: dict[str, str]) -> dict[str, float]:
    keys = {k for k in after if k.startswith("held_s_")}
    return {k[len("held_s_"):]: round(float(after[k]) - float(before.get(k, 0.0)), 3)
            for k in sorted(keys)}


class DdsLoop:
    """Runs episodes over the started processes; the monitor operates and observes."""

    def __init__(self, procs: dict[str, ManagedProcess], monitor: Monitor,
                 settings: DdsSettings) -> None:
        self.procs, self.monitor, self.settings = procs, monitor, settings
        self.episodes: list[dict[str, Any]] = []
        self.paused_at_ns = 0

    def prepare(self, timeout: float = 60.0) -> None:
        """Pause the VLM, disable output, and wait for the robot state and the operator topics
        to be connected."""
        m = self.monitor
        m.wait_until(lambda: m.params.service_is_ready(), timeout, "VLM parameter service")
        future = m.set_vlm_period(PAUSED_PERIOD)
        m.wait_until(future.done, timeout, "VLM paused")
        m.enable(False)
        self.paused_at_ns = time.time_ns()
        m.wait_until(lambda: m.rec.pose is not None, timeout, "robot pose from the bridge")
        m.wait_until(lambda: m.reset_pub.get_subscription_count() > 0, timeout,
                     "the robot's reset subscription")
        m.wait_until(lambda: m.enable_pub.get_subscription_count() >= 2, timeout,
                     "the executor and the action node on /asyncvla/enable")

    def run_episode(self, index: int, scene: task.TrackingScene) -> dict[str, Any]:
        s, m = self.settings, self.monitor
        gap_ns = int(round((s.max_vl_age + s.margin_s) * NS))
        lead_ns = int(round((s.latency_s + s.world_lead_s) * NS))
        t0_ns = max(time.time_ns() + int(1.2 * NS) + lead_ns, self.paused_at_ns + gap_ns)
        resume_ns = t0_ns - int(round((s.latency_s + s.resume_lead_s) * NS))
        start = start_pose(scene)
        m.reset_robot(start)
        m.set_scene(index, scene, t0_ns, t0_ns - lead_ns)
        at_start = lambda: (m.rec.pose is not None  # noqa: E731
                            and np.max(np.abs(m.rec.pose[1] - start)) < 2e-5)
        deadline = time.monotonic() + 3.0
        while not at_start():
            if time.monotonic() > deadline:
                raise TimeoutError(f"episode {index}: the robot is not at its start "
                                   f"{start} but {m.rec.pose}")
            time.sleep(0.05)
            if not at_start():
                m.reset_robot(start)
        # The VLM warm-started: its first update takes the frame of t0 - latency - 100 ms.
        sleep_until_ns(resume_ns)
        m.set_vlm_period(s.latency_s - s.period_trim_s)
        resumed_ns = time.time_ns()
        sleep_until_ns(t0_ns - int(0.05 * NS))
        # Inputs fresh: robot state from the bridge at the start, force/OCT of this scene.
        now = time.time_ns()
        pose_age = (now - m.rec.pose[0]) / 1e6  # receipt, here
        sensor_age = (now - m.rec.sensor[1]) / 1e6 if m.rec.sensor else math.inf
        scene_origin = t0_ns - int(round(FIRST_ACTION_S * NS))
        fresh = {"pose_age_ms": round(pose_age, 1), "sensor_age_ms": round(sensor_age, 1),
                 "sensor_of_this_scene": bool(m.rec.sensor and m.rec.sensor[1] >= scene_origin),
                 "at_start": bool(at_start())}
        # The scene and the start are the episode's definition: without them it is not run.
        # Late states or samples are the machine's timing: recorded (the nodes judge them).
        if not (fresh["sensor_of_this_scene"] and fresh["at_start"]):
            raise RuntimeError(f"episode {index}: not set up at t0 - 50 ms: {fresh}")
        diag_before = m.diagnostics()
        sleep_until_ns(t0_ns)
        m.enable(True)
        enabled_ns = time.time_ns()
        # The first features of this scene (taken after the resume) had reached the monitor.
        vl_at_t0 = any(v[1] >= t0_ns - lead_ns for v in m.rec.vl_out)
        sleep_until_ns(t0_ns + int(round((s.loop.duration_s + 0.02) * NS)))
        m.enable(False)
        m.set_vlm_period(PAUSED_PERIOD)
        self.paused_at_ns = time.time_ns()
        episode = {"index": index, "scene": scene, "t0_ns": t0_ns, "fresh": fresh,
                   "enabled_late_ms": (enabled_ns - t0_ns) / 1e6,
                   "resumed_ms": (resumed_ns - t0_ns) / 1e6,
                   "resumed_late_ms": (resumed_ns - resume_ns) / 1e6, "vl_at_t0": vl_at_t0,
                   "lead_ns": lead_ns, "diag_before": diag_before}
        self.episodes.append(episode)
        return episode

    def finish(self) -> None:
        """Wait for a diagnostics report from after the last episode."""
        time.sleep(1.3)
        self.final_diag = self.monitor.diagnostics()

    # --- results ------------------------------------------------------------------------------
    def results(self) -> list[dict[str, Any]]:
        """One row per episode: the simulator's EpisodeResult fields plus timing."""
        s = self.settings
        times, points = robot_states(self.procs["robot"])
        rec = self.monitor.rec
        rows = []
        for n, ep in enumerate(self.episodes):
            t0, scene = ep["t0_ns"], ep["scene"]
            end = t0 + int(round(s.loop.duration_s * NS))
            row = score_episode(times, points, scene, t0, s.loop)
            chunks = [c for c in rec.chunks if t0 <= c[1] <= end]
            vl = [v for v in rec.vl_out if t0 - ep["lead_ns"] <= v[1] <= end]
            vl_in = [v for v in rec.vl_in if t0 - ep["lead_ns"] <= v[1] <= end]
            setpoints = np.asarray([t for t in rec.setpoints if t0 <= t <= end], dtype=np.int64)
            after = (self.episodes[n + 1]["diag_before"] if n + 1 < len(self.episodes)
                     else getattr(self, "final_diag", {}))
            held = _held(ep["diag_before"].get("executor", {}), after.get("executor", {}))
            # Handover smoothness from the executor's own targets (pose output: the setpoints
            # the simulator's measure is taken on), else from the robot's states.
            setpoint_path = [(t, p) for t, p in rec.setpoint_targets if t0 <= t <= end]
            if not setpoint_path:
                sel = (times >= t0) & (times <= end)
                setpoint_path = list(zip(times[sel].tolist(), points[sel]))
            handovers, jump, jerk = sim.handover_smoothness(
                setpoint_path, [c[0] for c in chunks][1:], s.loop)
            in_by_seq = {v[2]: v for v in vl_in}
            gaps = np.diff(setpoints) / 1e6 if setpoints.size > 1 else np.array([])
            row.update({
                "chunks": len(chunks), "handovers": handovers, "max_handover_jump_m": jump,
                "max_handover_jerk": jerk,
                "held_s": round(sum(v for k, v in held.items() if k != "disabled"), 3),
                "held_s_by_reason": held, "refusals": {},
                "vl_ages_s": [c[2] for c in chunks],
                "first_chunk_s": (chunks[0][1] - t0) / NS if chunks else None,
                "timing": {
                    "enabled_late_ms": round(ep["enabled_late_ms"], 2),
                    "vlm_resumed_ms": round(ep["resumed_ms"], 2),
                    "vlm_resumed_late_ms": round(ep["resumed_late_ms"], 2),
                    "vl_at_t0": ep["vl_at_t0"],
                    # arrival (at the monitor) of each update, from t0
                    "vl_arrival_ms": [round((v[0] - t0) / 1e6, 1) for v in vl],
                    "fresh_at_t0": ep["fresh"],
                    # VL updates of this episode: frame stamp from t0, arrival after the frame
                    "vl_frame_offsets_ms": [round((v[1] - t0) / 1e6, 1) for v in vl],
                    "vl_delivered_age_ms": [round((v[0] - v[1]) / 1e6, 1) for v in vl],
                    "vl_compute_ms": [round(v[3] * 1e3, 1) for v in vl],
                    "relay_held_ms": [round((v[0] - in_by_seq[v[2]][0]) / 1e6, 1)
                                      for v in vl if v[2] in in_by_seq],
                    "chunk_stamps_s": [round((c[1] - t0) / NS, 3) for c in chunks],
                    "chunk_transport_ms": [round((c[0] - c[1]) / 1e6, 2) for c in chunks],
                    "setpoints": int(setpoints.size),
                    "setpoint_gap_ms_p50": float(np.median(gaps)) if gaps.size else None,
                    "setpoint_gap_ms_p99": float(np.percentile(gaps, 99)) if gaps.size else None,
                    "setpoint_gap_ms_max": float(gaps.max()) if gaps.size else None,
                }})
            rows.append(row)
        return rows

    def vl_messages(self) -> list[tuple[int, Any]]:
        """(episode index, VLFeatures) of every relayed message stamped within an episode."""
        out = []
        for n, ep in enumerate(self.episodes):
            t0 = ep["t0_ns"]
            end = t0 + int(round(self.settings.loop.duration_s * NS))
            out += [(n, v[4]) for v in self.monitor.rec.vl_out
                    if t0 - ep["lead_ns"] <= v[1] <= end]
        return out


def frame_time_ns(stamp_ns: int, t0_ns: int) -> int:
    """The simulator's frame time (ns of scene time) of a frame stamped ``stamp_ns`` in an
    episode whose first action time is ``t0_ns`` on the wall clock."""
    return int(stamp_ns - t0_ns + round(FIRST_ACTION_S * NS))
