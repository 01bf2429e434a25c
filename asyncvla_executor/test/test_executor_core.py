"""The chunk executor's core without ROS: queue, interpolation, seams, stops, guard at its rate."""
from __future__ import annotations

import numpy as np
import pytest

from asyncvla_common.safety import SafetyGate, WatchdogSet
from asyncvla_core.chunk_blending import ChunkBlender, blending_modes
from asyncvla_core.conventions import ACTION_SPACES, reference_components
from asyncvla_core.output_guard import GuardLimits, OutputGuard
from asyncvla_core.rotations import matrix_to_quaternion, rotvec_to_matrix
from asyncvla_executor.executor_core import ExecutorConfig, ExecutorCore
from asyncvla_executor.setpoint_queue import SetpointQueue, difference, interpolate

MS = 1_000_000
PERIOD = 0.01
STEP = 0.1
H = 8
LIMITS = GuardLimits(max_linear_step=0.005, max_linear_velocity=0.05, max_angular_step=0.05,
                     max_angular_velocity=0.5, max_joint_step=0.05, max_joint_velocity=0.5,
                     workspace_min=(0.0, -0.5, 0.0), workspace_max=(0.8, 0.5, 0.6))


def state_of(target: np.ndarray, space: str = "ee_delta") -> np.ndarray:
    """13-d state of a robot standing exactly at ``target``."""
    if space == "joint_delta":
        return np.array([*target, 0.4, 0.0, 0.3, 0.0, 0.0, 0.0, 1.0])
    quat = matrix_to_quaternion(rotvec_to_matrix(target[3:6]))
    return np.array([0.0] * 6 + list(target[:3]) + list(quat))


def make(space="ee_delta", mode="latest_only", limits=LIMITS, enabled=True, dogs=None,
         max_chunk_age=0.3):
    cfg = ExecutorConfig(action_space=space, period=PERIOD, max_chunk_age=max_chunk_age)
    return ExecutorCore(cfg, OutputGuard(limits, space), ChunkBlender(mode, history=H),
                        SafetyGate(enabled_at_start=enabled), dogs or WatchdogSet())


def send(core, stamp_ns, reference, offsets, now_ns=None, space="ee_delta"):
    actions = np.zeros((H, 7), dtype=np.float32)
    actions[:, :6] = offsets
    actions[:, 6] = 1.0
    return core.on_chunk(stamp_ns, STEP, np.asarray(reference, float), actions, space,
                         list(ACTION_SPACES[space]), stamp_ns if now_ns is None else now_ns)


def ramp(velocity: np.ndarray) -> np.ndarray:
    """Offsets of a constant velocity (per second) at the chunk's step times."""
    return np.outer(np.arange(1, H + 1) * STEP, velocity)


START = np.array([0.4, 0.0, 0.3, 0.0, 0.0, 0.0])
V = np.array([0.02, -0.01, 0.0, 0.0, 0.0, 0.1])  # 2 cm/s, 1 cm/s, 0.1 rad/s about z


def test_queue_interpolates_positions_linearly_and_rotations_along_the_shortest_path():
    queue = SetpointQueue("ee_delta")
    a = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    b = np.array([0.1, 0.0, 0.0, 0.0, 0.0, 0.4])
    assert queue.replace(0, a, np.array([100 * MS]), b[None], 10 * MS) == 1
    mid = queue.sample(25 * MS)
    assert np.allclose(mid, [0.025, 0, 0, 0, 0, 0.1])
    assert np.allclose(queue.sample(500 * MS), b)  # never past the last target
    assert np.allclose(difference(a, interpolate(a, b, 0.5, "ee_delta"), "ee_delta")[3:],
                       [0, 0, 0.2])


def test_setpoints_follow_a_chunk_at_the_executor_rate_without_extrapolating():
    core = make(max_chunk_age=1.0)
    core.set_robot_state(state_of(START), 0)
    assert send(core, 0, START, ramp(V)) == ""
    out = []
    for k in range(100):
        now = k * 10 * MS
        core.set_robot_state(state_of(START), now)
        out.append(core.tick(now, k * PERIOD))
    moving = [r.setpoint for r in out if r.setpoint is not None]
    # targets at 10, 20, ... 800 ms: 80 setpoints, then the queue is dry
    assert len(moving) == 80
    assert moving[-1].stamp_ns == 800 * MS
    assert np.allclose(moving[-1].target[:3], START[:3] + 0.8 * V[:3], atol=1e-6)
    for sp in moving:
        t = sp.stamp_ns / 1e9
        assert np.allclose(sp.target[:3], START[:3] + t * V[:3], atol=1e-6)
        assert np.allclose(sp.velocity, V, atol=1e-4)
    assert all(r.setpoint is None and r.category == "queue_empty" for r in out[80:])
    assert out[80].stopped_now and not out[81].stopped_now
    assert np.allclose(out[80].hold_target, moving[-1].target)


