"""The Meca500 driver's decisions, without ROS or sockets: what may be sent to the robot now.

A needle is on the robot, so the rules are fail-closed and checked at every command tick. The
robot's rules are Mecademic's documented ones (Programming manual for the Meca500, firmware 9.2
and 11.3; mecademicpy 3.0.3 and its README), not what a driver would like them to be:

* **Ready** means: connected, monitoring data arriving (the link), no e-stop, no error,
  activated, homed, motion not paused, the measured joints and pose enabled in the real-time
  monitoring, and the velocity settings applied since the last activation. Nothing at all is
  sent to a robot that is not ready (it would refuse it and go into error mode [PM9 2.5.1]).
* **Bring-up** (``plan``): connect, enable the measured monitoring (2210/2211 are not sent by
  default), reset an error, activate, home, resume (ClearMotion then ResumeMotion: a fault or a
  dropped connection leaves motion paused; mecademicpy README: ResetError, then ResumeMotion),
  then the settings (SetVelTimeout, SetCartLinVel, ...). The settings go last: they are
  motion-queue commands the robot refuses before homing ([1005]/[1006]) and resets at every
  activation [PM11 SetVelTimeout]. Each service runs the steps in its scope (``service_step``).
* **Lost link**: no new monitoring cycle for ``link_timeout`` (monitoring comes every ~17 ms).
  A pulled cable or the R3's e-stop (which cuts the robot's power) resets no TCP connection, and
  mecademicpy itself notices only after 10 s; the driver says so at once and writes nothing into
  the dead link.
* **The enable latch**: whenever the robot is not ready while the suite is enabled, the safety
  gate falls back to DISABLED, and an enable is accepted only while the robot is ready. So after
  an e-stop, a power cut, a lost link, a reconnect or any bring-up service, nothing moves until
  the operator enables again, after the robot is back.
* A velocity is sent only while the gate is ENABLED and the newest setpoint is younger than
  ``setpoint_timeout``; when this stops holding while the robot moves, one zero velocity is sent
  (the robot also stops by itself after ``SetVelTimeout``). Velocities are clipped to the
  driver's limits (m/s, rad/s) before conversion to the robot's mm/s and deg/s. The twist's
  frame_id picks MoveLinVelWrf (``world_frame``) or MoveLinVelTrf (``tool_frame``); any other
  frame is refused, counted and stops the robot.
* Robot errors are reported with their code: firmware 11's JSON status carries it (mecademicpy
  fills ``error_code``); on the 9.x/10.x text API only the ``[1xxx]``/``[3xxx]`` message does,
  so the driver keeps the first one since the last reset (``RobotErrors``).

Monitoring data (degrees, mm, Mecademic's mobile XYZ Euler angles) is converted to REP-103 units
here too, so the node only copies numbers into messages.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Hashable

import numpy as np

from asyncvla_common.report import ERROR, OK, WARN
from asyncvla_common.safety import SafetyGate, SafetyState, WatchdogSet
from asyncvla_core.rotations import euler_to_quaternion

#: Mecademic's Euler convention for poses: alpha about x, then beta about the new y, then gamma
#: about the new z (see asyncvla_bridges/README.md).
MECA_EULER = "xyz_intrinsic"
#: The watchdog that stands for the link: fed by every new monitoring cycle.
LINK = "robot_monitoring"
#: Bring-up steps, in the only order the robot accepts them (an error is reset first: in error
#: mode the robot refuses commands [mecademicpy README "Handling robot errors"]).
STEPS = ("reconnect", "connect", "reset_error", "monitoring", "activate", "home", "resume",
         "configure")
#: The steps each service may run (~/bring_up runs them all). Enabling the monitoring is in
#: every scope: it is accepted in any state and only makes the robot report more.
SERVICE_SCOPES: dict[str, frozenset[str]] = {
    "bring_up": frozenset(STEPS),
    "connect": frozenset({"reconnect", "connect", "monitoring"}),
    "reset_error": frozenset({"reset_error", "monitoring", "resume"}),
    "activate": frozenset({"monitoring", "activate"}),
    "home": frozenset({"monitoring", "home", "resume", "configure"}),
}
#: The service an operator calls for a step outside the current service's scope.
STEP_SERVICE = {"reconnect": "connect", "connect": "connect", "monitoring": "connect",
                "reset_error": "reset_error", "activate": "activate", "home": "home",
                "resume": "home", "configure": "home"}
VELOCITY_COMMANDS = {"wrf": "MoveLinVelWrf", "trf": "MoveLinVelTrf"}


@dataclass(frozen=True)
class DriverLimits:
    max_linear_velocity: float = 0.05  # m/s
    max_angular_velocity: float = 0.5  # rad/s
    setpoint_timeout: float = 0.05  # s from a setpoint's arrival
    link_timeout: float = 0.2  # s without a new monitoring cycle = lost link


@dataclass(frozen=True)
class Frames:
    """The twist frames the robot can execute: its WRF (the base unless SetWrf was used) and its
    TRF (the flange unless SetTrf was used; the driver sends neither)."""

    world: str = "base_link"
    tool: str = "tool0"

    def command(self, frame_id: str) -> str | None:
        """'wrf', 'trf', or None for a frame the robot has no velocity command for."""
        if frame_id and frame_id == self.world:
            return "wrf"
        if frame_id and frame_id == self.tool:
            return "trf"
        return None


@dataclass(frozen=True)
class RobotView:
    """What the robot reports (mecademicpy's status, safety status and real-time data)."""

    connected: bool
    activated: bool = False
    homed: bool = False
    error: bool = False
    error_code: int | None = None  # from firmware 11's JSON status; None on the text API
    error_message: str = ""
    estop: bool = False  # the robot's own e-stop (any state but reset)
    paused: bool = False  # motion paused on the robot (after a fault, a drop, ClearMotion)
    monitoring_enabled: bool = False  # the measured joints and pose (2210, 2211) are enabled
    monitoring_token: Hashable | None = None  # changes with every monitoring cycle; None: none


@dataclass(frozen=True)
class Decision:
    velocity: tuple[float, ...] | None  # velocity command args (mm/s, deg/s); None: send nothing
    category: str  # "moving", "stopping", or why nothing is sent
    reason: str  # one line ("" when moving)
    level: int = WARN  # what /diagnostics says about it
    command: str = "MoveLinVelWrf"  # which velocity command carries `velocity`

    @property
    def robot_error(self) -> bool:
        return self.level == ERROR


def robot_velocity(twist: np.ndarray, limits: DriverLimits) -> tuple[float, ...]:
    """A twist (m/s, rad/s) clipped to the limits, in the robot's mm/s and deg/s."""
    linear = np.asarray(twist[:3], dtype=np.float64).copy()
    angular = np.asarray(twist[3:6], dtype=np.float64).copy()
    for vec, limit in ((linear, limits.max_linear_velocity),
                       (angular, limits.max_angular_velocity)):
        norm = float(np.linalg.norm(vec))
        if limit > 0 and norm > limit:
            vec *= limit / norm
    return tuple(float(v) for v in (*(linear * 1e3), *np.degrees(angular)))


class RobotErrors:
    """The robot's error messages since its last error reset (thread-safe: mecademicpy's callback
    thread writes, the tick reads).

    Why: on the firmware 9/10 text API the status only says *that* the robot is in error; the
    code and text come in the message that put it there ([1xxx] command errors, [3xxx] events
    [PM9 2.5 "Responses and messages"]). The first one since the reset is the cause; the
    [1011] "already in error" refusals that follow are counted, not reported as the cause.
    """

    #: An error message older than this while the robot reports no error did not put it in
    #: error (the status follows the message within a monitoring cycle or two).
    STALE_AFTER = 1.0  # s

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.first: tuple[int, str] | None = None
        self._first_at = 0.0
        self.count = 0

    def on_message(self, code: int, text: str, is_error: bool, mono: float) -> None:
        if not is_error:
            return
        with self._lock:
            self.count += 1
            if self.first is None:
                self.first, self._first_at = (int(code), str(text).strip()), mono

    def clear(self) -> None:
        with self._lock:
            self.first = None

    def forget_stale(self, mono: float) -> None:
        """Called while the robot reports no error: drop a message that did not cause one."""
        with self._lock:
            if self.first is not None and mono - self._first_at > self.STALE_AFTER:
                self.first = None

    def describe(self, robot: RobotView) -> str:
        """'[code] text' of the robot's error: the JSON status's if it has one, else the first
        error message since the reset, else a note that the robot did not say."""
        if robot.error_code:
            return f"[{int(robot.error_code)}] {robot.error_message}".strip()
        with self._lock:
            first = self.first
        if first is not None:
            return f"[{first[0]}] {first[1]}".strip()
        return "(no error code received yet)"


class DriverCore:
    """Holds the newest setpoint, the link watchdog and the enable latch; ``decide`` per tick."""

    def __init__(self, limits: DriverLimits, gate: SafetyGate,
                 frames: Frames | None = None) -> None:
        self.limits = limits
        self.gate = gate
        self.frames = frames or Frames()
        self.dogs = WatchdogSet()
        self.dogs.add("setpoint", 0.0)  # reported only (the setpoint timeout is checked here)
        self.dogs.add(LINK, limits.link_timeout)
        self.errors = RobotErrors()
        self._twist: np.ndarray | None = None
        self._twist_at = -math.inf
        self._twist_command = "wrf"
        self._refused_frame: str | None = None  # the newest setpoint's frame, when refused
        self._moving = False
        self._token: Hashable | None = None
        self._configured = False
        self._ready = False
        self._was_error = False
        self._expect_connected = False
        self.last: Decision | None = None
        self.sent = 0
        self.rejected_setpoints = 0
        self.refused_frames = 0
        self.refused_enables = 0  # enables that came while the robot was not ready
        self.latch_trips = 0  # times the robot stopped being ready while enabled

    # --- inputs -------------------------------------------------------------------------------
    def on_setpoint(self, twist, frame_id: str, mono: float) -> bool:
        """A twist setpoint (m/s, rad/s) in `frame_id`; False (and counted) when refused.

        A refused setpoint also drops the one before it: the sender's newest intent cannot be
        executed, so the robot stops instead of continuing the previous one.
        """
        twist = np.asarray(twist, dtype=np.float64).reshape(-1)
        if twist.size != 6 or not np.all(np.isfinite(twist)):
            self.rejected_setpoints += 1
            self._twist = None
            return False
        command = self.frames.command(frame_id)
        if command is None:
            self.refused_frames += 1
            self._refused_frame = frame_id
            self._twist = None
            return False
        self._twist, self._twist_at, self._twist_command = twist, mono, command
        self._refused_frame = None
        self.dogs.feed("setpoint", mono)
        return True

    def on_enable(self, enable: bool, mono: float) -> bool:
        """The operator's enable; an enable (True) counts only while the robot is ready."""
        if enable and not self._ready:
            self.refused_enables += 1
            return False
        self.gate.on_enable(enable, mono)
        return True

    def on_estop(self, active: bool, mono: float) -> None:
        self.gate.on_estop(active, mono)

    def on_monitoring(self, token: Hashable | None, mono: float) -> None:
        """The newest monitoring cycle seen (call every tick): a new one feeds the link."""
        if token is not None and token != self._token:
            self._token = token
            self.dogs.feed(LINK, mono)

    def on_configured(self) -> None:
        """The velocity settings were applied and confirmed (a checkpoint after them)."""
        self._configured = True

    def on_connected(self) -> None:
        """A new connection: what the driver knew about the robot's settings and errors is
        from before it, and the first monitoring cycle on it counts as the link."""
        self._configured = False
        self._token = None
        self.errors.clear()
        self._expect_connected = True  # from now on, losing the connection is an error

    def operator_action(self, service: str) -> None:
        """A bring-up service was called: whatever it does, the operator enables afterwards."""
        self.gate.disable(f"~/{service} was called: enable again once the robot is ready")
        if service == "disconnect":
            self._expect_connected = False

    # --- state --------------------------------------------------------------------------------
    def link_ok(self, mono: float) -> bool:
        """A monitoring cycle arrived within link_timeout."""
        return not any(d.name == LINK and d.expired(mono) for d in self.dogs.snapshot(mono))

    def _link_reason(self, mono: float) -> str:
        dog = next(d for d in self.dogs.snapshot(mono) if d.name == LINK)
        age = "none received on this connection" if dog.last_seen is None else \
            f"none for {dog.age(mono) * 1e3:.0f} ms"
        return (f"lost link to the robot: monitoring data {age} (timing.link_timeout "
                f"{self.limits.link_timeout * 1e3:.0f} ms); check the cable and the robot's "
                "power (the R3's e-stop cuts it), then ~/bring_up and enable")

    def readiness(self, robot: RobotView, mono: float) -> Decision | None:
        """None when the robot is ready for velocity commands, else why not."""
        if not robot.connected:
            if self._expect_connected:
                return Decision(None, "connection_lost", "connection to the robot lost "
                                "(call ~/bring_up, then enable)", ERROR)
            return Decision(None, "not_connected", "not connected to the robot (call "
                            "~/bring_up, or ~/connect, ~/activate, ~/home)")
        if not self.link_ok(mono):
            return Decision(None, "link_lost", self._link_reason(mono), ERROR)
        if robot.estop:
            return Decision(None, "robot_estop", "the robot's e-stop is pressed (release and "
                            "reset it on the robot's power supply, then ~/bring_up and enable)",
                            ERROR)
        if robot.error:
            return Decision(None, "robot_error", f"robot in error {self.errors.describe(robot)}"
                            " (call ~/reset_error or ~/bring_up, then enable)", ERROR)
        if not robot.activated:
            return Decision(None, "not_activated", "robot not activated (call ~/bring_up or "
                            "~/activate)")
        if not robot.homed:
            return Decision(None, "not_homed", "robot not homed (call ~/bring_up or ~/home)")
        if robot.paused:
            return Decision(None, "paused", "robot motion paused (call ~/bring_up or ~/home "
                            "to resume it)")
        if not robot.monitoring_enabled:
            return Decision(None, "monitoring_off", "the measured joints and pose are not "
                            "enabled in the robot's monitoring (call ~/bring_up or ~/connect)")
        if not self._configured:
            return Decision(None, "not_configured", "the velocity settings are not applied "
                            "since activation (call ~/bring_up or ~/home)")
        return None

    def _track(self, robot: RobotView, mono: float) -> None:
        """Forget what the robot forgets: settings at (re)activation, errors at reset."""
        if not robot.connected or not robot.activated:
            self._configured = False
        if self._was_error and not robot.error:
            self.errors.clear()
        elif robot.connected and not robot.error:
            self.errors.forget_stale(mono)
        self._was_error = robot.connected and robot.error
        if not robot.connected:
            self._token = None

    # --- the tick -----------------------------------------------------------------------------
    def decide(self, robot: RobotView, mono: float) -> Decision:
        self._track(robot, mono)
        if robot.connected:
            self.dogs.check(mono)  # counts the link's trips (SafetyStatus input_trips)
        decision = self._decide(robot, mono)
        if decision.velocity is not None:
            self.sent += 1
            self._moving = any(v != 0.0 for v in decision.velocity)
        self.last = decision
        return decision

    def _decide(self, robot: RobotView, mono: float) -> Decision:
        not_ready = self.readiness(robot, mono)
        self._ready = not_ready is None
        if not_ready is not None:
            self._moving = False  # the robot stops by itself, refuses, or is out of reach
            if self.gate.disable(f"robot not ready ({not_ready.category}): enable again once "
                                 "it is back"):
                self.latch_trips += 1
            return not_ready
        allowed, why = self.gate.allows_output(mono)
        if not allowed:
            if self.gate.state == SafetyState.ESTOP:
                return self._stop("estop", why, ERROR)
            return self._stop("disabled", f"{why} (waiting for enable)", WARN)
        if self._refused_frame is not None:
            return self._stop("refused_frame", f"setpoint frame {self._refused_frame!r} is "
                              f"neither robot.world_frame {self.frames.world!r} nor "
                              f"robot.tool_frame {self.frames.tool!r} ({self.refused_frames} "
                              "refused)", ERROR)
        age = mono - self._twist_at
        if self._twist is None or age > self.limits.setpoint_timeout:
            return self._stop("no_setpoint", "no setpoint" if self._twist is None else
                              f"newest setpoint is {age * 1e3:.0f} ms old (timing.setpoint_timeout "
                              f"{self.limits.setpoint_timeout * 1e3:.0f} ms)", WARN)
        velocity = robot_velocity(self._twist, self.limits)
        command = VELOCITY_COMMANDS[self._twist_command]
        if not any(velocity) and not self._moving:
            return Decision(None, "holding", "the setpoint is zero", OK)
        return Decision(velocity, "moving", "", OK, command)

    def _stop(self, category: str, reason: str, level: int) -> Decision:
        """One zero velocity if the robot was moving, else nothing."""
        if self._moving:
            return Decision((0.0,) * 6, "stopping", reason, level)
        return Decision(None, category, reason, level)

    # --- bring-up -----------------------------------------------------------------------------
    def plan(self, robot: RobotView, mono: float) -> tuple[list[str], str]:
        """(the bring-up steps still needed, in order; a blocker no service can clear, or "").

        Steps whose need cannot be known yet (the robot's state behind a connection that is not
        there) are listed as needed; the caller re-plans after every step.
        """
        steps: list[str] = []
        unknown = ["monitoring", "activate", "home", "configure"]
        if not robot.connected:
            return ["connect", *unknown], ""
        if not self.link_ok(mono):
            return ["reconnect", *unknown], ""
        if robot.estop:
            return [], ("the robot's e-stop is pressed: release it and reset it on the robot's "
                        "power supply first")
        if robot.error:
            steps.append("reset_error")
        if not robot.monitoring_enabled:
            steps.append("monitoring")
        if not robot.activated:
            return [*steps, "activate", "home", "configure"], ""
        if not robot.homed:
            steps.append("home")
        if robot.paused:
            steps.append("resume")
        if not self._configured or not robot.homed:
            steps.append("configure")
        return steps, ""

    def service_step(self, service: str, robot: RobotView,
                     mono: float) -> tuple[str, str]:
        """What `service` does next: ("run", step), ("done", note) or ("blocked", reason)."""
        scope = SERVICE_SCOPES[service]
        steps, blocker = self.plan(robot, mono)
        if blocker:
            return "blocked", blocker
        if not steps:
            return "done", "the robot is ready: enable to move"
        if steps[0] in scope:
            return "run", steps[0]
        later = [s for s in steps if s in scope]
        if later:
            return "blocked", (f"{steps[0]} is needed before {later[0]}: call "
                               f"~/{STEP_SERVICE[steps[0]]} first")
        return "done", f"next: ~/{STEP_SERVICE[steps[0]]} ({steps[0]})"


def joint_positions_rad(joints_deg) -> list[float]:
    return [math.radians(float(v)) for v in joints_deg]


def pose_si(pose_mm_deg) -> tuple[list[float], list[float]]:
    """(position m, quaternion xyzw) of a Meca500 pose (x, y, z mm, alpha, beta, gamma deg)."""
    values = [float(v) for v in pose_mm_deg]
    quat = euler_to_quaternion(values[3:6], MECA_EULER)
    return [v * 1e-3 for v in values[:3]], [float(q) for q in quat]
