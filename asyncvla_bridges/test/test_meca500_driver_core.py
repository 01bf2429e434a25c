"""The Meca500 driver's core without ROS or sockets: readiness, the enable latch, the link
watchdog, the bring-up plan, error codes, frames, clipping and unit conversion.

Times are passed in (monotonic seconds), so every rule is checked at exact instants. The node
over DDS against the documented emulator is in test_meca500_driver.py.
"""
from __future__ import annotations

import numpy as np
import pytest

from asyncvla_bridges.meca500.driver_core import (LINK, SERVICE_SCOPES, STEPS, DriverCore,
                                                  DriverLimits, Frames, RobotErrors,
                                                  RobotView, pose_si, robot_velocity)
from asyncvla_common.report import ERROR, OK, WARN
from asyncvla_common.safety import SafetyGate, SafetyState

TWIST = np.array([0.01, 0.0, 0.0, 0.0, 0.0, 0.1])
LIMITS = DriverLimits(0.05, 0.5, 0.05, 0.2)


def ready_view(token: int = 1, **changes) -> RobotView:
    fields = dict(connected=True, activated=True, homed=True, monitoring_enabled=True,
                  monitoring_token=token)
    fields.update(changes)
    return RobotView(**fields)


def ready_core(t: float = 0.0) -> DriverCore:
    """A core whose robot is ready at `t` and whose operator enabled after that."""
    c = DriverCore(LIMITS, SafetyGate(False))
    c.on_configured()
    c.on_monitoring(1, t)
    assert c.decide(ready_view(), t).category == "disabled"
    assert c.on_enable(True, t)
    return c


@pytest.mark.parametrize("view, category, level", [
    (RobotView(False), "not_connected", WARN),
    (ready_view(error=True), "robot_error", ERROR),
    (ready_view(estop=True), "robot_estop", ERROR),
    (ready_view(activated=False), "not_activated", WARN),
    (ready_view(homed=False), "not_homed", WARN),
    (ready_view(paused=True), "paused", WARN),
    (ready_view(monitoring_enabled=False), "monitoring_off", WARN)])
def test_nothing_is_sent_to_a_robot_that_is_not_ready_and_the_latch_drops(view, category, level):
    c = ready_core()
    c.on_setpoint(TWIST, "base_link", 0.01)
    d = c.decide(view, 0.01)
    assert d.velocity is None and (d.category, d.level) == (category, level), d
    assert c.gate.state == SafetyState.DISABLED and c.latch_trips == 1
    # back to ready (after a bring-up, which configures again whatever the robot forgot):
    # still nothing until the operator enables again
    c.on_configured()
    d = c.decide(ready_view(), 0.02)
    assert d.velocity is None and d.category == "disabled" and "enable" in d.reason
    assert c.on_enable(True, 0.02)
    assert c.decide(ready_view(), 0.03).category == "moving"


def test_enable_counts_only_while_the_robot_is_ready():
    c = DriverCore(LIMITS, SafetyGate(False))
    c.on_monitoring(1, 0.0)
    assert c.decide(ready_view(), 0.0).category == "not_configured"
    assert not c.on_enable(True, 0.0) and c.refused_enables == 1
    assert c.gate.state == SafetyState.DISABLED
    c.on_configured()
    c.on_setpoint(TWIST, "base_link", 0.01)
    assert c.decide(ready_view(), 0.01).category == "disabled"  # ready now: an enable is needed
    assert c.on_enable(True, 0.01)
    assert c.decide(ready_view(), 0.02).category == "moving"
    assert c.on_enable(False, 0.03) and c.gate.state == SafetyState.DISABLED  # always obeyed


def test_operator_actions_and_reconnects_need_a_new_enable():
    c = ready_core()
    c.on_setpoint(TWIST, "base_link", 0.0)
    assert c.decide(ready_view(), 0.01).category == "moving"
    c.operator_action("home")
    d = c.decide(ready_view(), 0.02)
    assert d.velocity == (0.0,) * 6 and d.category == "stopping", d  # was moving: one zero
    assert "~/home" in c.gate.last_change_reason
    assert c.on_enable(True, 0.03)
    c.on_setpoint(TWIST, "base_link", 0.03)
    assert c.decide(ready_view(), 0.03).category == "moving"
    c.on_connected()  # a new connection: settings unknown until applied again
    assert c.decide(ready_view(), 0.04).category == "not_configured"
    assert c.gate.state == SafetyState.DISABLED


