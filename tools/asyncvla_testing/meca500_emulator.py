#!/usr/bin/env python3
"""A Meca500 emulator on loopback that follows Mecademic's documented rules, not the driver's.

Like ros2_control's mock hardware, enough of the robot for the driver and mecademicpy to run
against; unlike a mock, every behaviour below is taken from a public document (named in
brackets), so a driver that assumes more than the documents promise fails against it.

Sources:
  [PM9]  Programming manual for Meca500, firmware 9.2.x (sections named below).
  [PM11] Mecademic programming manual for the Meca500, firmware 11.3 (resources.mecademic.com,
         the command pages named below).
  [PY]   mecademicpy 3.0.3: its README and the files/functions named below.
  [ISSUE] the review that prompted this emulator ("The Meca500 driver on a robot that follows
         Mecademic's documented rules"); used only where no public document was found.

Protocol
  * ASCII commands ``Name(arg,...)`` ending in ``\\0`` on the control port, replies and events
    ``[code][text]\\0`` [PM9 2 "TCP/IP communication", 2.5 "Responses and messages"]. A leading
    ``-`` (mecademicpy's silent prefix) is accepted.
  * One control connection at a time: a second one gets ``[3001]`` and is closed
    [PM11 3.1.1 "Control connection"; PM9 2.5.3 status messages].
  * Firmware: ``firmware="9.3.0"`` (text API) or ``"11.3.0"`` (JSON API). The welcome message
    carries the version [PY robot_classes.py RobotInfo.from_command_response_string]; from 11.1.5
    mecademicpy sends ``EnableJsonMode`` [PY _robot_base.py _Connect], after which this emulator
    sends the robot status ``[2007]`` as JSON with ``robotStatus.errorCode/errorMsg`` and
    ``motionStatus.paused`` [PY _robot_base.py _handle_robot_status_response]. On 9.x/10.x the
    status is ``[2007][as,hs,sm,es,pm,eob,eom]`` [PM9 2.5.2 "Command responses"], which has no
    error code: the code and text only come in the ``[1xxx]``/``[3xxx]`` message itself
    [PM9 2.5 "Responses and messages"]. Error events are text in both modes (whether firmware 11
    also sends them as JSON is not documented in what was found; the driver handles both).

States and refusals
  * Motion-queue commands (``Move*``, ``SetVelTimeout``, ``SetCartLinVel``, ``SetCartAngVel``,
    ``SetJointVel``, ``SetCheckpoint``, ...) are refused with ``[1005]`` not activated,
    ``[1006]`` not homed, ``[1011]`` in error [PM11 SetVelTimeout, MoveLinVelWrf "Usage
    restrictions"]; ``PauseMotion``/``ResumeMotion`` with ``[1005]``/``[1006]``
    [PM11 PauseMotion "Usage restrictions"]; ``Home`` with ``[1005]`` when not activated.
  * A command error puts the robot in error mode [PM9 2.5.1 "Command error messages": "When the
    Meca500 encounters an error while executing a command, it goes into error mode"]; in error
    mode it refuses commands with ``[1011]`` until ``ResetError`` [PY README "Handling robot
    errors": "the robot will reject all commands until the error is reset"]. Accepted in error
    mode here: requests (``Get*``), ``ResetError``, ``ClearMotion``, ``DeactivateRobot`` and the
    connection settings mecademicpy sends (``SetCtrlPortMonitoring``, ``SetRtc``, ...).
  * Entering error mode pauses motion, and it stays paused after ``ResetError`` until
    ``ResumeMotion`` [PY README "Handling robot errors": ResetError, then ResumeMotion;
    _robot_base.py _set_error_status: "Always consider the robot paused when entering error
    state"]. A control connection that drops also pauses motion [PY README "Disconnect on
    exception": "This disconnection causes the robot to pause motion"]. While paused, motion
    commands are queued, not executed; ``ResumeMotion`` runs the queue, ``ClearMotion`` empties
    it and leaves the robot paused [PM11 PauseMotion; "Motion commands": commands are queued and
    run in order; PY _robot_base.py _check_motion_clear_done waits for the paused status after
    ClearMotion]. Activation ends a pause [PY _robot_base.py _set_activated, firmware < 10].
  * ``SetCheckpoint(n)`` answers ``[3030][n]`` once run and ``[3040][n]`` when discarded by
    ``ClearMotion`` [PM11 "Motion commands": SetCheckpoint is how to follow execution].
  * Defaults are restored at every activation: ``SetVelTimeout`` 0.050 s [PM11 SetVelTimeout
    "Default values"]; velocity-mode motion stops when no new velocity command comes within it
    [PM11 SetVelTimeout, MoveLinVelWrf]. Cartesian/joint velocity defaults (150 mm/s, 45 deg/s,
    25 %) are nominal values the emulator clips to, not checked against a document.

Monitoring [PM9 2.5.4 "Monitoring port messages"; PM11 3.1.2 "Monitoring connection"]
  * Every ``monitoring_interval`` (default 1/60 s: [PY robot_classes.py RobotRtData, "Cyclic data
    interval"]): ``[2200]``/``[2201]`` target joints/pose with a microsecond timestamp (always
    sent: [PY RobotRtData "rt_target_joint_pos ... Always available"]), then ``[2230][t]``
    (cycle end). The measured values ``[2210]``/``[2211]`` are optional and only sent once
    ``SetRealTimeMonitoring`` lists them [PY RobotRtData "rt_joint_pos ... Not enabled by
    default"]; ``SetRealTimeMonitoring`` and ``GetRealTimeMonitoring`` answer ``[2117][codes]``
    [PY _robot_base.py _handle_get_realtime_monitoring_response]. ``[2007]`` on every change.
  * Sent on the monitoring port (10001) and, after ``SetCtrlPortMonitoring(1)``, on the control
    port [PM11 3.1.2], which mecademicpy uses from firmware 9 on [PY _robot_base.py _Connect].

Faults (test hooks)
  * ``inject_error(code, text)``: a motion error event (``[3005]``...) -> error mode, paused.
  * ``estop_event(active)``: the documented ``[3070][1/0]`` e-stop event [PM9 2.5.3 "Status
    messages"], motors deactivated (a robot whose e-stop the controller reports).
  * ``power_cut()`` / ``power_restore()``: the Meca500 R3's e-stop removes the robot's power
    [ISSUE; not found in the public documents searched]: nothing is sent or read any more, and
    no TCP reset either (the link just goes silent); at power-up the robot is deactivated, not
    homed, not paused, with default settings and no control client.
  * ``link_down()`` / ``link_up()``: a pulled cable: the robot keeps running (so its own
    ``SetVelTimeout`` stops it), sends nothing, reads nothing; bytes the client sent meanwhile
    stay in TCP's buffers and are executed when the link comes back, as TCP would deliver them.

Not emulated (only a real robot verifies them): inverse kinematics (the joint angles stay those
of the home position while the flange moves), joint and workspace limits, singularities,
acceleration limits and deceleration, the robot's blending, the timing of a real controller,
recovery mode, safety signals other than the e-stop, ``SetTrf``/``SetWrf`` (the TRF is the
flange, the WRF the base), and every command not listed in ``_handle`` (answered ``[1001]``).
"""
from __future__ import annotations

