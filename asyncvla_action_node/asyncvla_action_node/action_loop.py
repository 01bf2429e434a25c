"""The action node's whole behaviour, without ROS: inputs in, a tick's outcome and reports out.

Why a separate object: the joint_trajectory_controller split. Every decision (what an input is
worth, whether a tick may act, what the enable and e-stop messages do, what /diagnostics says) is
here and unit-testable; action_node.py only turns ROS messages into calls and outcomes into
messages. The node gives the loop three callbacks for what only ROS can do: `log(level, text)`,
`hold()` (publish the stop-and-hold trajectory) and `report_now(status, level)` (publish a
/diagnostics status, and for "safety" the SafetyStatus, at once).

Fail closed: a tick acts only when the node is enabled and not e-stopped, every input watchdog is
fed, every input is fresh and valid (ActionCore) and the output guard accepts the chunk.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from asyncvla_action_node.action_config import ActionNodeConfig
from asyncvla_action_node.action_core import (ActionCore, ActionCoreConfig, InferenceInputs,
                                              PolicyRun, TickOutcome)
from asyncvla_action_node.refusals import Refusal
from asyncvla_action_node.rejection_tracker import RejectionSet
from asyncvla_action_node.sensor_window import SensorWindow
from asyncvla_action_node.tick_timing import Tick
from asyncvla_action_node.vl_store import VLFeatureStore
from asyncvla_common.guard import run_all
from asyncvla_common.operator_inputs import OperatorInputs
from asyncvla_common.publisher_lock import PublisherLock
from asyncvla_common.report import ERROR, OK, WARN, Report
from asyncvla_common.robot_state_input import RobotStateInput
from asyncvla_common.safety import SafetyGate, SafetyState, hold_required
from asyncvla_common.safety_ros import WATCHDOG_NAMES, make_watchdogs, worse
from asyncvla_common.safety_status import safety_report
from asyncvla_common.stats import Counters, RateMeter, RollingStats
from asyncvla_core.chunk_blending import ChunkBlender
from asyncvla_core.conventions import ACTION_SPACES, sensor_batch_reason
from asyncvla_core.input_checks import (oversize_reason, sensor_batch_size_reason,
                                        vl_message_budget)
from asyncvla_core.output_guard import OutputGuard
from asyncvla_core.vl_contract import CheckpointVL, VLSeen
from asyncvla_core.vl_payload import decode_features

Log = Callable[[str, str], None]  # (level: "info" | "warning" | "error", text)


@dataclass(frozen=True)
class PolicyShape:
    """What the loop needs to know about the policy checkpoint."""

    vl_num_tokens: int
    vl_dim: int
    sensor_window: int
    aline_length: int
    horizon: int
    action_dim: int
    action_space: str
    step_period: float
    vl_model_id: str
    vl_contract: Any = None  # vl_contract.CheckpointVL: names the setting a refused VLM differs in

    @classmethod
    def from_checkpoint(cls, config, metadata: dict[str, Any], path: str,
                        expected_model_id: str = "") -> "PolicyShape":
        """From a checkpoint's PolicyConfig and metadata (read_checkpoint_config)."""
        contract = None if expected_model_id else CheckpointVL.from_metadata(metadata, path)
        return cls(config.vl_num_tokens, config.vl_dim, config.sensor.window,
                   config.sensor.in_channels - 1, config.horizon, config.action_dim,
                   str(metadata.get("action_space", "ee_delta")),
                   float(metadata.get("step_period", 0.1)),
                   str(metadata.get("vl_model_id", "")), contract)


