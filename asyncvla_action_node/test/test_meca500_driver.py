"""The Meca500 driver: its core without ROS, then the node over real DDS against the emulator.

The emulator (tools/asyncvla_testing/meca500_emulator.py) speaks Mecademic's TCP protocol on
free loopback ports; the driver talks to it through mecademicpy 3.0.3, as to a robot. Checked:
nothing is sent to a robot that is not activated (the emulator records every command it gets),
activation and homing only on request, streaming of the executor's twists, stop on the suite's
e-stop, and a robot error and the robot's own e-stop reported on /diagnostics and SafetyStatus,
with no motion command once the driver has heard of them (commands already on their way when the
robot faults, within 0.1 s, are refused by the robot itself).
"""
from __future__ import annotations

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, TwistStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool

from asyncvla_common import qos
from asyncvla_action_node.meca500.driver_core import (DriverCore, DriverLimits, RobotView,
                                                      pose_si, robot_velocity)
from asyncvla_common.safety import SafetyGate
from asyncvla_msgs.msg import SafetyStatus
from asyncvla_testing.meca500_emulator import Meca500Emulator
from asyncvla_testing.pipeline import ros_args
from asyncvla_testing.ros_listener import RosListener, diagnostic_values

READY = RobotView(True, activated=True, homed=True)
TWIST = np.array([0.01, 0.0, 0.0, 0.0, 0.0, 0.1])


def core(enabled=True) -> DriverCore:
    return DriverCore(DriverLimits(0.05, 0.5, 0.05), SafetyGate(enabled_at_start=enabled))


@pytest.mark.parametrize("view, category", [
    (RobotView(False), "not_connected"), (RobotView(True), "not_activated"),
    (RobotView(True, activated=True), "not_homed"),
    (RobotView(True, True, True, error=True, error_code=3005), "robot_error"),
    (RobotView(True, True, True, estop=True), "robot_estop")])
def test_nothing_is_sent_to_a_robot_that_cannot_move(view, category):
    c = core()
    c.on_setpoint(TWIST, 0.0)
    d = c.decide(view, 0.01)
    assert d.velocity is None and d.category == category
    assert d.robot_error == (category in ("robot_error", "robot_estop"))


def test_velocity_is_converted_and_clipped_and_stops_once():
    assert robot_velocity(np.array([0.1, 0, 0, 0, 0, 1.0]), DriverLimits(0.05, 0.5)) == \
        pytest.approx((50.0, 0, 0, 0, 0, np.degrees(0.5)))
    c = core()
    c.on_setpoint(TWIST, 0.0)
    assert c.decide(READY, 0.01).velocity == pytest.approx((10.0, 0, 0, 0, 0, np.degrees(0.1)))
    c.gate.on_estop(True, 0.02)
    stop = c.decide(READY, 0.02)
    assert stop.velocity == (0.0,) * 6 and stop.category == "stopping"
    assert c.decide(READY, 0.03).velocity is None  # once, then nothing
    c2 = core()
    c2.on_setpoint(TWIST, 0.0)
    c2.decide(READY, 0.01)
    assert c2.decide(READY, 0.07).velocity == (0.0,) * 6  # setpoint older than 50 ms
    assert not c2.on_setpoint([np.nan] * 6, 0.08) and c2.rejected_setpoints == 1


def test_meca_pose_is_converted_to_rep103():
    position, quat = pose_si([190.0, 0.0, 308.0, 0.0, 90.0, 0.0])
    assert position == pytest.approx([0.19, 0.0, 0.308])
    assert quat == pytest.approx([0.0, np.sqrt(0.5), 0.0, np.sqrt(0.5)])  # 90 deg about y


def _call(ros, name: str, timeout: float = 10.0):
    from std_srvs.srv import Trigger

    client = ros.node.create_client(Trigger, f"/meca500_driver/{name}")
    assert client.wait_for_service(timeout), f"service {name}"
    future = client.call_async(Trigger.Request())
    deadline = time.monotonic() + timeout
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert future.done(), f"{name} timed out"
    return future.result()


