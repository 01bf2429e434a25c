"""The suite's own ROS-free cores in a closed loop on the moving-target task, in simulated time.

Why simulated: a sweep over VLM latencies, modes and blendings times dozens of episodes would take
hours in real time over DDS, and would measure the machine's load as much as the design. Here
every decision is the product's own code, run on a simulated clock:

* the **action node**: ``ActionCore`` (VL freshness, sensor window, robot state, the expert, the
  ``ChunkBlender``, the ``OutputGuard``), fed by a ``VLFeatureStore`` and a ``SensorWindow``;
* the **executor**: ``ExecutorCore`` (100 Hz setpoints from the chunks, its own guard, the
  safety gate and watchdogs), whose setpoints move a kinematic robot exactly, one period later;
* the **VLM**: the tiny Qwen2.5-VL the policy was trained with, run on the world camera's frame
  at the time the VLM takes it (rendered by ``tracking_task``), its features delivered
  ``compute_s + transport_s`` later (``LatencyModel``), stamped with the frame's capture time;
* the **world**: the target drifting at its own velocity, the tissue surface breathing, the
  force/OCT probe reading the robot's real distance to it (``TrackingContent.rows_at``).

Modes (``Mode``): the suite (the VLM back to back, the action node ticking at 10 Hz on the newest
features, the age given to a policy that takes it), and synchronous, as the original system ran
it: each inference waits for the VL features of the current frames, so the robot gets one
action per VLM update (``one_action_per_update``; 0.67 actions/s at 1.5 s), or, kinder to it,
the whole chunk of each update.

What only the real nodes over DDS verify (tools/bench/bench_closed_loop.py --dds, the same
episodes with the real processes: tools/bench/bench_closed_loop_dds.py): executor and transport
jitter, real thread scheduling, the nodes' own timers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from asyncvla_action_node.action_core import ActionCore, ActionCoreConfig
from asyncvla_core.chunk import Chunk
from asyncvla_core.chunk_blending import ChunkBlender
from asyncvla_executor.executor_core import ExecutorConfig, ExecutorCore
from asyncvla_core.output_guard import GuardLimits, OutputGuard
from asyncvla_action_node.sensor_window import SensorWindow
from asyncvla_action_node.vl_store import VLFeatureStore
from asyncvla_common.safety import SafetyGate, WatchdogSet
from asyncvla_core.conventions import ACTION_SPACES, robot_state_vector
from asyncvla_testing import tracking_task as task

NS = 1_000_000_000
STEP_NS = 1_000_000  # the simulation's resolution: 1 ms
SENSOR_RATE = 650.0
SENSOR_BATCH = 10
ROBOT_PERIOD_NS = 10_000_000  # 100 Hz joint states and pose
DIM_NAMES = list(ACTION_SPACES["ee_delta"])


@dataclass(frozen=True)
class LatencyModel:
    """How late VL features are: the VLM's compute per update (it runs back to back, so also
    its period) and the transport to the action node."""

    compute_s: float
    transport_s: float = 0.005


@dataclass(frozen=True)
class Mode:
    """One way of running the loop."""

    name: str
    synchronous: bool = False
    one_action_per_update: bool = False  # synchronous only: execute the chunk's first step only
    blending: str = "latest_only"
    max_vl_age: float = 1.0  # s, the action node's refusal limit
    policy: str = "A"  # which trained policy (key of the policies the caller passes)
    max_chunk_age: float = 0.3  # s, the executor's: chunks older than this are not executed


@dataclass(frozen=True)
class LoopSettings:
    duration_s: float = 2.5  # from the first action time
    tolerance_m: float = 1.0e-3  # tip to target, in x and y together
    settle_s: float = 0.3  # reached = within tolerance this long without a break
    action_period_s: float = 0.1
    executor_period_s: float = 0.01
    window_ms: float = 50.0  # handover smoothness: setpoints this close to a new chunk


@dataclass
class EpisodeResult:
    success: bool
    time_to_success_s: float | None
    final_error_m: float
    min_error_m: float
    chunks: int
    handovers: int
    max_handover_jump_m: float  # largest kink within window_ms of a chunk (see handover_smoothness)
    max_handover_jerk: float  # m/s^3, largest third difference there
    held_s: float  # executor time without a setpoint
    refusals: dict[str, int] = field(default_factory=dict)
    vl_ages_s: list[float] = field(default_factory=list)  # of the chunks published
    first_chunk_s: float | None = None  # from the first action time to the first chunk

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class FeatureSource:
    """VL features of the world camera's frame at a time, computed once per (scene, frame)."""

    def __init__(self, extractor, image_size: int = 140) -> None:
        self.extractor = extractor
        self.image_size = image_size
        self._memo: dict[tuple[int, int], np.ndarray] = {}

    def __call__(self, scene: task.TrackingScene, frame_time_ns: int) -> np.ndarray:
        key = (id(scene), frame_time_ns)
        if key not in self._memo:
            import cv2

            content = task.TrackingContent(scene, task.TrackingMotion(scene))
            jpeg = content.jpeg(0, 0, frame_time_ns / NS, self.image_size, self.image_size)
            rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), 1), cv2.COLOR_BGR2RGB)
            features = self.extractor.extract([rgb], task.PROMPT).features.numpy()
            # The VLM node publishes float16 payloads: the same rounding as at run time.
            self._memo[key] = features.astype(np.float16).astype(np.float32)
        return self._memo[key]


