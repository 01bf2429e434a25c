"""Output guard, enable/e-stop gate and input watchdogs, without ROS."""
from __future__ import annotations

import numpy as np
import pytest

from asyncvla_common.safety import SafetyGate, SafetyState, WatchdogSet
from asyncvla_core.chunk import Chunk
from asyncvla_core.conventions import reference_components
from asyncvla_core.output_guard import GuardLimits, OutputGuard, rotation_angle
from asyncvla_core.rotations import matrix_to_rotvec, rotvec_to_matrix

DT = 0.1
H = 8


def state(joints=(0.0,) * 6, pos=(0.4, 0.0, 0.3), quat=(0.0, 0.0, 0.0, 1.0)) -> np.ndarray:
    return np.array([*joints, *pos, *quat], dtype=np.float32)


def chunk_for(s: np.ndarray, space: str, offsets: np.ndarray, stamp_ns: int = 0) -> Chunk:
    actions = np.zeros((H, 7), dtype=np.float32)
    actions[:, :offsets.shape[1]] = offsets
    actions[:, 6] = 1.0
    return Chunk(stamp_ns, DT, reference_components(s, space), actions)


def ramp(per_step: np.ndarray) -> np.ndarray:
    """Offsets growing by `per_step` each step (a constant velocity)."""
    return np.outer(np.arange(1, H + 1), per_step)


LIMITS = GuardLimits(max_joint_step=0.05, max_joint_velocity=0.4, max_linear_step=0.01,
                     max_linear_velocity=0.05, max_angular_step=0.05, max_angular_velocity=0.3,
                     joint_min=(-1.0,) * 6, joint_max=(1.0,) * 6,
                     workspace_min=(0.0, -0.5, 0.0), workspace_max=(0.8, 0.5, 0.6),
                     max_jump_joint=0.02, max_jump_linear=0.004, max_jump_angular=0.02)


def guard(space: str, mode: str = "withhold") -> OutputGuard:
    fields = {k: getattr(LIMITS, k) for k in LIMITS.__dataclass_fields__}
    return OutputGuard(GuardLimits(**{**fields, "mode": mode}), space)


# --- joint space -----------------------------------------------------------------------------
def test_chunk_within_limits_passes_unchanged():
    s = state()
    c = chunk_for(s, "joint_delta", ramp(np.full(6, 0.03)))  # 0.3 rad/s < 0.4, 0.03 < 0.04
    result = guard("joint_delta").check(c, s, None)
    assert result.chunk is c and not result.violations and result.message == ""


def test_joint_velocity_limit_is_the_tighter_one_per_step():
    s = state()
    # 0.045 rad per step is under max_joint_step (0.05) but 0.45 rad/s is over 0.4 rad/s.
    result = guard("joint_delta").check(chunk_for(s, "joint_delta", ramp(np.full(6, 0.045))),
                                        s, None)
    assert result.withheld
    assert result.violations == {"joint_velocity": 48}
    assert "withheld" in result.message


def test_joint_limit_withheld_or_clamped():
    s = state(joints=(0.95, 0, 0, 0, 0, 0))
    offsets = ramp(np.array([0.03, 0, 0, 0, 0, 0]))  # reaches 1.19 rad, limit 1.0
    c = chunk_for(s, "joint_delta", offsets)
    withheld = guard("joint_delta").check(c, s, None)
    assert withheld.withheld and withheld.violations["joint_limit"] == 7
    clamped = guard("joint_delta", "clamp").check(c, s, None)
    assert clamped.clamped and clamped.violations["joint_limit"] == 7
    targets = clamped.chunk.reference[0] + clamped.chunk.actions[:, 0]
    assert targets.max() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(targets[:1], [0.98], atol=1e-6)  # untouched below the limit
    assert np.all(clamped.chunk.actions[:, 6] == 1.0)  # tool unchanged


def test_joint_steps_clamped_from_the_current_state():
    s = state()
    offsets = np.zeros((H, 6))
    offsets[:, 2] = 0.3  # a 0.3 rad step at once
    clamped = guard("joint_delta", "clamp").check(chunk_for(s, "joint_delta", offsets), s, None)
    assert clamped.clamped
    targets = clamped.chunk.actions[:, 2]
    np.testing.assert_allclose(np.diff(np.concatenate([[0.0], targets])),
                               [0.04] * 7 + [0.02], atol=1e-6)  # 0.4 rad/s * 0.1 s per step