class ActionLoop:
    """Inputs, the tick, the safety gate and the reports of one action node."""

    def __init__(self, cfg: ActionNodeConfig, shape: PolicyShape, predict, log: Log,
                 hold: Callable[[], None], report_now: Callable[[str, int], None]) -> None:
        if shape.action_space not in ACTION_SPACES:
            raise ValueError(f"checkpoint action_space {shape.action_space!r} is unknown")
        self.cfg = cfg
        self.shape = shape
        self.dim_names = list(ACTION_SPACES[shape.action_space])[:shape.action_dim]
        self.expected_model = cfg.vl.expected_model_id or shape.vl_model_id
        fresh = cfg.freshness
        max_future = fresh.max_future_stamp
        self.vl_store = VLFeatureStore(shape.vl_num_tokens, shape.vl_dim, self.expected_model,
                                       max_future, shape.vl_contract)
        self.sensor = SensorWindow(shape.sensor_window, shape.aline_length,
                                   max_gap=fresh.sensor_max_gap, max_future=max_future)
        self.robot_input = RobotStateInput(tuple(cfg.joint_names), max_future,
                                           fresh.robot_state_max_age)
        self.vl_budget = vl_message_budget(shape.vl_num_tokens, shape.vl_dim)
        self.refusals = RejectionSet(WATCHDOG_NAMES)
        blender = ChunkBlender(cfg.blending.mode, cfg.blending.old_weight,
                               cfg.blending.ensemble_decay, history=shape.horizon)
        core_cfg = ActionCoreConfig(
            max_vl_age=fresh.max_vl_age, sensor_max_age=fresh.sensor_max_age,
            robot_state_max_age=fresh.robot_state_max_age, future_tolerance=max_future,
            step_period=shape.step_period, action_space=shape.action_space,
            horizon=shape.horizon, action_dim=shape.action_dim,
            max_inference_age=fresh.max_inference_age)
        self.guard = OutputGuard(cfg.guard.limits(), shape.action_space)
        self.core = ActionCore(predict, self.vl_store, self.sensor, core_cfg, blender, self.guard)
        self.gate = SafetyGate(cfg.safety.enabled_at_start, cfg.safety.estop_timeout,
                               now=time.monotonic())
        self.watchdogs = make_watchdogs(dict(zip(WATCHDOG_NAMES, (
            cfg.watchdog.vl_timeout, cfg.watchdog.sensor_timeout,
            fresh.robot_state_max_age, fresh.robot_state_max_age))))
        self.locks = {"vl_features": PublisherLock(cfg.topics.vl_features, True,
                                                   cfg.vl.publisher)}
        self.operator = OperatorInputs({"enable": cfg.topics.enable, "estop": cfg.topics.estop})
        self.counters = Counters()
        self.chunk_rate = RateMeter()
        self.inference_stats = RollingStats()
        self.vl_age_stats = RollingStats()
        self.tick_late_stats = RollingStats()  # s from a tick's deadline to its wake-up
        self._skipped_reported = 0  # ticks_skipped when output_report last looked
        self.tick_note: Callable[[], str] = lambda: "not started"  # who ticks, at what priority
        self.last_outcome: TickOutcome | None = None
        self.sequence = 0
        self._log, self._hold, self._report_now = log, hold, report_now
        self._log_period = cfg.reporting.log_period
        self._throttle: dict[str, float] = {}
        self._last_tick_ns: int | None = None
        self._gate_state = self.gate.state  # the state the last gate report was made for

    # --- logging ------------------------------------------------------------------------------
    def log_throttled(self, key: str, level: str, text: str, period: float | None = None) -> None:
        """At most one line per `key` every `period` s (default: reporting.log_period)."""
        period = self._log_period if period is None else period
        now = time.monotonic()
        if now - self._throttle.get(key, -1e9) >= period:
            self._throttle[key] = now
            self._log(level, text)

    # --- inputs -------------------------------------------------------------------------------
    def vl_arrival(self, size: int, graph: dict[str, Any], source_ns: int | None,
                   sequence: int | None) -> bool:
        """Before deserializing: is the VL message from the locked publisher and in budget?"""
        verdict = self.locks["vl_features"].check(**graph, source_ns=source_ns,
                                                  sequence=sequence)  # always: it keeps state
        # Size first: it is a fact of the message itself, named the same whatever the graph says.
        reason = oversize_reason(size, self.vl_budget, "VL features message")
        if reason:
            self.counters.inc("vl_oversize")
        elif not verdict.allowed:
            reason = verdict.message
            self.counters.inc("vl_publisher_refused")
        return self.input_result("vl_features", reason) if reason else True

    def vl_features(self, data, num_tokens: int, feature_dim: int, dtype: str, sequence: int,
                    stamp_ns: int, model_id: str, now_ns: int, adapter_id: str = "",
                    feature_layer: int = -1, prompt: str = "") -> bool:
        try:
            features = decode_features(data, num_tokens, feature_dim, dtype)
            reason = self.vl_store.update(
                features, sequence, stamp_ns, model_id, now_ns,
                VLSeen(model_id, adapter_id, num_tokens, feature_layer, prompt))
        except ValueError as exc:
            self.counters.inc("vl_rejected_payload")
            reason = self.vl_store.last_reject_reason = str(exc)
        return self.input_result("vl_features", reason)

    def sensor_batch(self, n: int, stamps_ns: list[int], force, alines, aline_length: int,
                     now_ns: int) -> bool:
        reason = sensor_batch_size_reason(n, self.sensor.capacity) or sensor_batch_reason(
            n, len(stamps_ns), len(force), len(alines), aline_length, self.sensor.aline_length)
        if not reason:
            self.sensor.add_batch(np.asarray(stamps_ns, dtype=np.int64), np.asarray(force),
                                  np.asarray(alines), now_ns)
            # NaN/inf, out-of-order, duplicate or future samples: the window now has a hole
            reason = "empty batch" if n == 0 else self.sensor.describe_last_drops()
        return self.input_result("sensor", reason)

    def joints(self, names, positions, stamp_ns: int, now_ns: int) -> bool:
        reason = self.robot_input.joints(names, positions, stamp_ns, now_ns)
        if not self.input_result("joint_states", reason):
            self.core.clear_robot_state()  # fail closed: never act on the state before a bad one
            return False
        return True

    def pose(self, position, quaternion_xyzw, stamp_ns: int, now_ns: int) -> bool:
        update = self.robot_input.pose(position, quaternion_xyzw, stamp_ns, now_ns)
        if update.reason:
            self.input_result("ee_pose", update.reason)
            self.core.clear_robot_state()
            return False
        if update.state is not None and self.input_result("ee_pose", ""):
            self.core.set_robot_state(update.state, update.stamp_ns)
        return True

    def input_result(self, name: str, reason: str) -> bool:
        """Count and report a refusal (True when accepted: the input's watchdog is fed)."""
        now = time.monotonic()
        if reason:
            self.counters.inc(f"refused_{name}")
            self.refusals[name].refused(now, reason)
            self.log_throttled(f"refused_{name}", "warning", f"{name} refused: {reason}", 2.0)
            return False
        self.refusals[name].accepted(now)
        outage = self.watchdogs.feed(name, now)
        if outage is not None:
            self._log("info", f"input {name} is back after {outage * 1e3:.0f} ms")
        return True

    # --- the tick -----------------------------------------------------------------------------
    def tick(self, now_ns: int, retimed: bool = False) -> TickOutcome:
        """One action tick. The node always ticks `retimed`: the newest finished inference,
        re-timed to `now_ns` (the expert runs on the runner's thread). Without `retimed` the
        expert runs here, inline: the synchronous path of the unit tests and the closed-loop
        simulation, which step time themselves (no node ticks this way)."""
        if self._last_tick_ns is not None and now_ns < self._last_tick_ns:
            # Time went backwards (bag loop, sim reset): nothing buffered is trustworthy.
            self.counters.inc("clock_jump_backwards")
            self.sensor.clear()
            self.core.clear_robot_state()
            self.core.refuse("clock jumped backwards", Refusal.SENSOR)
            self._log("warning", "clock jumped backwards: buffers cleared")
        self._last_tick_ns = now_ns
        outcome = self._decide(now_ns, self.core.publish_latest if retimed else self.core.tick)
        self.last_outcome = outcome
        if self.gate.state != self._gate_state:  # e.g. the e-stop heartbeat was lost
            self._gate_input("heartbeat", lambda: None)
        if outcome.guard is not None:
            for reason, count in outcome.guard.violations.items():
                self.counters.inc(f"guard_{reason}", count)
            if outcome.guard.clamped:
                self.counters.inc("guard_clamped_chunks")
        if outcome.chunk is None:
            self.counters.inc(f"withheld_{outcome.category.value}")
            if outcome.category.level >= ERROR:
                self._report_now("action output", ERROR)
            self.log_throttled("tick", "warning", f"no action: {outcome.reason}")
            return outcome
        self.sequence += 1
        vl, prov = outcome.vl, outcome.provenance
        self.counters.inc("chunks_published")
        if prov.reuse_count:
            self.counters.inc("chunks_republished")
        self.chunk_rate.tick(time.monotonic())
        if not retimed:
            self._inference_finished(outcome)
        self.log_throttled(
            "tick", "info",
            f"[ACTION #{self.sequence}] inference #{prov.inference_sequence} reuse "
            f"{prov.reuse_count} | VL #{vl.sequence} age {vl.age * 1e3:.0f} ms reuse "
            f"{vl.reuse_count} | a[0]={np.array2string(outcome.chunk.actions[0][:3], precision=4)}"
            f" | {outcome.inference_time * 1e3:.1f} ms | sensor {self.sensor.fill}")
        return outcome

    def _inference_finished(self, outcome: TickOutcome) -> None:
        self.counters.inc("inferences")
        self.inference_stats.add(outcome.inference_time)
        self.vl_age_stats.add(outcome.vl.age)

    # --- the timing-thread design: inference apart from the tick --------------------------------
    def inference_inputs(self, now_ns: int) -> InferenceInputs | None:
        """The inputs for an expert run at `now_ns`, or None when the gate, a watchdog or an
        input says no (the refusal is what the next tick reports)."""
        inputs = self._decide(now_ns, self.core.gather)
        return inputs if isinstance(inputs, InferenceInputs) else None

    def inference_done(self, inputs: InferenceInputs, run: PolicyRun) -> TickOutcome | None:
        """A worker's finished run: becomes the newest inference, or is refused or discarded."""
        outcome = self.core.accept(inputs, run)
        if outcome is None:
            self.counters.inc("inferences_discarded")  # a refusal came while it ran
        elif outcome.chunk is None:
            self.counters.inc(f"inference_refused_{outcome.category.value}")
            self.log_throttled("inference", "warning", f"inference refused: {outcome.reason}")
        else:
            self._inference_finished(outcome)
        return outcome

    def tick_timing(self, tick: Tick) -> None:
        """Record a tick's wake-up lateness and the deadlines it skipped (overruns)."""
        self.tick_late_stats.add(tick.late_ns / 1e9)
        if tick.skipped:
            self.counters.inc("ticks_skipped", tick.skipped)

    def _decide(self, now_ns: int, act):
        """Gate and watchdogs first (the policy does not even run when they say no), then `act`
        (the core's tick, publish_latest or gather)."""
        now = time.monotonic()
        silent = self.watchdogs.check(now)
        if silent:
            return self.core.refuse("input silent: " + self.watchdogs.describe(
                silent, now, self.refusals.notes(now)), Refusal.WATCHDOG,
                self.vl_store.snapshot(now_ns))
        allowed, why = self.gate.allows_output(now)
        if not allowed:
            category = Refusal.ESTOP if self.gate.state == SafetyState.ESTOP else Refusal.DISABLED
            return self.core.refuse(why, category, self.vl_store.snapshot(now_ns))
        return act(now_ns)

    def plot_values(self) -> dict[str, float]:
        """The numbers for rqt_plot after a tick."""
        outcome = self.last_outcome
        values = {"sensor_fill": float(self.sensor.fill),
                  "chunk_rate_hz": self.chunk_rate.rate(time.monotonic())}
        if outcome is not None and outcome.vl is not None:
            values["vl_age"] = outcome.vl.age
            values["vl_reuse_count"] = float(outcome.vl.reuse_count)
        if outcome is not None and outcome.chunk is not None:
            values["inference_time_ms"] = outcome.inference_time * 1e3
        return values

    # --- enable, e-stop and the operator's re-lock ---------------------------------------------
    def control(self, name: str, data: bool, graph: dict[str, Any]) -> None:
        """An enable or e-stop message. One that lets output resume is obeyed only while a single
        node publishes the topic; a stop is always obeyed."""
        verdict = self.operator.admit(name, data, graph)
        if not verdict.allowed:
            self.counters.inc(f"refused_{name}")
            self.log_throttled(f"refused_{name}", "error",
                               f"{name} refused: {verdict.message}", 2.0)
            self._report_now("safety", ERROR)
            return
        now = time.monotonic()
        if name == "enable":
            self._gate_input(name, lambda: self.gate.on_enable(bool(data), now))
        else:
            self._gate_input(name, lambda: self.gate.on_estop(bool(data), now),
                             estop_pressed=bool(data))

    def relock_vl(self, node: str) -> None:
        self.locks["vl_features"].pin(node)
        self._log("warning", f"VL publisher lock set to {node!r}")

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
        self.counters.inc(f"callback_errors_{step}")
        self._log("error", f"{step} callback failed: {type(exc).__name__}: {exc}")

    def _hold_if(self, before: SafetyState, estop_pressed: bool) -> None:
        if hold_required(before, self.gate.state, estop_pressed):
            self._hold()

    def _after_gate_change(self, before: SafetyState) -> None:
        state = self._gate_state = self.gate.state
        if state == before:
            return
        text = f"safety state {before.name} -> {state.name}: {self.gate.last_change_reason}"
        self._log("error" if state == SafetyState.ESTOP else "warning", text)
        if state != SafetyState.ENABLED:
            self.core.refuse(self.gate.last_change_reason,
                             Refusal.ESTOP if state == SafetyState.ESTOP else Refusal.DISABLED)
        self._report_now("safety", ERROR if state == SafetyState.ESTOP else WARN)

    # --- status and diagnostics -----------------------------------------------------------------
    def status(self) -> tuple[bool, str, int, int]:
        """(output allowed, why not, chunks published, ticks withheld) for SafetyStatus."""
        outcome = self.last_outcome
        allowed = outcome is not None and outcome.chunk is not None
        counts = self.counters.snapshot()
        withheld = sum(v for k, v in counts.items() if k.startswith("withheld_"))
        reason = "" if allowed else (outcome.reason if outcome else "no tick yet")
        return allowed, reason, counts.get("chunks_published", 0), withheld

    def status_key(self) -> tuple:
        outcome = self.last_outcome
        return (self.gate.state, outcome is not None and outcome.chunk is not None,
                outcome.category if outcome is not None else "no tick")

    def output_report(self) -> Report:
        counts = self.counters.snapshot()
        withheld = {k: v for k, v in counts.items() if k.startswith("withheld_")}
        values = {"chunks_published": counts.get("chunks_published", 0),
                  "chunk_rate_hz": self.chunk_rate.rate(time.monotonic()),
                  "inference_ms_p50": self.inference_stats.percentile(50) * 1e3,
                  "inference_ms_p99": self.inference_stats.percentile(99) * 1e3,
                  "inferences": counts.get("inferences", 0),
                  "inferences_discarded": counts.get("inferences_discarded", 0),
                  "chunks_republished": counts.get("chunks_republished", 0),
                  "ticks_skipped": counts.get("ticks_skipped", 0),
                  "tick_late_ms_p99": self.tick_late_stats.percentile(99) * 1e3,
                  "tick_thread": self.tick_note(), **withheld}
        outcome = self.last_outcome
        if outcome is None:
            return Report(WARN, "no tick yet", values)
        skipped = values["ticks_skipped"] - self._skipped_reported
        self._skipped_reported = values["ticks_skipped"]
        if outcome.chunk is not None and skipped:
            return Report(WARN, f"{skipped} action ticks skipped since the last report (a tick "
                                f"or the expert overran the period)", values)
        if outcome.chunk is not None:
            return Report(OK, "publishing action chunks", values)
        return Report(max(outcome.category.level, WARN), f"no action: {outcome.reason}", values)

    def vl_report(self, now_ns: int, graph: dict[str, Any]) -> Report:
        """The VL features judged by the tick's own rule (ActionCore.vl_verdict: missing, stale or
        future), plus repeated refusals and the publisher lock."""
        snap, verdict, why = self.core.vl_verdict(now_ns)
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
        if verdict is not Refusal.OK:
            report = Report(verdict.level, why, values)
        else:
            report = Report(OK, f"VL #{snap.sequence}, {snap.age * 1e3:.0f} ms old", values)
        lock = self.locks["vl_features"].evaluate(**graph)
        return worse(worse(report, refusing), lock)

    def safety_report(self, graphs: dict[str, dict[str, Any]]) -> Report:
        counts = self.counters.snapshot()
        guard = {k: v for k, v in counts.items() if k.startswith("guard_")}
        now = time.monotonic()
        report = safety_report(self.gate, self.watchdogs, now,
                               {"guard_mode": self.guard.limits.mode, **guard},
                               self.refusals.notes(now))
        return self.operator.report(report, graphs)

    def inputs_report(self) -> Report:
        counts = self.counters.snapshot()
        values = {"sensor_fill": self.sensor.fill, **{f"sensor_dropped_{k}": v for k, v in
                                                        self.sensor.dropped.items()},
                  **{k: v for k, v in counts.items()
                     if not k.startswith(("withheld_", "chunks", "guard_"))}}
        level = WARN if self.sensor.fill < self.sensor.window_size else OK
        report = Report(level, f"sensor {self.sensor.fill}/{self.sensor.window_size}", values)
        return worse(report, self.refusals.worst(time.monotonic(),
                                                 ("sensor", "joint_states", "ee_pose")))
