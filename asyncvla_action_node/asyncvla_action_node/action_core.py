"""One action tick, decided without ROS: act on fresh, valid inputs or say exactly why not.

A robot with a needle is on the other end, so the rule is fail-closed: every input (VL features,
sensor window, robot state, the policy's own output) is checked on every tick, and when any check
fails the tick publishes nothing and reports the reason. History used for chunk blending is reset
after any refusal, so a chunk is never blended with one from before a gap. The blended chunk then
passes the output guard (limits, workspace, jumps; see output_guard.py), which may clamp it or
withhold it; what the guard lets through is what the next chunk is blended with and compared to.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from asyncvla_action_node.chunk import Chunk
from asyncvla_action_node.chunk_blending import ChunkBlender
from asyncvla_action_node.output_guard import GuardResult, OutputGuard
from asyncvla_action_node.refusals import Refusal
from asyncvla_action_node.sensor_window import SensorWindow
from asyncvla_action_node.vl_store import VLFeatureStore, VLSnapshot
from asyncvla_training.conventions import reference_components

# predict(vl_tokens (K, D), sensor_window (T, C), robot_state (S,)) -> actions (H, A)
PredictFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ActionCoreConfig:
    max_vl_age: float = 1.0  # s; beyond it no action is published (ERROR)
    sensor_max_age: float = 0.05  # s between the newest sensor sample and the tick
    robot_state_max_age: float = 0.1  # s
    future_tolerance: float = 0.05  # s; inputs stamped further in the future mean a clock problem
    step_period: float = 0.1  # s between chunk steps (the rate the policy was trained at)
    action_space: str = "ee_delta"
    horizon: int = 8
    action_dim: int = 7


@dataclass(frozen=True)
class TickOutcome:
    chunk: Chunk | None  # the (blended) chunk to publish, or None
    reason: str  # why nothing is published ("" when a chunk is)
    category: Refusal  # why nothing was published (Refusal.OK when a chunk was)
    vl: VLSnapshot | None
    inference_time: float  # s, 0 when the policy did not run
    guard: GuardResult | None = None  # the output guard's verdict, when it was asked


class ActionCore:
    """Owns the robot-state slot and the tick; the stores are filled by subscriptions."""

    def __init__(self, predict: PredictFn, vl_store: VLFeatureStore, sensor: SensorWindow,
                 config: ActionCoreConfig, blender: ChunkBlender,
                 guard: OutputGuard | None = None) -> None:
        self.predict = predict
        self.vl_store = vl_store
        self.sensor = sensor
        self.config = config
        self.blender = blender
        self.guard = guard
        self._published: Chunk | None = None  # the last chunk that left the node
        self._state_lock = threading.Lock()
        self._state: np.ndarray | None = None
        self._state_stamp_ns = 0

    def set_robot_state(self, state: np.ndarray, stamp_ns: int) -> None:
        with self._state_lock:
            self._state = np.asarray(state, dtype=np.float32)
            self._state_stamp_ns = stamp_ns

    def clear_robot_state(self) -> None:
        with self._state_lock:
            self._state = None

    def refuse(self, reason: str, category: Refusal, vl: VLSnapshot | None = None,
               guard: GuardResult | None = None) -> TickOutcome:
        """Publish nothing this tick; forget the blending and jump history (never span a gap)."""
        self.blender.reset()
        self._published = None
        return TickOutcome(None, reason, category, vl, 0.0, guard)

    def vl_verdict(self, now_ns: int) -> tuple[VLSnapshot | None, Refusal, str]:
        """The newest VL features and whether a tick may act on them: the one definition of
        missing, stale and future features (the tick and the node's diagnostics both use it)."""
        cfg = self.config
        vl = self.vl_store.snapshot(now_ns)
        if vl is None:
            rejected = self.vl_store.last_reject_reason
            note = f" (last rejected: {rejected})" if rejected else ""
            return None, Refusal.VL_MISSING, "no usable VL features yet" + note
        if vl.age > cfg.max_vl_age:
            return vl, Refusal.VL_STALE, (f"VL features are {vl.age * 1e3:.0f} ms old "
                                          f"(max_vl_age {cfg.max_vl_age * 1e3:.0f} ms)")
        if vl.age < -cfg.future_tolerance:
            return vl, Refusal.VL_FUTURE, (f"VL features stamped {-vl.age * 1e3:.0f} ms in the "
                                           f"future (clock jump?)")
        return vl, Refusal.OK, ""

    def tick(self, now_ns: int) -> TickOutcome:
        cfg = self.config
        vl, verdict, why = self.vl_verdict(now_ns)
        if verdict is not Refusal.OK:
            return self.refuse(why, verdict, vl)
        sensor = self.sensor.window(now_ns, cfg.sensor_max_age)
        if sensor.window is None:
            return self.refuse(sensor.reason, Refusal.SENSOR, vl)
        with self._state_lock:
            state, state_stamp = self._state, self._state_stamp_ns
        if state is None:
            return self.refuse("no robot state received yet", Refusal.ROBOT_STATE, vl)
        state_age = (now_ns - state_stamp) / 1e9
        if state_age < -cfg.future_tolerance:
            return self.refuse(f"robot state stamped {-state_age * 1e3:.0f} ms in the future "
                               f"(clock jump?)", Refusal.ROBOT_STATE_FUTURE, vl)
        if state_age > cfg.robot_state_max_age:
            return self.refuse(f"robot state is {state_age * 1e3:.0f} ms old "
                               f"(max {cfg.robot_state_max_age * 1e3:.0f} ms)",
                               Refusal.ROBOT_STATE_STALE, vl)
        started = time.perf_counter()
        try:
            actions = np.asarray(self.predict(vl.features, sensor.window, state), dtype=np.float32)
        except Exception as exc:  # a policy failure must never take the node down
            return self.refuse(f"policy failed: {exc}", Refusal.POLICY_ERROR, vl)
        inference_time = time.perf_counter() - started
        if actions.shape != (cfg.horizon, cfg.action_dim):
            return self.refuse(f"policy returned shape {actions.shape}, expected "
                                f"({cfg.horizon}, {cfg.action_dim})", Refusal.POLICY_OUTPUT, vl)
        if not np.all(np.isfinite(actions)):
            return self.refuse("policy returned NaN or inf", Refusal.POLICY_OUTPUT, vl)
        reference = reference_components(state, cfg.action_space).astype(np.float64)
        chunk = self.blender.blend(Chunk(now_ns, cfg.step_period, reference, actions))
        guard = None
        if self.guard is not None:
            guard = self.guard.check(chunk, state, self._published)
            if guard.chunk is None:
                return self.refuse(guard.message, Refusal.GUARD, vl, guard)
            if guard.chunk is not chunk:  # clamped: blend the next chunk with what went out
                chunk = guard.chunk
                self.blender.replace_published(chunk)
        self._published = chunk
        self.vl_store.mark_used(vl.sequence)
        return TickOutcome(chunk, "", Refusal.OK, vl, inference_time, guard)