import argparse
import json
import math
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np

FIRMWARE_TEXT = "9.3.0"
FIRMWARE_JSON = "11.3.0"
DEFAULT_MONITORING_INTERVAL = 1.0 / 60.0  # s [PY RobotRtData "Cyclic data interval"]
HOME_JOINTS_DEG = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
HOME_POSE = (190.0, 0.0, 308.0, 0.0, 90.0, 0.0)  # mm, deg: the Meca500's zero-joint flange pose
DEFAULT_VEL_TIMEOUT = 0.05  # s [PM11 SetVelTimeout "Default values"]
DEFAULT_CART_LIN_VEL = 150.0  # mm/s, nominal
DEFAULT_CART_ANG_VEL = 45.0  # deg/s, nominal
DEFAULT_JOINT_VEL = 25.0  # %, nominal

#: Command names (lower case) that go into the motion queue [PM11 "Motion commands"].
MOTION_QUEUE = {"movelinvelwrf", "movelinveltrf", "movejointsvel", "movepose", "movelin",
                "movejoints", "movelinrelwrf", "movelinreltrf", "setveltimeout", "setcartlinvel",
                "setcartangvel", "setjointvel", "setjointacc", "setcartacc", "setcheckpoint",
                "setblending", "settrf", "setwrf", "delay"}