def _diag(ros) -> dict:
    for msg in reversed(ros["/diagnostics"].snapshot()):
        values = diagnostic_values(msg, "meca500_driver: robot")
        if values is not None:
            return values
    return {}


def test_driver_against_the_emulator(processes):
    emu = Meca500Emulator(0, 0).start()
    try:
        driver = processes.start("driver", ["-m", "asyncvla_action_node.meca500.driver_node",
                                            *ros_args({"robot_address": "127.0.0.1",
                                                       "control_port": emu.control_port})])
        driver.wait_for_line("meca500 driver ready", 30)
        with RosListener(int(processes.env["ROS_DOMAIN_ID"]), {
                "/robot/joint_states": JointState, "/robot/ee_pose": PoseStamped,
                "/diagnostics": DiagnosticArray,
                "/meca500_driver/safety_status": SafetyStatus}) as ros:
            twist_pub = ros.publisher("/asyncvla/setpoint/twist", TwistStamped, qos.COMMAND)
            enable = ros.publisher("/asyncvla/enable", Bool, qos.LATCHED)
            estop = ros.publisher("/asyncvla/estop", Bool, qos.LATCHED)
            enable.publish(Bool(data=True))

            def stream(seconds: float, vx: float = 0.01) -> None:
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    msg = TwistStamped()
                    msg.twist.linear.x, msg.twist.angular.z = vx, 0.1
                    twist_pub.publish(msg)
                    time.sleep(0.01)

            # connected but not activated: setpoints stream, nothing reaches the robot
            assert _call(ros, "connect").success
            stream(0.5)
            assert not any(c.startswith("MoveLinVel") for c in emu.received), emu.received
            assert emu.refused == []
            time.sleep(1.1)  # one diagnostics period
            assert "not activated" in _diag(ros).get("_message", ""), _diag(ros)
            # activation and homing only on request; the limits are set then
            assert not emu.snapshot().activated
            assert _call(ros, "activate").success and _call(ros, "home").success
            state = emu.snapshot()
            assert state.activated and state.homed
            assert any(c.startswith("SetVelTimeout(0.05") for c in emu.received)
            assert any(c.startswith("SetCartLinVel(50") for c in emu.received)
            # streaming: 10 mm/s along x for 1 s
            x0 = emu.snapshot().position[0]
            stream(1.0)
            moved = emu.snapshot().position[0] - x0
            assert 5.0 < moved < 13.0, moved  # mm; the driver's ticks and DDS add jitter
            poses = ros["/robot/ee_pose"].snapshot()
            assert poses and abs(poses[-1].pose.position.x - emu.snapshot().position[0] / 1e3) \
                < 0.002
            assert len(ros["/robot/joint_states"].snapshot()[-1].position) == 6
            # the suite's e-stop: the robot stops while setpoints keep coming
            estop.publish(Bool(data=True))
            time.sleep(0.2)
            sent_before = sum(c.startswith("MoveLinVel") for c in emu.received)
            x1 = emu.snapshot().position[0]
            stream(0.5)
            assert abs(emu.snapshot().position[0] - x1) < 1e-9
            assert sum(c.startswith("MoveLinVel") for c in emu.received) == sent_before
            last = [c for c in emu.received if c.startswith("MoveLinVel")][-1]
            assert [float(v) for v in last[last.index("(") + 1:-1].split(",")] == [0.0] * 6
            estop.publish(Bool(data=False))
            enable.publish(Bool(data=True))
            stream(0.3)
            # A robot error: reported, and once the driver has heard of it no motion command is
            # sent. (One already on the wire when the robot faults is refused by the robot: the
            # driver learns the robot's state from its events, it cannot foresee them.)
            def moves() -> int:
                return sum(c.startswith("MoveLinVel") for c in emu.received)

            def known(text: str) -> bool:
                snap = ros["/meca500_driver/safety_status"].snapshot()
                return bool(snap) and text in snap[-1].reason

            emu.inject_error(3005, "Motion error (emulated).")
            ros.wait_until(lambda: known("robot in error"), 5, "the driver reports the error")
            sent = moves()
            stream(1.2)
            assert moves() == sent, emu.received[-5:]
            assert all(0 <= t - emu.fault_at < 0.1 for _, _, t in emu.refused), emu.refused
            values = _diag(ros)
            assert values["_level"] == "2" and "robot in error" in values["_message"], values
            status = ros["/meca500_driver/safety_status"].snapshot()[-1]
            assert not status.output_allowed and "robot in error" in status.reason
            assert _call(ros, "reset_error").success
            assert _call(ros, "home").success  # already homed: the robot says so, no motion
            stream(0.3)
            # the robot's own e-stop
            emu.refused.clear()
            emu.set_estop(True)
            ros.wait_until(lambda: known("e-stop"), 5, "the driver reports the robot's e-stop")
            sent = moves()
            stream(1.2)
            assert moves() == sent
            assert all(0 <= t - emu.fault_at < 0.1 for _, _, t in emu.refused), emu.refused
            values = _diag(ros)
            assert values["_level"] == "2" and "e-stop" in values["_message"], values
    finally:
        emu.stop()


