"""One action tick, decided without ROS: act on fresh, valid inputs or say exactly why not.

A robot with a needle is on the other end, so the rule is fail-closed: every input (VL features,
sensor window, robot state, the policy's own output) is checked on every tick, and when any check
fails the tick publishes nothing and reports the reason. History used for chunk blending is reset
after any refusal, so a chunk is never blended with one from before a gap. The blended chunk then
passes the output guard (limits, workspace, jumps; see output_guard.py), which may clamp it or
withhold it; what the guard lets through is what the next chunk is blended with and compared to.

Two ways to use it. `tick` does it all at once: gather the inputs, run the expert, publish (the
synchronous path of the unit tests and the closed-loop simulation, which step time themselves; the
node's inline executor-timer design was removed, TIMING.md). The node splits it, in both its tick
designs: `gather` takes the inputs (under the node's lock), `run_policy` runs the expert on another
thread (touching no shared state), `accept` stores the result as the newest inference, and every
tick `publish_latest` re-times that inference to the tick (`chunk.retime`: the same absolute
targets, seen from the tick's stamp and robot state). Each published chunk carries its `Provenance`
(which inference, computed for when, from which sensor sample, published how many times before), so
a chunk re-timed from an old computation is never mistaken for a new one. A refusal of the gate, a
watchdog or an input at inference time bumps a generation counter: an inference whose inputs were
taken before it is discarded when it finishes, so no plan spans such a gap.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from asyncvla_action_node.refusals import Refusal
from asyncvla_action_node.sensor_window import SensorWindow
from asyncvla_action_node.vl_store import VLFeatureStore, VLSnapshot
from asyncvla_core import freshness
from asyncvla_core.chunk import Chunk, retime
from asyncvla_core.chunk_blending import ChunkBlender
from asyncvla_core.conventions import reference_components
from asyncvla_core.output_guard import GuardResult, OutputGuard

# predict(vl_tokens (K, D), sensor_window (T, C), robot_state (S,), vl_age (s)) -> actions (H, A).
# The age is the one this core checks against max_vl_age (the inference's time minus the stamp of
# the newest camera frame behind the features) and the one the ActionChunk states (vl_age).
PredictFn = Callable[[np.ndarray, np.ndarray, np.ndarray, float], np.ndarray]


@dataclass(frozen=True)
class ActionCoreConfig:
    max_vl_age: float = freshness.MAX_VL_AGE_S  # s; beyond it no action is published (ERROR)
    sensor_max_age: float = freshness.SENSOR_MAX_AGE_S  # s, newest sensor sample to the tick
    robot_state_max_age: float = freshness.ROBOT_STATE_MAX_AGE_S  # s
    # s; inputs stamped further in the future mean a clock problem (the node's max_future_stamp)
    future_tolerance: float = freshness.MAX_FUTURE_STAMP_S
    step_period: float = 0.1  # s between chunk steps (the rate the policy was trained at)
    action_space: str = "ee_delta"
    horizon: int = 8
    action_dim: int = 7
    max_inference_age: float = 0.2  # s, inference stamp to tick (timing-thread design)


@dataclass(frozen=True)
class Provenance:
    """Which computation a published chunk carries (the ActionChunk's inference_* fields)."""

    inference_sequence: int  # 1, 2, ... per expert run accepted in this node run
    inference_stamp_ns: int  # the time the inference was computed for (its inputs were taken)
    sensor_stamp_ns: int  # the newest force/OCT sample in the window it was computed from
    reuse_count: int  # chunks published earlier from this same inference (0: first time)


@dataclass(frozen=True)
class InferenceInputs:
    """Everything one expert run reads, taken at one instant (`stamp_ns`)."""

    stamp_ns: int
    vl: VLSnapshot
    sensor: np.ndarray
    sensor_stamp_ns: int
    state: np.ndarray
    generation: int  # ActionCore's refusal generation when the inputs were taken


@dataclass(frozen=True)
class PolicyRun:
    """The expert's answer to one InferenceInputs (or why it has none)."""

    actions: np.ndarray | None
    seconds: float
    reason: str = ""
    category: Refusal = Refusal.OK


@dataclass
class _Inference:
    provenance: Provenance
    chunk: Chunk  # blended, at the inference's own stamp
    vl: VLSnapshot
    seconds: float
    published: int = 0


@dataclass(frozen=True)
class TickOutcome:
    chunk: Chunk | None  # the (blended) chunk to publish, or None
    reason: str  # why nothing is published ("" when a chunk is)
    category: Refusal  # why nothing was published (Refusal.OK when a chunk was)
    vl: VLSnapshot | None
    inference_time: float  # s, 0 when the policy did not run
    guard: GuardResult | None = None  # the output guard's verdict, when it was asked
    provenance: Provenance | None = None  # set when a chunk is published
    new_inference: bool = False  # this outcome finished an expert run (its time is fresh)


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
        self.generation = 0  # bumped by every refusal
        self.inference_sequence = 0
        self.discarded = 0  # inferences dropped because a refusal came while they ran
        self._latest: _Inference | None = None
        self._last_refusal: TickOutcome | None = None

    def set_robot_state(self, state: np.ndarray, stamp_ns: int) -> None:
        with self._state_lock:
            self._state = np.asarray(state, dtype=np.float32)
            self._state_stamp_ns = stamp_ns

    def clear_robot_state(self) -> None:
        with self._state_lock:
            self._state = None

    def refuse(self, reason: str, category: Refusal, vl: VLSnapshot | None = None,
               guard: GuardResult | None = None, discard_running: bool = True) -> TickOutcome:
        """Publish nothing this tick; forget the blending and jump history and the newest
        inference (never span a gap), and discard any inference still running.

        `discard_running` False (a re-timed tick's own checks: the robot state, the VL or the
        inference too old at this tick, the guard) keeps the running one: its inputs passed
        every check when they were taken, it is checked again at every tick it is published at,
        and with the history reset it is never blended across the gap.
        """
        self.blender.reset()
        self._published = None
        self._latest = None
        if discard_running:
            self.generation += 1
        self._last_refusal = TickOutcome(None, reason, category, vl, 0.0, guard)
        return self._last_refusal

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
                                          f"(freshness.max_vl_age {cfg.max_vl_age * 1e3:.0f} ms)")
        if vl.age < -cfg.future_tolerance:
            return vl, Refusal.VL_FUTURE, (f"VL features stamped {-vl.age * 1e3:.0f} ms in the "
                                           f"future (clock jump?)")
        return vl, Refusal.OK, ""

    def gather(self, now_ns: int) -> InferenceInputs | TickOutcome:
        """The inputs an inference at `now_ns` would read, or the refusal saying why none may."""
        cfg = self.config
        vl, verdict, why = self.vl_verdict(now_ns)
        if verdict is not Refusal.OK:
            return self.refuse(why, verdict, vl)
        sensor = self.sensor.window(now_ns, cfg.sensor_max_age)
        if sensor.window is None:
            return self.refuse(sensor.reason, Refusal.SENSOR, vl)
        state = self._fresh_state(now_ns, vl)
        if isinstance(state, TickOutcome):
            return state
        return InferenceInputs(now_ns, vl, sensor.window, sensor.newest_stamp_ns, state,
                               self.generation)

    def _fresh_state(self, now_ns: int, vl: VLSnapshot | None,
                     discard_running: bool = True) -> np.ndarray | TickOutcome:
        cfg = self.config
        refuse = lambda why, category: self.refuse(  # noqa: E731
            why, category, vl, discard_running=discard_running)
        with self._state_lock:
            state, state_stamp = self._state, self._state_stamp_ns
        if state is None:
            return refuse("no robot state received yet", Refusal.ROBOT_STATE)
        state_age = (now_ns - state_stamp) / 1e9
        if state_age < -cfg.future_tolerance:
            return refuse(f"robot state stamped {-state_age * 1e3:.0f} ms in the future "
                          f"(clock jump?)", Refusal.ROBOT_STATE_FUTURE)
        if state_age > cfg.robot_state_max_age:
            return refuse(f"robot state is {state_age * 1e3:.0f} ms old (freshness."
                          f"robot_state_max_age {cfg.robot_state_max_age * 1e3:.0f} ms)",
                          Refusal.ROBOT_STATE_STALE)
        return state

    def run_policy(self, inputs: InferenceInputs) -> PolicyRun:
        """Run the expert on `inputs`; touches no shared state (safe on a worker thread)."""
        cfg = self.config
        started = time.perf_counter()
        try:
            actions = np.asarray(self.predict(inputs.vl.features, inputs.sensor, inputs.state,
                                              inputs.vl.age), dtype=np.float32)
        except Exception as exc:  # a policy failure must never take the node down
            return PolicyRun(None, time.perf_counter() - started, f"policy failed: {exc}",
                             Refusal.POLICY_ERROR)
        seconds = time.perf_counter() - started
        if actions.shape != (cfg.horizon, cfg.action_dim):
            return PolicyRun(None, seconds, f"policy returned shape {actions.shape}, expected "
                             f"({cfg.horizon}, {cfg.action_dim})", Refusal.POLICY_OUTPUT)
        if not np.all(np.isfinite(actions)):
            return PolicyRun(None, seconds, "policy returned NaN or inf", Refusal.POLICY_OUTPUT)
        return PolicyRun(actions, seconds, "", Refusal.OK)

    def accept(self, inputs: InferenceInputs, run: PolicyRun) -> TickOutcome | None:
        """Make a finished run the newest inference (blended with the one before it).

        None when the run is discarded because a refusal came after its inputs were taken.
        """
        if inputs.generation != self.generation:
            self.discarded += 1
            return None
        if run.actions is None:
            return self.refuse(run.reason, run.category, inputs.vl)
        cfg = self.config
        reference = reference_components(inputs.state, cfg.action_space).astype(np.float64)
        chunk = self.blender.blend(Chunk(inputs.stamp_ns, cfg.step_period, reference,
                                         run.actions))
        self.inference_sequence += 1
        self.vl_store.mark_used(inputs.vl.sequence)
        self._latest = _Inference(Provenance(self.inference_sequence, inputs.stamp_ns,
                                             inputs.sensor_stamp_ns, 0), chunk, inputs.vl,
                                  run.seconds)
        self._last_refusal = None
        return TickOutcome(chunk, "", Refusal.OK, inputs.vl, run.seconds, None,
                           self._latest.provenance, new_inference=True)

    def tick(self, now_ns: int) -> TickOutcome:
        """Gather, run the expert and publish, all at this tick (synchronous callers)."""
        inputs = self.gather(now_ns)
        if isinstance(inputs, TickOutcome):
            return inputs
        accepted = self.accept(inputs, self.run_policy(inputs))
        assert accepted is not None  # same thread: no refusal can come in between
        if accepted.chunk is None:
            return accepted
        return self._emit(self._latest, accepted.chunk, inputs.state)

    def publish_latest(self, now_ns: int) -> TickOutcome:
        """The timing-thread design's tick: the newest inference, re-timed to `now_ns`."""
        latest = self._latest
        if latest is None:  # nothing finished since the start or the last refusal
            last = self._last_refusal
            if last is not None:
                return last
            return TickOutcome(None, "no inference has finished yet", Refusal.NO_INFERENCE,
                               self.vl_store.snapshot(now_ns), 0.0)
        age = (now_ns - latest.provenance.inference_stamp_ns) / 1e9
        if age > self.config.max_inference_age:
            return self.refuse(f"newest inference is {age * 1e3:.0f} ms old "
                               f"(freshness.max_inference_age "
                               f"{self.config.max_inference_age * 1e3:.0f} ms)",
                               Refusal.INFERENCE_STALE, latest.vl, discard_running=False)
        vl_age = (now_ns - latest.vl.stamp_ns) / 1e9
        if vl_age > self.config.max_vl_age:  # the same rule as at the inference, at this tick
            return self.refuse(f"VL features are {vl_age * 1e3:.0f} ms old at this tick "
                               f"(freshness.max_vl_age {self.config.max_vl_age * 1e3:.0f} ms)",
                               Refusal.VL_STALE, latest.vl, discard_running=False)
        state = self._fresh_state(now_ns, latest.vl, discard_running=False)
        if isinstance(state, TickOutcome):
            return state
        reference = reference_components(state, self.config.action_space).astype(np.float64)
        chunk = retime(latest.chunk, now_ns, reference)
        if chunk is None:
            return self.refuse("the newest inference covers no step after this tick",
                               Refusal.INFERENCE_STALE, latest.vl, discard_running=False)
        return self._emit(latest, chunk, state)

    def _emit(self, latest: "_Inference", chunk: Chunk, state: np.ndarray) -> TickOutcome:
        """Pass `chunk` (from `latest`) through the output guard; what passes is published."""
        guard = None
        if self.guard is not None:
            guard = self.guard.check(chunk, state, self._published)
            if guard.chunk is None:
                return self.refuse(guard.message, Refusal.GUARD, latest.vl, guard,
                                   discard_running=False)
            if guard.chunk is not chunk:  # clamped: blend the next chunk with what went out
                chunk = guard.chunk
                self.blender.replace_published(chunk)
        self._published = chunk
        prov = latest.provenance
        provenance = Provenance(prov.inference_sequence, prov.inference_stamp_ns,
                                prov.sensor_stamp_ns, latest.published)
        latest.published += 1
        return TickOutcome(chunk, "", Refusal.OK, latest.vl, latest.seconds, guard, provenance,
                           new_inference=provenance.reuse_count == 0)