def test_joint_space_chunks_are_interpolated_in_joints():
    core = make("joint_delta")
    q0 = np.array([0.1, -0.2, 0.3, 0.0, 0.5, 0.0])
    vq = np.array([0.2, 0.0, -0.1, 0.0, 0.0, 0.3])
    core.set_robot_state(state_of(q0, "joint_delta"), 0)
    assert send(core, 0, q0, ramp(vq), space="joint_delta") == ""
    for k in range(5):
        core.set_robot_state(state_of(q0, "joint_delta"), k * 10 * MS)
        result = core.tick(k * 10 * MS, k * PERIOD)
    assert np.allclose(result.setpoint.target, q0 + 0.05 * vq)
    assert np.allclose(result.setpoint.velocity, vq, atol=1e-6)


def _closed_loop(core, chunks=30, error=0.001, seed=0, disturb=None):
    """10 Hz chunks of a smooth motion, each off by a random offset of up to ``error`` m, and a
    robot that reaches every setpoint; returns the setpoints and the tick results."""
    rng = np.random.default_rng(seed)
    robot = START.copy()
    setpoints, results = [], []
    for k in range(chunks * 10):
        now = k * 10 * MS
        core.set_robot_state(state_of(robot), now)
        if k % 10 == 0:
            t0 = now / 1e9
            desired = START + t0 * V  # where the motion should be now
            reference = robot.copy()
            noise = np.zeros(6)
            noise[:3] = rng.uniform(-error, error, 3)
            offsets = (desired - reference)[None, :] + ramp(V) + noise
            offsets[:, 3:] = ramp(V)[:, 3:]
            assert send(core, now - 20 * MS, reference, offsets, now_ns=now) == ""
        if disturb is not None:
            disturb(core, k)
        result = core.tick(now, k * PERIOD)
        results.append(result)
        if result.setpoint is not None:
            setpoints.append(result.setpoint)
            robot = result.setpoint.target.copy()
    return setpoints, results


@pytest.mark.parametrize("mode", blending_modes())
def test_seams_between_chunks_stay_within_the_guard_step_limit(mode):
    core = make(mode=mode)
    setpoints, results = _closed_loop(core)
    assert core.stats.guard_refusals == 0, core.last_result
    assert len(setpoints) >= 290  # executing all along (chunks overlap, none is stale)
    limit = LIMITS.step_limit(LIMITS.max_linear_step, LIMITS.max_linear_velocity, PERIOD)
    steps = [np.linalg.norm(b.target[:3] - a.target[:3]) for a, b in zip(setpoints, setpoints[1:])]
    assert max(steps) <= limit + 1e-9
    # the seams really were corrections: some steps differ from the smooth 0.2 mm per tick
    assert max(steps) > np.linalg.norm(V[:3]) * PERIOD * 1.2


def test_a_stale_chunk_stops_the_robot_within_one_tick():
    core = make(max_chunk_age=0.25)
    core.set_robot_state(state_of(START), 0)
    assert send(core, 0, START, ramp(V)) == ""
    results = []
    for k in range(40):
        core.set_robot_state(state_of(START), k * 10 * MS)
        results.append(core.tick(k * 10 * MS, k * PERIOD))
    # ages 0..250 ms execute; 260 ms is past the bound although the queue reaches 800 ms
    assert all(r.setpoint is not None for r in results[:26])
    assert results[26].setpoint is None and results[26].category == "chunk_stale"
    assert results[26].stopped_now
    assert core.stats.held_s["chunk_stale"] == pytest.approx(14 * PERIOD)
    # an old chunk arriving late is dropped on arrival
    assert send(core, 0, START, ramp(V), now_ns=300 * MS) == "stale"


@pytest.mark.parametrize("how", ["estop", "disable"])
def test_estop_and_disable_hold_at_the_next_tick_and_old_chunks_never_run(how):
    core = make()

    def disturb(core, k):
        if k == 55:
            if how == "estop":
                core.gate.on_estop(True, k * PERIOD)
            else:
                core.gate.on_enable(False, k * PERIOD)

    setpoints, results = _closed_loop(core, chunks=6, disturb=disturb)
    assert all(r.setpoint is not None for r in results[1:55])
    assert all(r.setpoint is None and r.category == how.replace("disable", "disabled")
               for r in results[55:])
    assert results[55].stopped_now
    # re-enabled: a chunk stamped before the stop is refused, a new one runs from the
    # measured state
    if how == "estop":
        core.gate.on_estop(False, 0.7)
    core.gate.on_enable(True, 0.7)
    where = setpoints[-1].target + np.array([0.001, 0, 0, 0, 0, 0])  # moved by hand meanwhile
    core.set_robot_state(state_of(where), 700 * MS)
    assert send(core, 540 * MS, where, ramp(V), now_ns=700 * MS) == "before_stop"
    assert send(core, 690 * MS, where, ramp(V), now_ns=700 * MS) == ""
    first = core.tick(700 * MS, 0.7).setpoint
    assert np.linalg.norm(first.target[:3] - where[:3]) < 0.001  # from where it is, no jump back