#: Accepted in any state, error mode included (requests and connection settings).
ANY_STATE = {"reseterror", "clearmotion", "deactivaterobot", "setctrlportmonitoring", "setrtc",
             "setrealtimemonitoring", "setmonitoringinterval", "enablejsonmode",
             "setvariablesmonitoring", "logtrace", "seteob", "seteom"}
#: Optional real-time monitoring codes this emulator can send (measured joints and pose).
OPTIONAL_RT = (2210, 2211)
REFUSALS = {1001: "Empty command or command unrecognized.", 1005: "The robot is not activated.",
            1006: "The robot is not homed.", 1011: "The robot is already in error.",
            1013: "Activation failed: e-stop active."}
# robotStatus.state values [PY mx_robot_def.py MxRobotState]
STATE_POWERED, STATE_ACTIVATED, STATE_RUN = 2, 4, 7


def _rot(axis: int, deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    m = np.eye(3)
    i, j = [(1, 2), (0, 2), (0, 1)][axis]
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    if axis == 1:
        m[i, j], m[j, i] = s, -s
    return m


def euler_xyz_to_matrix(a: float, b: float, g: float) -> np.ndarray:
    """Mecademic's mobile XYZ Euler angles (deg): R = Rx(a) Ry(b) Rz(g)."""
    return _rot(0, a) @ _rot(1, b) @ _rot(2, g)


def matrix_to_euler_xyz(r: np.ndarray) -> tuple[float, float, float]:
    b = math.asin(max(-1.0, min(1.0, r[0, 2])))
    if abs(r[0, 2]) < 1 - 1e-9:
        a = math.atan2(-r[1, 2], r[2, 2])
        g = math.atan2(-r[0, 1], r[0, 0])
    else:  # gimbal lock: put everything in alpha
        a, g = math.atan2(r[2, 1], r[1, 1]), 0.0
    return math.degrees(a), math.degrees(b), math.degrees(g)


def _exp(w: np.ndarray) -> np.ndarray:
    """Rotation matrix of a rotation vector (rad)."""
    theta = float(np.linalg.norm(w))
    if theta < 1e-12:
        return np.eye(3)
    k = w / theta
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(theta) * kx + (1 - math.cos(theta)) * kx @ kx


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


@dataclass
class RobotState:
    activated: bool = False
    homed: bool = False
    error: int = 0  # 0 = no error, else the code
    estop: bool = False
    paused: bool = False
    position: np.ndarray = field(default_factory=lambda: np.array(HOME_POSE[:3]))
    rotation: np.ndarray = field(default_factory=lambda: euler_xyz_to_matrix(*HOME_POSE[3:]))
    joints: np.ndarray = field(default_factory=lambda: np.array(HOME_JOINTS_DEG))
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(6))  # mm/s, deg/s (WRF)
    velocity_deadline: float = 0.0
    vel_timeout: float = DEFAULT_VEL_TIMEOUT
    cart_lin_vel: float = DEFAULT_CART_LIN_VEL
    cart_ang_vel: float = DEFAULT_CART_ANG_VEL
    joint_vel: float = DEFAULT_JOINT_VEL
    error_text: str = ""

    def reset_settings(self) -> None:
        """The defaults every activation restores [PM11 SetVelTimeout "Default values"]."""
        self.vel_timeout, self.cart_lin_vel = DEFAULT_VEL_TIMEOUT, DEFAULT_CART_LIN_VEL
        self.cart_ang_vel, self.joint_vel = DEFAULT_CART_ANG_VEL, DEFAULT_JOINT_VEL


_COMMAND = re.compile(r"^-?\s*([A-Za-z_]\w*)\s*(?:\((.*)\))?\s*$")