def test_robot_outside_workspace_is_withheld_even_in_clamp_mode():
    s = state(pos=(0.9, 0.0, 0.3))  # x beyond 0.8
    c = chunk_for(s, "joint_delta", ramp(np.full(6, 0.01)))
    result = guard("joint_delta", "clamp").check(c, s, None)
    assert result.withheld and "still violated" in result.message
    assert result.violations == {"workspace": 1}


def test_non_finite_chunk_is_withheld():
    s = state()
    c = chunk_for(s, "joint_delta", ramp(np.full(6, 0.01)))
    c.actions[3, 1] = np.nan
    result = guard("joint_delta", "clamp").check(c, s, None)
    assert result.withheld and result.violations == {"non_finite": 1}


# --- Cartesian space -------------------------------------------------------------------------
def test_ee_workspace_box_clamps_targets_into_the_box():
    s = state(pos=(0.78, 0.0, 0.3))
    c = chunk_for(s, "ee_delta", ramp(np.array([0.004, 0, 0])))  # to x = 0.812
    result = guard("ee_delta", "clamp").check(c, s, None)
    assert result.violations["workspace"] == 3
    x = result.chunk.reference[0] + result.chunk.actions[:, 0]
    assert x.max() <= 0.8 + 1e-6 and x[:5].tolist() == pytest.approx(0.78 + 0.004 * np.arange(1, 6))


def test_ee_linear_speed_limit():
    s = state()
    c = chunk_for(s, "ee_delta", ramp(np.array([0.004, 0.004, 0.0])))  # 0.0057 m/step
    assert guard("ee_delta").check(c, s, None).violations == {"linear_velocity": 8}
    clamped = guard("ee_delta", "clamp").check(c, s, None).chunk
    steps = np.linalg.norm(np.diff(np.vstack([np.zeros(3), clamped.actions[:, :3]]), axis=0),
                           axis=1)
    np.testing.assert_allclose(steps, 0.005, atol=1e-7)
    # Direction is kept: x == y.
    np.testing.assert_allclose(clamped.actions[:, 0], clamped.actions[:, 1], atol=1e-7)


def test_ee_rotation_steps_are_limited_by_angle():
    quat = np.array([0.0, 0.0, np.sin(0.2), np.cos(0.2)])  # 0.4 rad about z
    s = state(quat=quat)
    offsets = np.zeros((H, 6))
    offsets[:, 3] = 0.2  # 0.2 rad about x at once, then held
    result = guard("ee_delta", "clamp").check(chunk_for(s, "ee_delta", offsets), s, None)
    assert result.violations["angular_step"] == 1 and result.violations["angular_velocity"] == 1
    ref_rot = rotvec_to_matrix(result.chunk.reference[3:6])
    chain = [ref_rot] + [rotvec_to_matrix(a[3:6]) @ ref_rot for a in result.chunk.actions]
    angles = [rotation_angle(a, b) for a, b in zip(chain[:-1], chain[1:])]
    assert max(angles) <= 0.03 + 1e-6  # 0.3 rad/s * 0.1 s
    final = matrix_to_rotvec(chain[-1] @ ref_rot.T)
    np.testing.assert_allclose(final, [0.2, 0, 0], atol=1e-6)  # reached within the horizon


# --- chunk jumps -----------------------------------------------------------------------------
def test_jump_against_the_previous_chunk():
    s = state()
    previous = chunk_for(s, "ee_delta", ramp(np.array([0.003, 0, 0])), stamp_ns=0)
    # 0.1 s later the robot has moved by one step; the new chunk turns around (y instead of x).
    s2 = state(pos=(0.403, 0.0, 0.3))
    new = chunk_for(s2, "ee_delta", ramp(np.array([0.0, 0.003, 0])), stamp_ns=int(0.1e9))
    g = guard("ee_delta")
    assert g.check(new, s2, None).chunk is new  # no previous chunk: nothing to compare with
    result = g.check(new, s2, previous)
    assert result.withheld and set(result.violations) == {"jump_linear"}
    clamped = guard("ee_delta", "clamp").check(new, s2, previous)
    assert clamped.clamped
    again = guard("ee_delta").check(clamped.chunk, s2, previous)
    assert again.chunk is clamped.chunk  # the clamped chunk passes a fresh check
    # A previous chunk that no longer covers any step time is not compared.
    old = chunk_for(s, "ee_delta", ramp(np.array([0.003, 0, 0])), stamp_ns=-int(1e9))
    assert g.check(new, s2, old).chunk is new