def test_chunks_to_emulated_robot_and_estop_stops_it(processes):
    """Chunks (10 Hz) -> executor (100 Hz twists) -> driver -> emulator, whose monitoring closes
    the loop; the suite's e-stop stops the emulated robot."""
    import os

    peer = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "asyncvla_testing",
                        "kinematic_robot.py")
    emu = Meca500Emulator(0, 0).start()
    try:
        driver = processes.start("driver", ["-m", "asyncvla_action_node.meca500.driver_node",
                                            *ros_args({"robot_address": "127.0.0.1",
                                                       "control_port": emu.control_port})])
        executor = processes.start("executor", ["-m", "asyncvla_action_node.executor_node",
                                                *ros_args({"output": "twist",
                                                           "robot_state_max_age": 0.3,
                                                           "robot_state_timeout": 0.3})])
        chunks = processes.start("chunks", [os.path.abspath(peer), "--roles", "chunks"])
        for proc, line in ((driver, "meca500 driver ready"), (executor, "executor ready"),
                           (chunks, "kinematic peer ready")):
            proc.wait_for_line(line, 30)
        with RosListener(int(processes.env["ROS_DOMAIN_ID"]),
                         {"/asyncvla/setpoint/twist": TwistStamped}) as ros:
            enable = ros.publisher("/asyncvla/enable", Bool, qos.LATCHED)
            estop = ros.publisher("/asyncvla/estop", Bool, qos.LATCHED)
            for name in ("connect", "activate", "home"):
                assert _call(ros, name).success, name
            start = emu.snapshot().position.copy()
            enable.publish(Bool(data=True))
            deadline = time.monotonic() + 15
            while np.linalg.norm(emu.snapshot().position - start) < 5.0:  # mm
                assert time.monotonic() < deadline, executor.output()[-2000:]
                time.sleep(0.05)
            published = time.monotonic()
            estop.publish(Bool(data=True))
            last, last_change = emu.snapshot().position.copy(), published
            while time.monotonic() - published < 1.0:
                time.sleep(0.002)
                now = emu.snapshot().position.copy()
                if np.linalg.norm(now - last) > 0:
                    last, last_change = now, time.monotonic()
            print(f"emulated robot still moving {1e3 * (last_change - published):.0f} ms after "
                  "the e-stop was published")
            # delivery, one tick of each node and the command on the wire, on a loaded machine
            assert last_change - published < 0.1
            assert emu.refused == []
            assert "-> ESTOP" in executor.output()
    finally:
        emu.stop()