def _state(position: np.ndarray) -> np.ndarray:
    return robot_state_vector(task.joints_at(position), position, task.TOOL_DOWN_XYZW)


def run_episode(scene: task.TrackingScene, predict: Callable, features: FeatureSource,
                model_id: str, latency: LatencyModel, mode: Mode,
                settings: LoopSettings = LoopSettings()) -> EpisodeResult:
    """One closed-loop episode from the first action time of ``scene``'s recording."""
    t0 = int(round((task.LEAD_IN + task.FIRST_SAMPLE_DELAY) * NS))
    end = t0 + int(round(settings.duration_s * NS))
    content = task.TrackingContent(scene, task.TrackingMotion(scene))
    position = np.concatenate([scene.tip(np.array([t0 / NS]))[0],
                               [float(scene.tip_height(t0 / NS))]])
    probe = features(scene, 0)
    store = VLFeatureStore(probe.shape[0], probe.shape[1], model_id)
    window = SensorWindow(65, task.ALINE_LENGTH, max_gap=0.01)
    core_cfg = ActionCoreConfig(max_vl_age=mode.max_vl_age, step_period=0.1)
    limits = GuardLimits()
    core = ActionCore(predict, store, window, core_cfg, ChunkBlender(mode.blending),
                      OutputGuard(limits, "ee_delta"))
    gate = SafetyGate(enabled_at_start=True)
    executor = ExecutorCore(ExecutorConfig(period=settings.executor_period_s,
                                           max_chunk_age=mode.max_chunk_age),
                            OutputGuard(limits, "ee_delta"), ChunkBlender("latest_only"), gate,
                            WatchdogSet())
    frame_period_ns = int(round(NS / task.CAMERA_FPS))
    sensor_period = 1.0 / SENSOR_RATE
    next_sample = int(math.ceil((t0 / NS - 0.2) * SENSOR_RATE))  # a window's worth before t0
    action_ns, executor_ns = int(settings.action_period_s * NS), int(settings.executor_period_s * NS)
    # Warm start: the VLM has been running, so its first features arrive as the episode starts
    # (it took that frame compute + transport earlier; the camera records before the episode).
    first_take = t0 - int(round((latency.compute_s + latency.transport_s) * NS))
    vlm_busy_until = first_take
    in_flight: list[tuple[int, int, np.ndarray]] = []  # (arrival, frame stamp, features)
    sequence = 0
    result = EpisodeResult(False, None, 0.0, math.inf, 0, 0, 0.0, 0.0, 0.0)
    setpoints: list[tuple[int, np.ndarray]] = [(t0, position.copy())]
    chunk_times: list[int] = []
    inside_since: int | None = None
    pending_sync: tuple[int, int] | None = None  # synchronous: (act at, frame stamp)

    def deliver(chunk: Chunk, now: int) -> None:
        actions = chunk.actions
        if mode.one_action_per_update:
            actions = actions[:1]
        executor.on_chunk(chunk.stamp_ns, chunk.step_period, chunk.reference, actions, "ee_delta",
                          DIM_NAMES, now)
        chunk_times.append(now)

    now = min(t0 - int(round(0.2 * NS)), first_take)
    while now <= end:
        # The world's sensors: force/OCT samples up to now, robot state every 10 ms.
        batch_k = []
        while next_sample * sensor_period * NS <= now:
            batch_k.append(next_sample)
            next_sample += 1
        if batch_k:
            k = np.asarray(batch_k)
            stamps = np.round(k * sensor_period * NS).astype(np.int64)
            distance = position[2] - scene.surface_height(stamps / NS)
            rows = content.rows_at(k, distance)
            for i in range(0, len(k), SENSOR_BATCH):
                window.add_batch(stamps[i:i + SENSOR_BATCH], rows[i:i + SENSOR_BATCH, 0],
                                 rows[i:i + SENSOR_BATCH, 1:], now)
        if now % ROBOT_PERIOD_NS == 0:
            state = _state(position)
            core.set_robot_state(state, now)
            executor.set_robot_state(state, now)
        if now >= first_take:
            # The VLM: back to back, on the newest frame when it starts.
            if now >= vlm_busy_until and (not mode.synchronous or pending_sync is None):
                frame = (now // frame_period_ns) * frame_period_ns
                arrive = now + int(round((latency.compute_s + latency.transport_s) * NS))
                in_flight.append((arrive, frame, features(scene, frame)))
                vlm_busy_until = now + int(round(latency.compute_s * NS))
                if mode.synchronous:
                    pending_sync = (arrive, frame)
                    vlm_busy_until = arrive  # the next update starts after this one is acted on
            for item in [f for f in in_flight if f[0] <= now]:
                in_flight.remove(item)
                sequence += 1
                store.update(item[2], sequence, item[1], model_id, now)
        if now >= t0:
            # The action node.
            act = False
            if mode.synchronous:
                if pending_sync is not None and pending_sync[0] <= now:
                    act, pending_sync = True, None
            elif (now - t0) % action_ns == 0:
                act = True
            if act:
                outcome = core.tick(now)
                if outcome.chunk is not None:
                    if result.first_chunk_s is None:
                        result.first_chunk_s = (now - t0) / NS
                    result.chunks += 1
                    result.vl_ages_s.append(float(outcome.vl.age))
                    deliver(outcome.chunk, now)
                else:
                    key = str(outcome.category.value if hasattr(outcome.category, "value")
                              else outcome.category)
                    result.refusals[key] = result.refusals.get(key, 0) + 1
            # The executor and the robot.
            if (now - t0) % executor_ns == 0:
                tick = executor.tick(now, now / NS)
                if tick.setpoint is not None:
                    position = np.asarray(tick.setpoint.target[:3], dtype=np.float64)
                    setpoints.append((now, position.copy()))
                else:
                    result.held_s += settings.executor_period_s
                    setpoints.append((now, position.copy()))
                target = scene.target(np.array([now / NS]))[0]
                error = float(np.hypot(*(target - position[:2])))
                result.min_error_m = min(result.min_error_m, error)
                result.final_error_m = error
                if error <= settings.tolerance_m:
                    inside_since = now if inside_since is None else inside_since
                    if (not result.success and now - inside_since
                            >= int(settings.settle_s * NS)):
                        result.success = True
                        result.time_to_success_s = (inside_since - t0) / NS
                else:
                    inside_since = None
        now += STEP_NS
    result.handovers, result.max_handover_jump_m, result.max_handover_jerk = handover_smoothness(
        setpoints, chunk_times[1:], settings)
    return result


def handover_smoothness(setpoints: list[tuple[int, np.ndarray]], handovers: list[int],
                        settings: LoopSettings) -> tuple[int, float, float]:
    """(handovers, largest jump, largest jerk) within ``window_ms`` of each new chunk after the
    first. A jump is how far a setpoint lands from where the two before it were heading
    (``|p_k - (2 p_k-1 - p_k-2)|``, m): 0 on any straight path at constant speed, so it is the
    kink a handover puts in the stream, not the robot's speed. Jerk: the third difference of the
    100 Hz setpoints over the period cubed (m/s^3)."""
    if len(setpoints) < 4 or not handovers:
        return len(handovers), 0.0, 0.0
    times = np.array([t for t, _ in setpoints], dtype=np.int64)
    points = np.stack([p for _, p in setpoints])
    kinks = np.linalg.norm(np.diff(points, n=2, axis=0), axis=1)
    dt = settings.executor_period_s
    jerk = np.linalg.norm(np.diff(points, n=3, axis=0), axis=1) / dt ** 3
    half = int(settings.window_ms * 1e6)
    biggest_step = biggest_jerk = 0.0
    for t in handovers:
        near = np.flatnonzero(np.abs(times[2:] - t) <= half)
        if near.size:
            biggest_step = max(biggest_step, float(kinks[near].max()))
        near_j = np.flatnonzero(np.abs(times[3:] - t) <= half)
        if near_j.size:
            biggest_jerk = max(biggest_jerk, float(jerk[near_j].max()))
    return len(handovers), biggest_step, biggest_jerk


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a success rate."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))