def test_limits_are_validated():
    with pytest.raises(ValueError, match="mode"):
        GuardLimits(mode="ignore")
    with pytest.raises(ValueError, match="6 values"):
        GuardLimits(joint_min=(0.0,) * 5)
    with pytest.raises(ValueError, match="below"):
        GuardLimits(workspace_min=(0, 0, 1), workspace_max=(1, 1, 1))
    with pytest.raises(ValueError):
        OutputGuard(GuardLimits(), "absolute")


def test_disabled_limits_check_nothing():
    off = GuardLimits(max_joint_step=0, max_joint_velocity=0, max_jump_joint=0)
    s = state()
    c = chunk_for(s, "joint_delta", ramp(np.full(6, 0.5)))  # > pi from step 7
    assert OutputGuard(off, "joint_delta").check(c, s, None).violations == {"joint_limit": 6 * 2}


# --- enable / e-stop -------------------------------------------------------------------------
def test_gate_starts_disabled_and_enable_estop_rules():
    gate = SafetyGate(enabled_at_start=False)
    allowed, why = gate.allows_output(0.0)
    assert not allowed and "disabled" in why
    gate.on_enable(True, 1.0)
    assert gate.allows_output(1.0) == (True, "")
    gate.on_estop(True, 2.0)
    assert gate.state == SafetyState.ESTOP and not gate.allows_output(2.0)[0]
    gate.on_enable(True, 2.5)  # refused while the e-stop is held
    assert gate.state == SafetyState.ESTOP and gate.refused_enables == 1
    gate.on_estop(False, 3.0)  # released: back to DISABLED, not ENABLED
    assert gate.state == SafetyState.DISABLED
    assert "enable again" in gate.allows_output(3.0)[1]
    gate.on_enable(True, 3.5)
    assert gate.allows_output(3.5)[0]
    gate.on_enable(False, 4.0)
    assert gate.state == SafetyState.DISABLED


def test_gate_disable_needs_a_fresh_enable_and_leaves_estop_alone():
    gate = SafetyGate(enabled_at_start=True)
    assert gate.disable("the robot went away") and gate.state == SafetyState.DISABLED
    assert gate.last_change_reason == "the robot went away"
    assert not gate.allows_output(0.0)[0]
    assert not gate.disable("again")  # already disabled: nothing changes
    gate.on_enable(True, 0.1)
    assert gate.allows_output(0.1)[0]
    gate.on_estop(True, 0.2)
    assert not gate.disable("robot") and gate.state == SafetyState.ESTOP


def test_gate_enabled_at_start_and_estop_heartbeat():
    gate = SafetyGate(enabled_at_start=True, estop_timeout=0.5, now=0.0)
    assert gate.allows_output(0.4)[0]
    gate.on_estop(False, 0.45)  # heartbeat
    assert gate.allows_output(0.9)[0]
    allowed, why = gate.allows_output(1.0)  # 0.55 s without an e-stop message
    assert not allowed and "heartbeat lost" in why
    gate.on_estop(False, 1.1)
    assert gate.state == SafetyState.DISABLED  # a lost heartbeat latches like a pressed e-stop
    gate.on_enable(True, 1.2)
    assert gate.allows_output(1.2)[0]


# --- watchdogs -------------------------------------------------------------------------------
def test_watchdogs_trip_and_recover_with_outage_length():
    dogs = WatchdogSet()
    dogs.add("sensor", 0.1)
    dogs.add("vl", 1.0)
    dogs.add("off", 0.0)
    assert set(dogs.check(0.0)) == {"sensor", "vl"}  # never heard from
    dogs.feed("sensor", 0.0)
    dogs.feed("vl", 0.0)
    assert dogs.check(0.05) == []
    assert dogs.check(0.2) == ["sensor"]
    assert "sensor silent for 200 ms" in dogs.describe(["sensor"], 0.2)
    dogs.check(0.3)  # still tripped: counted once
    assert dogs.feed("sensor", 0.45) == pytest.approx(0.45)
    snap = {d.name: d for d in dogs.snapshot(0.5)}
    assert snap["sensor"].trips == 1 and not snap["sensor"].tripped
    assert snap["sensor"].age(0.5) == pytest.approx(0.05)
    assert dogs.check(0.5) == []


# --- safety callbacks never throw --------------------------------------------------------------
def test_hold_required_on_every_press_and_on_leaving_enabled():
    from asyncvla_common.safety import hold_required

    D, E, S = SafetyState.DISABLED, SafetyState.ENABLED, SafetyState.ESTOP
    for before in (D, E, S):  # a press holds whatever the state was, already e-stopped included
        assert hold_required(before, S, estop_pressed=True)
    assert hold_required(E, D, estop_pressed=False)  # disabled
    assert hold_required(E, S, estop_pressed=False)  # heartbeat lost
    assert not hold_required(D, E, estop_pressed=False)
    assert not hold_required(S, D, estop_pressed=False)  # release: nothing was moving
    assert not hold_required(D, D, estop_pressed=False)