def test_lost_link_is_an_error_after_link_timeout_and_recovers_only_to_disabled():
    c = ready_core()
    c.on_setpoint(TWIST, "base_link", 0.0)
    assert c.decide(ready_view(1), 0.0).category == "moving"
    for t in (0.05, 0.1, 0.15, 0.2):  # the same cycle again and again: the link is silent
        c.on_monitoring(1, t)
        c.on_setpoint(TWIST, "base_link", t)
        assert c.decide(ready_view(1), t).category == "moving", t
    c.on_monitoring(1, 0.21)
    c.on_setpoint(TWIST, "base_link", 0.21)
    d = c.decide(ready_view(1), 0.21)
    assert (d.category, d.level, d.velocity) == ("link_lost", ERROR, None), d
    assert "link_timeout 200 ms" in d.reason and "210 ms" in d.reason
    assert not c.link_ok(0.21)
    link = next(w for w in c.dogs.snapshot(0.21) if w.name == LINK)
    assert link.trips == 1
    # monitoring again: no longer an error, but the operator must enable again
    c.on_monitoring(2, 0.5)
    c.on_setpoint(TWIST, "base_link", 0.5)
    d = c.decide(ready_view(2), 0.5)
    assert d.category == "disabled" and c.link_ok(0.5), d
    assert c.on_enable(True, 0.5)
    assert c.decide(ready_view(2), 0.51).category == "moving"


def test_a_lost_connection_the_operator_did_not_ask_for_is_an_error():
    c = ready_core()
    assert c.decide(RobotView(False), 0.0).category == "not_connected"  # never connected
    c.on_connected()
    assert c.decide(RobotView(False), 0.0).level == ERROR
    assert c.decide(RobotView(False), 0.0).category == "connection_lost"
    c.operator_action("disconnect")
    d = c.decide(RobotView(False), 0.01)
    assert (d.category, d.level) == ("not_connected", WARN)


@pytest.mark.parametrize("frame, command", [("base_link", "MoveLinVelWrf"),
                                            ("tool0", "MoveLinVelTrf")])
def test_frame_picks_the_velocity_command(frame, command):
    c = ready_core()
    assert c.on_setpoint(TWIST, frame, 0.0)
    d = c.decide(ready_view(), 0.01)
    assert d.command == command and d.velocity == pytest.approx(
        (10.0, 0, 0, 0, 0, np.degrees(0.1)))


@pytest.mark.parametrize("frame", ["camera_link", "", "world", "TOOL0"])
def test_other_frames_are_refused_counted_and_stop_the_robot(frame):
    c = ready_core()
    c.on_setpoint(TWIST, "base_link", 0.0)
    assert c.decide(ready_view(), 0.0).category == "moving"
    assert not c.on_setpoint(TWIST, frame, 0.01)
    d = c.decide(ready_view(), 0.01)
    assert d.velocity == (0.0,) * 6 and d.level == ERROR and repr(frame) in d.reason, d
    d = c.decide(ready_view(), 0.02)
    assert d.velocity is None and d.category == "refused_frame"
    assert c.refused_frames == 1
    assert c.on_setpoint(TWIST, "base_link", 0.03)
    assert c.decide(ready_view(), 0.03).category == "moving"
    assert Frames("world", "flange").command("flange") == "trf"


def test_velocity_is_converted_and_clipped_and_stops_once():
    assert robot_velocity(np.array([0.1, 0, 0, 0, 0, 1.0]), DriverLimits(0.05, 0.5)) == \
        pytest.approx((50.0, 0, 0, 0, 0, np.degrees(0.5)))
    c = ready_core()
    c.on_setpoint(TWIST, "base_link", 0.0)
    assert c.decide(ready_view(), 0.01).velocity == pytest.approx(
        (10.0, 0, 0, 0, 0, np.degrees(0.1)))
    c.on_estop(True, 0.02)
    stop = c.decide(ready_view(), 0.02)
    assert stop.velocity == (0.0,) * 6 and stop.category == "stopping" and stop.level == ERROR
    assert c.decide(ready_view(), 0.03).velocity is None  # once, then nothing
    c2 = ready_core()
    c2.on_setpoint(TWIST, "base_link", 0.0)
    c2.decide(ready_view(), 0.01)
    assert c2.decide(ready_view(), 0.07).velocity == (0.0,) * 6  # setpoint older than 50 ms
    assert not c2.on_setpoint([np.nan] * 6, "base_link", 0.08)
    assert not c2.on_setpoint([1.0] * 5, "base_link", 0.08)
    assert c2.rejected_setpoints == 2
    held = ready_core()
    held.on_setpoint(np.zeros(6), "base_link", 0.0)
    d = held.decide(ready_view(), 0.0)
    assert (d.category, d.level, d.velocity) == ("holding", OK, None)


