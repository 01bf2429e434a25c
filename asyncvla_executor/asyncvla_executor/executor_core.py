"""The chunk executor's decisions, without ROS: which setpoint the robot gets at this tick, if any.

The action node publishes an action chunk about every 100 ms; a robot controller wants a target
every few milliseconds. The executor keeps the queue of future targets by time
(``setpoint_queue``), joins each new chunk into it with the action node's blending strategies
(``chunk_blending.ChunkBlender``, the one definition of them), and at every tick emits the target
for one executor period ahead, interpolated, never extrapolated.

Rules (fail closed; each is tested in test_executor_core.py):

* A tick emits a setpoint only when the safety gate is ENABLED (enable / latched e-stop, as in the
  action node), the robot-state watchdogs are fed, the robot state is not older than
  ``robot_state_max_age``, the newest chunk is not older than ``max_chunk_age`` (stamp to now) and
  the queue still holds a target after the last one emitted. Otherwise the robot *holds*: zero
  velocity, the last target repeated.
* Every setpoint passes the output guard (``output_guard.OutputGuard``, the action node's limits:
  joint window, per-step and per-second joint / linear / angular limits, workspace box) as a one-
  step chunk from the previous setpoint over the time between them (one executor period, more after
  a late tick). In ``clamp`` mode a clamped setpoint goes out; a refused one stops the executor
  (hold) and drops the queue.
* After a stop by the gate, the watchdogs or the guard, chunks stamped before the stop are never
  executed; after any stop the blending history is forgotten (never blend across a gap). After any
  hold the next queue starts from the *measured* robot state, so the robot is never told to jump
  back to where it was told to hold while it was moved meanwhile; and the chunk runs from the first
  tick on, late by its age, at its planned speed (catching up with its stamp would need more
  speed).
* While executing, a new chunk's queue starts from the last emitted setpoint and goes on with the
  chunk's targets due at least half a chunk step (and one executor period) later (like
  ros2_control's joint_trajectory_controller replacing a trajectory): the seam is interpolated, not
  jumped, and a disagreement between consecutive chunks is spread over at least half a step. A
  disagreement too large for the velocity limits in that time is refused by the guard (or clamped
  in clamp mode).

Times: ``now_ns`` is the node clock (the chunks' stamps are on it); ``mono`` monotonic seconds
for the gate and watchdogs (arrival times, immune to clock steps).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from asyncvla_common.safety import SafetyGate, SafetyState, WatchdogSet
from asyncvla_core import freshness
from asyncvla_core.chunk import Chunk
from asyncvla_core.chunk_blending import ChunkBlender
from asyncvla_core.conventions import ACTION_SPACES, reference_components
from asyncvla_core.output_guard import OutputGuard
from asyncvla_core.rotations import matrix_to_quaternion, rotvec_to_matrix
from asyncvla_executor.setpoint_queue import (SetpointQueue, absolute_targets, advance,
                                              difference)

#: Hold categories that mean "no fresh chunk existed" (the closed-loop summary's held time).
NO_CHUNK_CATEGORIES = ("queue_empty", "chunk_stale")
#: Hold categories that are errors on /diagnostics (the others, e.g. an empty queue, WARN).
ERROR_CATEGORIES = ("estop", "watchdog", "robot_state_stale", "guard")


@dataclass(frozen=True)
class ExecutorConfig:
    action_space: str = "ee_delta"
    period: float = 0.01  # s between ticks (100 Hz)
    max_chunk_age: float = 0.3  # s from the newest chunk's stamp to the tick; older -> hold
    future_tolerance: float = 0.05  # s; chunks stamped further ahead mean a clock problem
    robot_state_max_age: float = freshness.ROBOT_STATE_MAX_AGE_S  # s

    def __post_init__(self) -> None:
        if self.action_space not in ACTION_SPACES:
            raise ValueError(f"unknown action space {self.action_space!r}")
        if not self.period > 0:
            raise ValueError("the executor period must be > 0")


@dataclass(frozen=True)
class Setpoint:
    """One target for the robot: where it should be one executor period after the tick."""

    stamp_ns: int  # the time the target is for
    target: np.ndarray  # (6,) joints (rad), or position (m) + rotation vector (rad), base frame
    velocity: np.ndarray  # (6,) from the previous setpoint to this one, per second
    clamped: bool = False  # the guard clamped it (clamp mode)

    def quaternion(self) -> np.ndarray:
        """The orientation as an (x, y, z, w) quaternion (ee_delta targets)."""
        return matrix_to_quaternion(rotvec_to_matrix(self.target[3:6]))


@dataclass(frozen=True)
class TickResult:
    setpoint: Setpoint | None  # None: hold
    category: str  # "ok", or why the robot holds ("queue_empty", "estop", "guard", ...)
    reason: str  # one line ("" when a setpoint goes out)
    hold_target: np.ndarray | None = None  # where the robot holds (the last target), if known
    stopped_now: bool = False  # this tick ended execution (the outputs send their stop message)


@dataclass
class ExecutorStats:
    setpoints: int = 0
    clamped: int = 0
    held_s: dict[str, float] = field(default_factory=dict)  # enabled time held, by category
    chunks_accepted: int = 0
    chunks_dropped: dict[str, int] = field(default_factory=dict)
    guard_refusals: int = 0
    guard_violations: dict[str, int] = field(default_factory=dict)


class ExecutorCore:
    """Owns the queue, the gate and the robot-state slot; fed by subscriptions, ticked by a timer.

    Thread-safe: subscriptions may call ``on_chunk``/``set_robot_state`` from any thread.
    """

    def __init__(self, config: ExecutorConfig, guard: OutputGuard, blender: ChunkBlender,
                 gate: SafetyGate, watchdogs: WatchdogSet) -> None:
        if guard.action_space != config.action_space:
            raise ValueError("the guard and the executor need the same action space")
        self.config = config
        self.guard = guard
        self.blender = blender
        self.gate = gate
        self.watchdogs = watchdogs
        self.stats = ExecutorStats()
        self.last_result: TickResult | None = None
        self._queue = SetpointQueue(config.action_space)
        self._lock = threading.Lock()
        self._last: Setpoint | None = None  # last emitted setpoint while executing
        self._hold: np.ndarray | None = None  # where the robot was last told to be
        self._newest_stamp_ns: int | None = None  # newest accepted chunk
        self._barrier_ns: int | None = None  # chunks stamped at or before it never run
        self._state: np.ndarray | None = None
        self._state_stamp_ns = 0
        self._period_ns = int(round(config.period * 1e9))
        self._due_now: np.ndarray | None = None  # the target for the current tick's time

    def tracking_error(self) -> float | None:
        """Measured state to the target due now (m of position, or rad of joints); None when
        not executing or nothing is measured."""
        with self._lock:
            if self._last is None or self._due_now is None or self._state is None:
                return None
            space = self.config.action_space
            error = difference(reference_components(self._state, space), self._due_now, space)
            return float(np.linalg.norm(error[:3] if space == "ee_delta" else error))

    # --- inputs -------------------------------------------------------------------------------
    def set_robot_state(self, state: np.ndarray, stamp_ns: int) -> None:
        """The measured 13-d robot state (conventions.robot_state_vector) and its stamp."""
        with self._lock:
            self._state = np.asarray(state, dtype=np.float64)
            self._state_stamp_ns = int(stamp_ns)

    def clear_robot_state(self) -> None:
        """A bad robot message arrived: never act on the state from before it."""
        with self._lock:
            self._state = None

    def on_chunk(self, stamp_ns: int, step_period: float, reference: np.ndarray,
                 actions: np.ndarray, action_space: str, dim_names: list[str],
                 now_ns: int) -> str:
        """Join a chunk into the queue; returns "" when accepted, else the drop reason's key."""
        cfg = self.config
        with self._lock:
            why = self._validate(stamp_ns, step_period, reference, actions, action_space,
                                 dim_names, now_ns)
            if why:
                self.stats.chunks_dropped[why] = self.stats.chunks_dropped.get(why, 0) + 1
                return why
            chunk = Chunk(int(stamp_ns), float(step_period),
                          np.asarray(reference, dtype=np.float64),
                          np.asarray(actions, dtype=np.float32))
            joined = self.blender.blend(chunk)
            targets = absolute_targets(joined, cfg.action_space)
            times = stamp_ns + np.round(step_period * 1e9 * np.arange(1, len(targets) + 1))
            if self._last is not None:
                start_ns, start = self._last.stamp_ns, self._last.target
            else:  # from a hold: start where the robot is measured to be (see _tick)
                start_ns = int(stamp_ns)
                start = reference_components(self._state, cfg.action_space) \
                    if self._state is not None else None
            if start is None:
                return self._drop("no_robot_state")
            # A correction at the seam is spread over half a step at least, not one tick.
            lead_ns = max(self._period_ns, int(step_period * 0.5e9))
            if self._queue.replace(start_ns, start, times.astype(np.int64), targets,
                                   lead_ns) == 0:
                return self._drop("expired")
            self._newest_stamp_ns = int(stamp_ns)
            self.stats.chunks_accepted += 1
            return ""

    def _drop(self, why: str) -> str:
        self.stats.chunks_dropped[why] = self.stats.chunks_dropped.get(why, 0) + 1
        return why

    def _validate(self, stamp_ns, step_period, reference, actions, action_space, dim_names,
                  now_ns) -> str:
        cfg = self.config
        if action_space != cfg.action_space:
            return "action_space"
        actions = np.asarray(actions)
        expected = list(ACTION_SPACES[cfg.action_space])[:actions.shape[-1]] \
            if actions.ndim == 2 else []
        if actions.ndim != 2 or actions.shape[0] < 1 or actions.shape[1] < 6 \
                or np.asarray(reference).shape != (6,):
            return "shape"
        if dim_names and list(dim_names) != expected:
            return "dim_names"
        if not (np.all(np.isfinite(actions)) and np.all(np.isfinite(reference))
                and np.isfinite(step_period) and step_period > 0):
            return "non_finite"
        age = (now_ns - stamp_ns) / 1e9
        if age < -cfg.future_tolerance:
            return "future"
        if age > cfg.max_chunk_age:
            return "stale"
        if self._barrier_ns is not None and stamp_ns <= self._barrier_ns:
            return "before_stop"
        if self._newest_stamp_ns is not None and stamp_ns <= self._newest_stamp_ns:
            return "out_of_order"
        return ""

    # --- the tick -----------------------------------------------------------------------------
    def tick(self, now_ns: int, mono: float) -> TickResult:
        with self._lock:
            result = self._tick(now_ns, mono)
            self.last_result = result
            if result.setpoint is None and self.gate.state == SafetyState.ENABLED:
                held = self.stats.held_s
                held[result.category] = held.get(result.category, 0.0) + self.config.period
            return result

    def _tick(self, now_ns: int, mono: float) -> TickResult:
        cfg = self.config
        silent = self.watchdogs.check(mono)
        if silent:
            return self._stop(now_ns, "watchdog", "input silent: "
                              + self.watchdogs.describe(silent, mono), barrier=True)
        allowed, why = self.gate.allows_output(mono)
        if not allowed:
            category = "estop" if self.gate.state == SafetyState.ESTOP else "disabled"
            return self._stop(now_ns, category, why, barrier=True)
        if self._state is None:
            return self._stop(now_ns, "robot_state_stale", "no valid robot state")
        state_age = (now_ns - self._state_stamp_ns) / 1e9
        if state_age > cfg.robot_state_max_age or state_age < -cfg.future_tolerance:
            return self._stop(now_ns, "robot_state_stale",
                              f"robot state is {state_age * 1e3:.0f} ms old "
                              f"(freshness.robot_state_max_age "
                              f"{cfg.robot_state_max_age * 1e3:.0f} ms)")
        chunk_age = None if self._newest_stamp_ns is None else \
            (now_ns - self._newest_stamp_ns) / 1e9
        if chunk_age is not None and chunk_age > cfg.max_chunk_age:
            return self._stop(now_ns, "chunk_stale", f"newest chunk is {chunk_age * 1e3:.0f} ms "
                              f"old (freshness.max_chunk_age {cfg.max_chunk_age * 1e3:.0f} ms)")
        if self._queue.empty:
            return self._stop(now_ns, "queue_empty", "no chunk to execute")
        target_ns = now_ns + self._period_ns
        if self._last is not None and self._last.stamp_ns >= self._queue.last_time_ns:
            return self._stop(now_ns, "queue_empty", "the queue ran dry (last step reached)")
        if self._last is None:
            # From a hold the robot stands still at the chunk's reference: run the chunk from
            # now, late by its age, so it moves at the planned speed instead of catching up.
            self._queue.times_ns += max(0, now_ns - int(self._queue.times_ns[0]))
        target_ns = min(target_ns, self._queue.last_time_ns)
        target = self._queue.sample(target_ns)
        previous = self._last.target if self._last is not None else self._queue.targets[0]
        previous_ns = self._last.stamp_ns if self._last is not None else now_ns
        dt = max(target_ns - previous_ns, 1) / 1e9  # a late tick covers a longer interval
        motion = difference(previous, target, cfg.action_space)
        verdict = self.guard.check(self._one_step(previous, motion, dt),
                                   self._guard_state(previous), None)
        for key, count in verdict.violations.items():
            self.stats.guard_violations[key] = self.stats.guard_violations.get(key, 0) + count
        if verdict.chunk is None:
            self.stats.guard_refusals += 1
            return self._stop(now_ns, "guard", verdict.message, barrier=True)
        if verdict.clamped:
            motion = np.asarray(verdict.chunk.actions[0, :6], np.float64)
            target = advance(previous, motion, cfg.action_space)
            self.stats.clamped += 1
        setpoint = Setpoint(target_ns, target, motion / dt, verdict.clamped)
        self._due_now = previous
        self._last = setpoint
        self._hold = target
        self.stats.setpoints += 1
        return TickResult(setpoint, "ok", "")

    def _one_step(self, previous: np.ndarray, motion: np.ndarray, dt: float) -> Chunk:
        """The move ``motion`` from ``previous`` in ``dt`` s as a one-step chunk, for the
        output guard (its per-second limits times ``dt`` bound the step)."""
        actions = np.zeros((1, 7), dtype=np.float64)
        actions[0, :6] = motion
        return Chunk(0, dt, np.asarray(previous, np.float64), actions)

    def _guard_state(self, previous: np.ndarray) -> np.ndarray:
        """13-d state for the guard: the previous setpoint where it is defined, else measured."""
        state = self._state.copy()
        if self.config.action_space == "joint_delta":
            state[:6] = previous
        else:
            state[6:9] = previous[:3]
            state[9:13] = matrix_to_quaternion(rotvec_to_matrix(previous[3:6]))
        return state

    def _stop(self, now_ns: int, category: str, reason: str, barrier: bool = False
              ) -> TickResult:
        """Hold: drop the queue and the blending history; optionally refuse older chunks."""
        stopped_now = self._last is not None
        self._last = None
        self._queue.clear()
        if stopped_now or barrier:
            self.blender.reset()
        if barrier:
            self._barrier_ns = now_ns if self._barrier_ns is None else max(self._barrier_ns,
                                                                            now_ns)
        hold = self._hold if stopped_now else None
        if hold is None and self._state is not None:  # not executing: where the robot is
            hold = reference_components(self._state, self.config.action_space)
        return TickResult(None, category, reason, hold, stopped_now)