class Meca500Emulator:
    """Serve the control and monitoring ports on 127.0.0.1 until ``stop()``."""

    def __init__(self, control_port: int = 10000, monitor_port: int = 10001,
                 monitoring_interval: float = DEFAULT_MONITORING_INTERVAL,
                 firmware: str = FIRMWARE_TEXT, host: str = "127.0.0.1") -> None:
        self.firmware = firmware
        self.host = host
        self.json_capable = _version(firmware) >= (11, 1, 5)
        self.state = RobotState()
        self.monitoring_interval = monitoring_interval
        self.rt_enabled: set[int] = set()  # optional real-time codes enabled
        self.received: list[str] = []  # every command read from the control port, in order
        self.received_at: list[float] = []  # monotonic s of each, same order
        self.refused: list[tuple[str, int, float]] = []  # (command, code, monotonic s)
        self.fault_at: float | None = None  # monotonic s of the last injected fault
        self.monitoring_cycles = 0  # cycles actually sent to a client
        self.json_sent = 0  # [2007] statuses sent as JSON
        self.queued_while_paused: list[tuple[str, float]] = []  # motion commands sent to a
        # paused robot (queued, not run: the robot stands while the sender thinks it moves)
        self.powered = True
        self.link = True
        self._queue: list[tuple[str, list[float], str]] = []  # motion queue while paused
        self._lock = threading.RLock()
        self._clients: list[tuple[socket.socket, dict]] = []
        self._dead: list[socket.socket] = []  # connections of a previous power-up
        self._stop = threading.Event()
        self._servers = []
        for port, kind in ((control_port, "control"), (monitor_port, "monitor")):
            srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                srv.bind((host, port))
            except OSError:
                for other, _ in self._servers:
                    other.close()
                srv.close()
                raise
            srv.listen(4)
            srv.settimeout(0.2)
            self._servers.append((srv, kind))
        self.control_port = self._servers[0][0].getsockname()[1]
        self.monitor_port = self._servers[1][0].getsockname()[1]
        self._threads = [threading.Thread(target=self._accept, args=(s, k), daemon=True)
                         for s, k in self._servers]
        self._threads.append(threading.Thread(target=self._physics, daemon=True))

    @classmethod
    def on_robot_ports(cls, firmware: str = FIRMWARE_TEXT, **kwargs) -> "Meca500Emulator":
        """An emulator on the robot's own ports (10000/10001) at a random 127.x.y.z address.

        Why: mecademicpy enables firmware 11's JSON mode only on port 10000 [PY _robot_base.py
        _Connect]; the whole 127/8 block is loopback, so tests running side by side each get
        the real port numbers on their own address.
        """
        import random

        for _ in range(50):
            host = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
            try:
                return cls(10000, 10001, firmware=firmware, host=host, **kwargs)
            except OSError:
                continue
        raise OSError("no free 127.x.y.z address with ports 10000 and 10001")

    # --- life cycle ---------------------------------------------------------------------------
    def start(self) -> "Meca500Emulator":
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(2.0)
        with self._lock:
            for sock in [s for s, _ in self._clients] + self._dead:
                sock.close()
        for srv, _ in self._servers:
            srv.close()

    # --- test hooks ---------------------------------------------------------------------------
    def inject_error(self, code: int = 3005, text: str = "Motion error (emulated).") -> None:
        """A robot error: motion stops and pauses, the robot stays in error until ResetError."""
        with self._lock:
            self.fault_at = time.monotonic()
            self._broadcast(f"[{code}][{text}]")
            self._enter_error(code, text)

    def estop_event(self, active: bool) -> None:
        """The documented e-stop event [3070]: stop at once, motors deactivated."""
        with self._lock:
            self.fault_at = time.monotonic()
            self.state.estop = active
            if active:
                self.state.velocity[:] = 0.0
                self.state.activated = self.state.homed = False
            self._broadcast(f"[3070][{1 if active else 0}]")
            self._broadcast_status()

    set_estop = estop_event  # the name older tests use

    def power_cut(self) -> None:
        """The R3's e-stop: power gone, the link silent (no TCP reset), the arm stopped."""
        with self._lock:
            self.fault_at = time.monotonic()
            self.powered = False
            self.state.velocity[:] = 0.0
            for sock, client in self._clients:
                client["dead"] = True
                self._dead.append(sock)
            self._clients = []

    def power_restore(self) -> None:
        """Power back: a fresh boot (deactivated, not homed, defaults, no client)."""
        with self._lock:
            position, rotation = self.state.position.copy(), self.state.rotation.copy()
            self.state = RobotState(position=position, rotation=rotation)
            self.rt_enabled.clear()
            self._queue.clear()
            self.monitoring_interval = DEFAULT_MONITORING_INTERVAL
            self.powered = True

    def link_down(self) -> None:
        """Cable pulled: nothing sent or read; the robot itself keeps running."""
        with self._lock:
            self.fault_at = time.monotonic()
            self.link = False

    def link_up(self) -> None:
        with self._lock:
            self.link = True

    def snapshot(self) -> RobotState:
        with self._lock:
            s = self.state
            return RobotState(s.activated, s.homed, s.error, s.estop, s.paused, s.position.copy(),
                              s.rotation.copy(), s.joints.copy(), s.velocity.copy(),
                              s.velocity_deadline, s.vel_timeout, s.cart_lin_vel, s.cart_ang_vel,
                              s.joint_vel, s.error_text)

    def commands(self, prefix: str, since: float = -math.inf) -> list[str]:
        """Commands received (case-insensitive prefix, silent dash removed) at or after `since`."""
        with self._lock:
            return [c for c, t in zip(self.received, self.received_at)
                    if t >= since and c.lstrip("-").lower().startswith(prefix.lower())]

    # --- sockets ------------------------------------------------------------------------------
    def _accept(self, srv: socket.socket, kind: str) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = srv.accept()
            except (socket.timeout, OSError):
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = {"kind": kind, "monitor": kind == "monitor", "json": False, "dead": False}
            with self._lock:
                if not self.powered or not self.link:  # nobody there to answer
                    conn.close()
                    continue
                if kind == "control" and any(c["kind"] == "control" for _, c in self._clients):
                    self._send(conn, client, "[3001][Another user is already connected, "
                                             "closing connection.]")
                    conn.close()
                    continue
                self._clients.append((conn, client))
                self._send(conn, client, f"[3000][Connected to Meca500 R3 v{self.firmware}]")
                if kind == "monitor":
                    self._send(conn, client, self._status_text(client))
            if kind == "control":
                threading.Thread(target=self._serve, args=(conn, client), daemon=True).start()

    def _send(self, conn: socket.socket, client: dict, text: str) -> None:
        if client["dead"] or not self.link or not self.powered:
            return  # a silent link: nothing goes out, and no reset either
        try:
            conn.sendall((text + "\0").encode("ascii"))
        except OSError:
            self._drop(conn)

    def _drop(self, conn: socket.socket) -> None:
        with self._lock:
            was = [c for s, c in self._clients if s is conn]
            self._clients = [(s, c) for s, c in self._clients if s is not conn]
            if was and was[0]["kind"] == "control" and self.state.activated:
                # A dropped control connection pauses motion [PY README "Disconnect on exception"]
                self.state.velocity[:] = 0.0
                self.state.paused = True
                self._broadcast_status()
        conn.close()

    def _broadcast(self, text: str, monitoring: bool = False) -> None:
        for conn, client in list(self._clients):
            if not monitoring or client["monitor"]:
                self._send(conn, client, text)

    def _status_text(self, client: dict) -> str:
        s = self.state
        if client["json"]:
            self.json_sent += 1
            state = STATE_RUN if s.activated and s.homed else \
                STATE_ACTIVATED if s.activated else STATE_POWERED
            return json.dumps({"code": 2007, "metaData": {"msgType": 10}, "data": {
                "robotStatus": {"state": state, "simMode": 0, "recovery": False,
                                "errorCode": int(s.error), "errorMsg": s.error_text,
                                "brakesEngaged": not s.activated},
                "motionStatus": {"paused": s.paused, "cleared": False, "eob": True,
                                 "eom": True}}})
        flags = (s.activated, s.homed, 0, bool(s.error), s.paused, 1, 1)
        return "[2007][" + ",".join(str(int(f)) for f in flags) + "]"

    def _broadcast_status(self) -> None:
        for conn, client in list(self._clients):
            self._send(conn, client, self._status_text(client))

    def _serve(self, conn: socket.socket, client: dict) -> None:
        buffer = b""
        while not self._stop.is_set():
            if client["dead"]:
                return  # a previous power-up's connection: silent until the emulator stops
            if not self.link:
                time.sleep(0.005)  # leave the bytes in TCP's buffers, as a pulled cable does
                continue
            try:
                conn.settimeout(0.05)
                data = conn.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data:
                break
            buffer += data
            while b"\0" in buffer or b"\n" in buffer:
                cut = min(i for i in (buffer.find(b"\0"), buffer.find(b"\n")) if i >= 0)
                raw, buffer = buffer[:cut], buffer[cut + 1:]
                text = raw.decode("ascii", "replace").strip()
                if text:
                    with self._lock:
                        if client["dead"]:
                            return
                        self.received.append(text)
                        self.received_at.append(time.monotonic())
                        for reply in self._handle(text, client):
                            self._send(conn, client, reply)
        if not client["dead"]:
            self._drop(conn)

    # --- commands -----------------------------------------------------------------------------
    def _enter_error(self, code: int, text: str) -> None:
        s = self.state
        if not s.error:
            s.error, s.error_text = code, text
        s.velocity[:] = 0.0
        s.paused = True
        self._broadcast_status()

    def _refuse(self, text: str, code: int, detail: str = "") -> list[str]:
        """A command error: reported, and the robot goes into error mode [PM9 2.5.1]."""
        self.refused.append((text, code, time.monotonic()))
        message = REFUSALS.get(code, "Command error.") + detail
        reply = f"[{code}][{message}]"
        self._enter_error(code, message)
        return [reply]

    def _handle(self, text: str, client: dict) -> list[str]:
        match = _COMMAND.match(text)
        if not match:
            return self._refuse(text, 1001, f" - Command: '{text}'")
        name = match.group(1)
        key = name.lower()
        raw_args = match.group(2)
        s = self.state
        if key.startswith("get"):
            return self._request(key, client)
        if s.error and key not in ANY_STATE:
            return self._refuse(text, 1011)
        try:
            args = [float(a) for a in raw_args.split(",")] if raw_args and key not in (
                "setrealtimemonitoring", "logtrace") else []
        except ValueError:
            return self._refuse(text, 1001, f" - Command: '{text}'")
        if key in MOTION_QUEUE or key in ("pausemotion", "resumemotion"):
            code = 1005 if not s.activated else 1006 if not s.homed else 0
            if code:
                return self._refuse(text, code)
            if key == "pausemotion":
                s.paused, s.velocity[:] = True, 0.0
                return ["[2042][Motion paused.]", self._status_text(client)]
            if key == "resumemotion":
                s.paused = False
                replies = ["[2043][Motion resumed.]", self._status_text(client)]
                queued, self._queue = self._queue, []
                for qkey, qargs, qtext in queued:
                    replies += self._motion(qkey, qargs, qtext)
                return replies
            if s.paused:
                self._queue.append((key, args, text))
                self.queued_while_paused.append((text, time.monotonic()))
                return []
            return self._motion(key, args, text)
        if key == "activaterobot":
            if s.estop:
                return self._refuse(text, 1013)
            if s.activated:
                return ["[2001][Motors already activated.]"]
            s.activated, s.paused = True, False
            s.reset_settings()
            return ["[2000][Motors activated.]", self._status_text(client)]
        if key == "deactivaterobot":
            s.activated = s.homed = False
            s.velocity[:] = 0.0
            self._queue.clear()
            return ["[2004][Motors deactivated.]", self._status_text(client)]
        if key == "home":
            if not s.activated:
                return self._refuse(text, 1005)
            if s.homed:
                return ["[2003][Homing already done.]"]
            s.homed = True
            return ["[2002][Homing done.]", self._status_text(client)]
        if key == "reseterror":
            if not s.error:
                return ["[2006][There was no error to reset.]"]
            s.error, s.error_text = 0, ""
            return ["[2005][The error was reset.]", self._status_text(client)]
        if key == "clearmotion":
            s.velocity[:] = 0.0
            discarded = [f"[3040][{int(a[0])}]" for k, a, _ in self._queue
                         if k == "setcheckpoint" and a]
            self._queue.clear()
            if s.activated:
                s.paused = True  # cleared motion stays paused [PY _check_motion_clear_done]
            return ["[2044][The motion was cleared.]", *discarded, self._status_text(client)]
        if key == "setctrlportmonitoring":
            client["monitor"] = bool(args and args[0])
            return [f"[2096][{int(client['monitor'])}]", self._status_text(client)]
        if key == "enablejsonmode":
            if not self.json_capable:
                return self._refuse(text, 1001, f" - Command: '{text}'")
            client["json"] = True
            return []
        if key == "setrealtimemonitoring":
            codes = {int(a) for a in (raw_args or "").split(",") if a.strip().isdigit()}
            self.rt_enabled = codes & set(OPTIONAL_RT)
            return [self._rt_list()]
        if key == "setmonitoringinterval":
            if args:
                self.monitoring_interval = max(0.001, min(1.0, args[0]))
            return []
        if key in ("setrtc", "setvariablesmonitoring", "logtrace", "seteob", "seteom"):
            return []
        return self._refuse(text, 1001, f" - Command: '{text}'")

    def _rt_list(self) -> str:
        return "[2117][" + ",".join(str(c) for c in sorted(self.rt_enabled)) + "]"

    def _request(self, key: str, client: dict) -> list[str]:
        """Requests (Get*), answered in any state."""
        if key == "getstatusrobot":
            return [self._status_text(client)]
        if key == "getrobotserial":
            return ["[2083][m500-00000000-emulator]"]
        if key == "getfwversionfull":
            return [f"[2082][v{self.firmware}.0-emulator]"]
        if key == "getrealtimemonitoring":
            return [self._rt_list()]
        if key == "getmonitoringinterval":
            return [f"[2116][{self.monitoring_interval:.6f}]"]
        return [f"[1001][{REFUSALS[1001]}]"]  # an unknown request (not emulated)

    def _motion(self, key: str, args: list[float], text: str) -> list[str]:
        s = self.state
        if key in ("movelinvelwrf", "movelinveltrf") and len(args) == 6:
            v = np.array(args)
            if key == "movelinveltrf":  # TRF components -> WRF (the TRF is the flange here)
                v = np.concatenate([s.rotation @ v[:3], s.rotation @ v[3:]])
            lin, ang = float(np.linalg.norm(v[:3])), float(np.linalg.norm(v[3:]))
            if lin > s.cart_lin_vel:
                v[:3] *= s.cart_lin_vel / lin
            if ang > s.cart_ang_vel:
                v[3:] *= s.cart_ang_vel / ang
            s.velocity = v
            s.velocity_deadline = time.monotonic() + s.vel_timeout
            return []
        if key == "movepose" and len(args) == 6:
            s.position = np.array(args[:3])
            s.rotation = euler_xyz_to_matrix(*args[3:])
            return []
        if key == "setveltimeout" and args:
            s.vel_timeout = max(0.001, min(1.0, args[0]))
            return []
        if key == "setcartlinvel" and args:
            s.cart_lin_vel = args[0]
            return []
        if key == "setcartangvel" and args:
            s.cart_ang_vel = args[0]
            return []
        if key == "setjointvel" and args:
            s.joint_vel = args[0]
            return []
        if key == "setcheckpoint" and args:
            return [f"[3030][{int(args[0])}]"]
        return self._refuse(text, 1001, f" - Command: '{text}' (not emulated)")

    # --- kinematics and monitoring ------------------------------------------------------------
    def _physics(self) -> None:
        last = time.monotonic()
        next_monitor = last
        while not self._stop.is_set():
            time.sleep(0.001)
            now = time.monotonic()
            dt, last = now - last, now
            with self._lock:
                s = self.state
                if now > s.velocity_deadline or s.paused or not self.powered:
                    s.velocity[:] = 0.0
                if s.activated and s.homed and not s.error and not s.estop and self.powered:
                    s.position = s.position + s.velocity[:3] * dt
                    s.rotation = _exp(np.radians(s.velocity[3:]) * dt) @ s.rotation
                if now >= next_monitor:
                    next_monitor = now + self.monitoring_interval
                    if self.powered and self.link and any(c["monitor"] for _, c in
                                                          self._clients):
                        self._monitoring_cycle(now)

    def _monitoring_cycle(self, now: float) -> None:
        s = self.state
        stamp = int(now * 1e6)
        euler = matrix_to_euler_xyz(s.rotation)
        joints = ",".join(f"{v:.6f}" for v in s.joints)
        pose = ",".join(f"{v:.6f}" for v in (*s.position, *euler))
        # 2200/2201 (targets) come every cycle; 2210/2211 (measured) only once enabled. A
        # kinematic robot tracks exactly, so measured = target.
        messages = [(2200, joints), (2201, pose)]
        messages += [(c, joints if c == 2210 else pose) for c in sorted(self.rt_enabled)]
        for code, values in messages:
            self._broadcast(f"[{code}][{stamp},{values}]", monitoring=True)
        self._broadcast(f"[2230][{stamp}]", monitoring=True)
        self.monitoring_cycles += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--control-port", type=int, default=10000)
    parser.add_argument("--monitor-port", type=int, default=10001)
    parser.add_argument("--firmware", default=FIRMWARE_TEXT,
                        help=f"{FIRMWARE_TEXT} (text API) or {FIRMWARE_JSON} (JSON API)")
    args = parser.parse_args()
    emulator = Meca500Emulator(args.control_port, args.monitor_port,
                               firmware=args.firmware).start()
    print(f"meca500 emulator ready: control {emulator.control_port}, monitoring "
          f"{emulator.monitor_port}, firmware {emulator.firmware}", flush=True)
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