def test_guard_refusal_stops_and_clamp_mode_limits_the_step():
    fast = np.array([0.2, 0.0, 0.0, 0.0, 0.0, 0.0])  # 20 cm/s > 5 cm/s
    core = make()
    core.set_robot_state(state_of(START), 0)
    assert send(core, 0, START, ramp(fast)) == ""
    result = core.tick(0, 0.0)
    assert result.setpoint is None and result.category == "guard"
    assert "linear_velocity" in result.reason
    assert core.stats.guard_refusals == 1
    assert core.tick(10 * MS, 0.01).category == "queue_empty"  # the queue was dropped
    assert send(core, 0, START, ramp(fast), now_ns=10 * MS) == "before_stop"

    clamp = make(limits=GuardLimits(**{**LIMITS.__dict__, "mode": "clamp"}))
    clamp.set_robot_state(state_of(START), 0)
    assert send(clamp, 0, START, ramp(fast)) == ""
    points = [clamp.tick(k * 10 * MS, k * PERIOD).setpoint for k in range(5)]
    assert all(p is not None and p.clamped for p in points)
    steps = np.linalg.norm(np.diff([START[:3]] + [p.target[:3] for p in points], axis=0), axis=1)
    assert np.allclose(steps, 0.05 * PERIOD, atol=1e-7)  # exactly the velocity limit


def test_workspace_box_refuses_a_setpoint_outside():
    core = make()
    edge = np.array([0.799, 0.0, 0.3, 0.0, 0.0, 0.0])
    core.set_robot_state(state_of(edge), 0)
    assert send(core, 0, edge, ramp(np.array([0.04, 0, 0, 0, 0, 0]))) == ""
    results = [core.tick(k * 10 * MS, k * PERIOD) for k in range(10)]
    assert results[0].setpoint is not None
    refused = [r for r in results if r.category == "guard"]
    assert refused and "workspace" in refused[0].reason


def test_robot_state_watchdog_and_age_stop_execution():
    dogs = WatchdogSet()
    dogs.add("joint_states", 0.05)
    core = make(dogs=dogs)
    dogs.feed("joint_states", 0.0)
    core.set_robot_state(state_of(START), 0)
    assert send(core, 0, START, ramp(V)) == ""
    assert core.tick(0, 0.0).setpoint is not None
    assert core.tick(10 * MS, 0.06).category == "watchdog"
    core2 = make()
    core2.set_robot_state(state_of(START), 0)
    assert send(core2, 0, START, ramp(V)) == ""
    assert core2.tick(150 * MS, 0.15).category == "robot_state_stale"


@pytest.mark.parametrize("change, why", [
    (dict(space="joint_delta"), "action_space"),
    (dict(stamp_ns=200 * MS), "future"),
    (dict(nan=True), "non_finite"),
    (dict(names=["a"] * 7), "dim_names"),
])
def test_bad_chunks_are_dropped_with_a_reason(change, why):
    core = make()
    core.set_robot_state(state_of(START), 0)
    actions = np.zeros((H, 7), dtype=np.float32)
    if change.get("nan"):
        actions[3, 1] = np.nan
    space = change.get("space", "ee_delta")
    assert core.on_chunk(change.get("stamp_ns", 0), STEP, START, actions, space,
                         change.get("names", list(ACTION_SPACES[space])), 0) == why
    assert core.stats.chunks_dropped == {why: 1}
    assert core.tick(0, 0.0).category == "queue_empty"


def test_out_of_order_chunk_is_dropped_and_reference_is_used():
    core = make()
    core.set_robot_state(state_of(START), 50 * MS)
    assert send(core, 50 * MS, START, ramp(V)) == ""
    assert send(core, 40 * MS, START, ramp(V), now_ns=50 * MS) == "out_of_order"
    assert reference_components(state_of(START), "ee_delta") == pytest.approx(START)


def test_robot_state_input_orders_joints_and_takes_the_older_stamp():
    """The executor reads the robot state as the action node does (robot_state_input)."""
    from asyncvla_common.robot_state_input import RobotStateInput

    names = tuple(f"joint_{i}" for i in range(1, 7))
    robot = RobotStateInput(names, max_future=0.2, continuity_gap=1.0)
    assert robot.pose([0.4, 0, 0.3], [0, 0, 0, 1], 5, 5).state is None  # no joints yet
    assert robot.joints(list(reversed(names)) + ["gripper"], [6, 5, 4, 3, 2, 1, 9], 100, 100) == ""
    update = robot.pose([0.4, 0, 0.3], [0, 0, 0, 2.0], 90, 100)
    assert list(update.state[:6]) == [1, 2, 3, 4, 5, 6] and update.stamp_ns == 90
    assert abs(float(np.linalg.norm(update.state[9:])) - 1.0) < 1e-9  # quaternion normalised
    assert robot.joints(list(names[:5]), [0.0] * 5, 110, 110) != ""  # a missing joint: refused
    assert robot.pose([0.4, 0, 0.3], [0, 0, 0, 1], 120, 120).state is None  # cleared by it