def test_run_all_runs_later_steps_after_a_failure_and_reports_it():
    from asyncvla_common.guard import run_all

    done, errors = [], []

    def boom():
        raise ValueError("Logger severity cannot be changed between calls.")

    def bad_report(name, exc):
        errors.append((name, str(exc)))
        raise RuntimeError("the report fails too")

    failed = run_all([("gate", lambda: done.append("gate")), ("log", boom),
                      ("hold", lambda: done.append("hold"))], bad_report)
    assert failed == ["log"] and done == ["gate", "hold"]
    assert errors == [("log", "Logger severity cannot be changed between calls.")]


def test_report_error_counts_even_when_the_rclpy_logger_raises():
    """The real rclpy logger raises when one call site changes severity; the report survives."""
    pytest.importorskip("rclpy")
    from rclpy.logging import get_logger

    from asyncvla_common.guard import guarded, report_error
    from asyncvla_common.stats import Counters

    logger = get_logger("asyncvla_test_guard")

    def one_site(error: bool) -> None:
        (logger.error if error else logger.warning)("state change")

    one_site(True)
    with pytest.raises(ValueError, match="severity cannot be changed"):
        one_site(False)  # the bug of issue 14: same call site, another severity

    class Node:
        def get_logger(self):
            class Broken:
                def error(self, *a, **k):
                    raise ValueError("Logger severity cannot be changed between calls.")
            return Broken()

    counters = Counters()
    report_error(Node(), counters, "estop", RuntimeError("x"))
    assert counters.get("callback_errors_estop") == 1
    wrapped = guarded(Node(), counters, "enable", lambda: one_site(False))
    assert wrapped() is None and counters.get("callback_errors_enable") == 1


def test_silent_input_names_the_refusal_and_future_vl_is_an_error():
    pytest.importorskip("diagnostic_msgs")
    from asyncvla_action_node.action_core import ActionCore, ActionCoreConfig
    from asyncvla_action_node.refusals import Refusal
    from asyncvla_action_node.rejection_tracker import RejectionTracker
    from asyncvla_common.safety_ros import worse
    from asyncvla_action_node.vl_store import VLSnapshot
    from asyncvla_common.report import Report

    class OneSnapshot:  # a VL store that holds one snapshot
        last_reject_reason = ""

        def __init__(self, snap):
            self.snap = snap

        def snapshot(self, now_ns):
            return self.snap

    def vl_report(snap):  # what the node's VL diagnostic says: the tick's own verdict
        core = ActionCore(None, OneSnapshot(snap), None,
                          ActionCoreConfig(max_vl_age=1.0, future_tolerance=0.2), None)
        _, verdict, why = core.vl_verdict(0)
        return Report(verdict.level, why or "ok"), verdict

    dogs = WatchdogSet()
    dogs.add("vl_features", 1.5)
    dogs.feed("vl_features", 0.0)
    text = dogs.describe(["vl_features"], 2.0, {"vl_features": "VL features stamped 3600 s in "
                                                               "the future"})
    assert text.startswith("vl_features silent for 2000 ms") and "arriving but refused: VL " \
        "features stamped 3600 s in the future" in text
    snap = VLSnapshot(np.zeros((1, 1), np.float32), 3, 0, "m", 0, -3528.685)
    report, verdict = vl_report(snap)
    assert verdict is Refusal.VL_FUTURE
    assert report.level == 2 and "3528685 ms in the future" in report.message
    ok, verdict = vl_report(VLSnapshot(np.zeros((1, 1), np.float32), 3, 0, "m", 0, 0.3))
    assert ok.level == 0 and verdict is Refusal.OK
    stale, verdict = vl_report(VLSnapshot(np.zeros((1, 1), np.float32), 3, 0, "m", 0, 1.3))
    assert stale.level == 2 and verdict is Refusal.VL_STALE
    tracker = RejectionTracker("vl_features")
    tracker.refused(0.0, "VL payload has 5 bytes")
    assert worse(ok, tracker.status(0.0)).level == 1
    assert "VL payload has 5 bytes" in worse(ok, tracker.status(0.0)).message
    both = worse(report, tracker.status(0.0))  # ERROR stays ERROR, and names the refusals
    assert both.level == 2 and both.message.startswith(report.message)
    assert "VL payload has 5 bytes" in both.message
