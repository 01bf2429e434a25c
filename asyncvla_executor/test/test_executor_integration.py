"""The executor node over real DDS, as separate processes: 10 Hz chunks in, 100 Hz setpoints out.

The peer (tools/asyncvla_testing/kinematic_robot.py) is a kinematic robot that executes the
setpoints and publishes its state, and a chunk source that publishes chunks like the action node
(reference = the robot's newest state). Checked: the setpoint rate, continuity across chunk
boundaries for every blending strategy (no step larger than the guard's per-step limit), and no
motion output later than one executor period after an e-stop, a disable, a stale chunk or an
empty queue, with the robot standing still afterwards.
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, TwistStamped
from std_msgs.msg import Bool

from asyncvla_common import qos
from asyncvla_common.timeconv import stamp_to_ns
from asyncvla_core.chunk_blending import blending_modes
from asyncvla_msgs.msg import ActionChunk
from asyncvla_testing.pipeline import ros_args
from asyncvla_testing.ros_listener import RosListener, diagnostic_values

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PEER = os.path.join(ROOT, "tools", "asyncvla_testing", "kinematic_robot.py")
PERIOD = 0.01
MAX_V = 0.05  # m/s, the guard's linear velocity limit (YAML default)


def _start(processes, output: str, **params):
    topic = f"/asyncvla/setpoint/{output}"
    # A shared 2-core CI machine delays 100 Hz robot states by > 100 ms at times: the robot
    # state bounds are widened so the test is about the executor, not the machine's load.
    base = {"output.kind": output, "timing.rate_hz": 1.0 / PERIOD, "reporting.log_period": 0.2,
            "freshness.robot_state_max_age": 0.3, **params}
    executor = processes.start("executor", ["-m", "asyncvla_executor.executor_node",
                                            *ros_args(base)])
    peer = processes.start("peer", [PEER, "--mode", output, "--setpoint-topic", topic])
    executor.wait_for_line("executor ready", 30)
    peer.wait_for_line("kinematic peer ready", 30)
    ros = RosListener(int(processes.env["ROS_DOMAIN_ID"]), {
        topic: TwistStamped if output == "twist" else PoseStamped,
        "/asyncvla/action_chunk": ActionChunk, "/diagnostics": DiagnosticArray})
    pubs = {name: ros.publisher(f"/{name}", Bool, qos.LATCHED)
            for name in ("asyncvla/enable", "asyncvla/estop", "test/chunks_on")}
    return executor, peer, ros, topic, pubs


def _robot_positions(peer, after_s: float) -> np.ndarray:
    rows = [line.split()[1:] for line in peer.output().splitlines() if line.startswith("STATE ")]
    rows = np.array([[float(v) for v in r] for r in rows])
    return rows[rows[:, 0] > after_s]


def _executor_values(ros) -> dict[str, str]:
    for msg in reversed(ros["/diagnostics"].snapshot()):
        values = diagnostic_values(msg, "asyncvla_executor: executor output")
        if values is not None:
            return values
    return {}


def _logged_ns(proc, needle: str, timeout: float = 5.0) -> int:
    """The time (ns, the node's log stamp) at which the node logged `needle`: when it
    *received* an operator's message (delivery itself takes a few ms, more under load)."""
    line = proc.wait_for_line(needle, timeout)
    return int(round(float(line.split("[")[2].split("]")[0]) * 1e9))


@pytest.mark.parametrize("mode", blending_modes())
def test_setpoints_are_continuous_across_chunks_and_stop_on_estop(processes, mode):
    executor, peer, ros, topic, pubs = _start(processes, "pose", **{"blending.mode": mode})
    try:
        pubs["asyncvla/enable"].publish(Bool(data=True))
        ros.wait_until(lambda: len(ros[topic]) > 20, 15, "pose setpoints")
        time.sleep(3.0)
        ros[topic].clear()
        ros["/asyncvla/action_chunk"].clear()
        time.sleep(2.0)
        window = ros[topic].snapshot()
        chunks = ros["/asyncvla/action_chunk"].snapshot()
        pubs["asyncvla/estop"].publish(Bool(data=True))
        stop_ns = _logged_ns(executor, "-> ESTOP")
        time.sleep(1.0)
        after = [m for m in ros[topic].snapshot()
                 if stamp_to_ns(m.header.stamp) > stop_ns + int(PERIOD * 1e9)]
    finally:
        ros.close()
    values = _executor_values(ros)
    # Rates from the stamps (a sleep on a loaded machine overshoots): 10 Hz in, 100 Hz out.
    chunk_stamps = sorted(stamp_to_ns(m.header.stamp) for m in chunks)
    chunk_hz = (len(chunk_stamps) - 1) / ((chunk_stamps[-1] - chunk_stamps[0]) / 1e9)
    setpoint_stamps = sorted(stamp_to_ns(m.header.stamp) for m in window)
    setpoint_hz = (len(setpoint_stamps) - 1) / ((setpoint_stamps[-1] - setpoint_stamps[0]) / 1e9)
    print(f"chunks {chunk_hz:.1f} Hz in, setpoints {setpoint_hz:.1f} Hz out")
    assert 8.0 <= chunk_hz <= 12.0, chunk_hz
    # 100 Hz out on an idle machine; a loaded shared 2-core CI machine (load 8 measured) drops
    # ticks, which rclpy timers do not catch up, so 60 Hz is the floor here.
    assert setpoint_hz >= 60.0, f"{setpoint_hz} {values}"
    window.sort(key=lambda m: stamp_to_ns(m.header.stamp))
    positions = np.array([[m.pose.position.x, m.pose.position.y, m.pose.position.z]
                          for m in window])
    dt = np.diff([stamp_to_ns(m.header.stamp) for m in window]) / 1e9
    steps = np.linalg.norm(np.diff(positions, axis=0), axis=1)
    # The guard's per-step limit over the time between two setpoints (a late tick covers more)
    assert np.all(steps <= np.minimum(0.005, MAX_V * np.maximum(dt, PERIOD)) + 1e-5), \
        (steps.max(), dt[steps.argmax()])
    assert np.linalg.norm(positions[-1] - positions[0]) > 0.01  # it really moved (2 cm/s)
    assert values.get("guard_refusals") == "0", values
    assert "callback_errors_estop" not in values, executor.output()[-3000:]
    # e-stop: at most the one hold message (the last target again) after it, then silence
    assert len(after) <= 1, len(after)
    if after:
        held = after[0].pose.position
        assert np.allclose([held.x, held.y, held.z], positions[-1], atol=MAX_V * PERIOD * 3)
    still = _robot_positions(peer, stop_ns / 1e9 + 2 * PERIOD)
    assert len(still) > 5 and np.ptp(still[:, 1:], axis=0).max() < 1e-9


@pytest.mark.parametrize("stop", ["disable", "stale", "dry"])
def test_twist_is_zero_within_one_period_of_a_stop(processes, stop):
    params = {"freshness.max_chunk_age": 2.0} if stop == "dry" else {}
    executor, peer, ros, topic, pubs = _start(processes, "twist", **params)
    try:
        pubs["asyncvla/enable"].publish(Bool(data=True))
        ros.wait_until(lambda: any(abs(m.twist.linear.x) + abs(m.twist.linear.y) > 1e-4
                                   for m in ros[topic].snapshot()), 15, "moving twists")
        time.sleep(1.5)
        if stop == "disable":
            pubs["asyncvla/enable"].publish(Bool(data=False))
            stop_ns = _logged_ns(executor, "-> DISABLED")
        else:
            pubs["test/chunks_on"].publish(Bool(data=False))
            time.sleep(0.2)
            chunks = ros["/asyncvla/action_chunk"].snapshot()
            assert chunks, executor.output()[-2000:] + peer.output()[-1000:]
            last = chunks[-1]
            horizon_s = last.horizon * last.step_period
            stop_ns = stamp_to_ns(last.header.stamp) + int(
                (0.3 if stop == "stale" else horizon_s) * 1e9)
            if stop == "dry":
                # The last step is due at stamp + horizon, later by the chunk's age if it started
                # the queue from a hold (it then runs at its planned speed); never earlier.
                dry_ns = _logged_ns(executor, "ran dry")
                assert stop_ns - int(PERIOD * 1e9) <= dry_ns <= stop_ns + int(0.3e9), \
                    (dry_ns - stop_ns) / 1e9
                stop_ns = dry_ns
        time.sleep(1.5)
        twists = ros[topic].snapshot()
    finally:
        ros.close()
    stamps = np.array([stamp_to_ns(m.header.stamp) for m in twists])
    speed = np.array([np.hypot(m.twist.linear.x, m.twist.linear.y) + abs(m.twist.angular.z)
                      for m in twists])
    before = speed[(stamps > stop_ns - int(0.5e9)) & (stamps < stop_ns - int(2 * PERIOD * 1e9))]
    after = speed[stamps > stop_ns + int(PERIOD * 1e9)]
    # executing up to the stop (a loaded machine may delay a robot state past its bound for a
    # tick or two, which holds the robot for that long: allowed here, not at the stop)
    assert before.size > 20 and np.mean(before > 1e-4) >= 0.8, _executor_values(ros)
    assert after.size > 50, "zero twists keep coming at the executor rate"
    assert after.max() == 0.0, (_executor_values(ros), executor.output()[-1500:])
    still = _robot_positions(peer, stop_ns / 1e9 + 0.1)
    assert len(still) > 5 and np.ptp(still[:, 1:], axis=0).max() < 1e-9
    out = executor.output()
    expected = {"disable": "disabled", "stale": "newest chunk is", "dry": "ran dry"}[stop]
    assert expected in out, out[-2000:]


def test_an_intruders_enable_is_refused_while_stops_are_always_obeyed(processes):
    """The executor drives the robot directly, so the operator topics' rule holds here too
    (operator_inputs.OperatorInputs): while a second node publishes on enable/e-stop, its
    "go" messages (e-stop released, enable pressed) are refused and the safety status is an
    ERROR naming the topic; the robot stays still. Once it leaves, the operator's go works."""
    rogue_script = os.path.join(ROOT, "tools", "asyncvla_testing", "rogue.py")
    executor, peer, ros, topic, pubs = _start(processes, "twist")
    try:
        pubs["asyncvla/estop"].publish(Bool(data=True))
        executor.wait_for_line("-> ESTOP", 10)
        pressed = time.time()
        rogue = processes.start("rogue", [rogue_script, "go", "--name", "intruder", "--count",
                                          "20", "--rate", "10", "--hold", "4.0"])
        rogue.wait_for_line("ROGUE START", 30)

        def safety_error(newest_only: bool = False) -> bool:
            statuses = [v for v in (diagnostic_values(m, "asyncvla_executor: safety")
                                    for m in ros["/diagnostics"].snapshot()) if v is not None]
            return any(v["_level"] == "2" and "publishers on /asyncvla/" in v["_message"]
                       for v in (statuses[-1:] if newest_only else statuses))

        ros.wait_until(safety_error, 10, "safety ERROR naming the topic")
        rogue.popen.wait(30)
        moving = [m for m in ros[topic].snapshot()
                  if stamp_to_ns(m.header.stamp) > pressed * 1e9
                  and abs(m.twist.linear.x) + abs(m.twist.linear.y) > 0.0]
        out = executor.output()
        assert moving == [], out[-2000:]
        assert "refused" in out and "-> ENABLED" not in out, out[-2000:]
        # The intruder left and the status says so: the operator releases and enables, and
        # the robot moves again.
        ros.wait_until(lambda: not safety_error(newest_only=True), 10, "intruder seen gone")
        pubs["asyncvla/estop"].publish(Bool(data=False))
        executor.wait_for_line("ESTOP -> DISABLED", 10)  # two topics: no order between them
        pubs["asyncvla/enable"].publish(Bool(data=True))
        executor.wait_for_line("-> ENABLED", 10)
        ros.wait_until(lambda: any(abs(m.twist.linear.x) + abs(m.twist.linear.y) > 1e-4
                                   for m in ros[topic].snapshot()), 15, "moving again")
    finally:
        ros.close()