def test_error_code_from_the_text_api_message_or_the_json_status():
    errors = RobotErrors()
    assert errors.describe(RobotView(True, error=True)) == "(no error code received yet)"
    errors.on_message(2007, "1,1,0,1,1,0,0", False, 0.0)  # a status: not an error
    errors.on_message(3005, "Motion error.", True, 0.0)
    errors.on_message(1011, "The robot is already in error.", True, 0.01)  # a consequence
    assert errors.describe(RobotView(True, error=True)) == "[3005] Motion error."
    json_status = RobotView(True, error=True, error_code=1006, error_message="Not homed.")
    assert errors.describe(json_status) == "[1006] Not homed."  # firmware 11 says it itself
    assert errors.count == 2
    c = ready_core()
    c.errors.on_message(3005, "Motion error.", True, 0.0)
    assert c.decide(ready_view(), 0.005).category == "no_setpoint"  # the status is on its way
    d = c.decide(ready_view(error=True, paused=True), 0.01)
    assert "[3005] Motion error." in d.reason and d.level == ERROR
    c.decide(ready_view(paused=True, token=2), 0.02)  # reset: the cause is gone
    assert c.errors.first is None
    c.on_monitoring(3, 2.0)
    c.errors.on_message(3001, "An event that did not put the robot in error.", True, 2.0)
    c.decide(ready_view(token=3), 2.5)
    assert c.errors.first is not None
    c.on_monitoring(4, 3.1)
    c.decide(ready_view(token=4), 3.1)
    assert c.errors.first is None, "a message without an error status is forgotten"


def test_bring_up_plan_follows_the_robots_order():
    c = DriverCore(LIMITS, SafetyGate(False))
    assert c.plan(RobotView(False), 0.0) == (["connect", "monitoring", "activate", "home",
                                              "configure"], "")
    fresh = RobotView(True, monitoring_token=1)
    c.on_monitoring(1, 0.0)
    assert c.plan(fresh, 0.0) == (["monitoring", "activate", "home", "configure"], "")
    left = RobotView(True, activated=True, homed=True, error=True, paused=True,
                     monitoring_token=1)
    assert c.plan(left, 0.0)[0] == ["reset_error", "monitoring", "resume", "configure"]
    homed_paused = ready_view(paused=True)
    assert c.plan(homed_paused, 0.0)[0] == ["resume", "configure"]
    c.on_configured()
    assert c.plan(ready_view(), 0.0) == ([], "")
    assert c.plan(ready_view(homed=False), 0.0)[0] == ["home", "configure"]
    assert c.plan(ready_view(), 0.5)[0][0] == "reconnect"  # the link died meanwhile
    steps, blocker = c.plan(ready_view(estop=True, monitoring_token=1), 0.0)
    assert steps == [] and "e-stop" in blocker
    order = {s: i for i, s in enumerate(STEPS)}
    for view in (RobotView(False), fresh, left, homed_paused):
        planned = c.plan(view, 0.0)[0]
        assert planned == sorted(planned, key=order.get)
        if "configure" in planned and "home" in planned:
            assert planned.index("configure") > planned.index("home")


def test_services_run_their_steps_and_name_the_missing_one():
    c = DriverCore(LIMITS, SafetyGate(False))
    assert c.service_step("activate", RobotView(False), 0.0) == (
        "blocked", "connect is needed before monitoring: call ~/connect first")
    assert c.service_step("connect", RobotView(False), 0.0) == ("run", "connect")
    c.on_monitoring(1, 0.0)
    fresh = RobotView(True, monitoring_enabled=True, monitoring_token=1)
    assert c.service_step("connect", fresh, 0.0) == ("done", "next: ~/activate (activate)")
    assert c.service_step("home", fresh, 0.0)[0] == "blocked"
    assert c.service_step("activate", fresh, 0.0) == ("run", "activate")
    in_error = ready_view(error=True, paused=True)
    assert c.service_step("activate", in_error, 0.0)[0] == "done"  # activated already
    assert c.service_step("home", in_error, 0.0) == (
        "blocked", "reset_error is needed before resume: call ~/reset_error first")
    assert c.service_step("reset_error", in_error, 0.0) == ("run", "reset_error")
    assert c.service_step("reset_error", ready_view(paused=True), 0.0) == ("run", "resume")
    assert c.service_step("home", ready_view(), 0.0) == ("run", "configure")
    c.on_configured()
    assert c.service_step("bring_up", ready_view(), 0.0) == (
        "done", "the robot is ready: enable to move")
    assert all(scope <= set(STEPS) for scope in SERVICE_SCOPES.values())
    assert c.service_step("bring_up", ready_view(estop=True), 0.0)[0] == "blocked"


def test_meca_pose_is_converted_to_rep103():
    position, quat = pose_si([190.0, 0.0, 308.0, 0.0, 90.0, 0.0])
    assert position == pytest.approx([0.19, 0.0, 0.308])
    assert quat == pytest.approx([0.0, np.sqrt(0.5), 0.0, np.sqrt(0.5)])  # 90 deg about y
