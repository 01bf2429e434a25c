#!/usr/bin/env python3
"""A Meca500 emulator on loopback: Mecademic's TCP text protocol with a kinematic state.

Like ros2_control's mock hardware: enough of the robot for the driver and mecademicpy to run
against, and strict where safety matters. It speaks the protocol of the Meca500 programming manual
(firmware 9.x): ASCII commands ``Name(arg,...)`` terminated by ``\\0`` on the control port (10000
by default), responses and events ``[code][text]\\0``; real-time monitoring (``[2200]``/``[2210]``
target/measured joint positions in degrees, ``[2201]``/``[2211]`` target/measured pose in mm and
degrees, ``[2230]`` cycle end, each with a microsecond timestamp) on the monitoring port (10001)
and, after ``SetCtrlPortMonitoring(1)``, on the control port too. Ports are arguments, so tests use
free ones (mecademicpy accepts ``"127.0.0.1:<port>"`` for the control port; with a 9.x firmware it
takes monitoring data from the control port).

State: activated / homed / error / e-stop flags, the flange pose (position, orientation) and six
joint angles. Motion: ``MoveLinVelWrf(vx,vy,vz,wx,wy,wz)`` (mm/s, deg/s, world frame) integrated
at 1 kHz until the velocity timeout (``SetVelTimeout``, 0.05 s default) or a new command;
``MovePose(x,y,z,a,b,g)`` sets the pose at once (no trajectory). Motion commands are refused
with the documented codes when the robot is not activated ([1005]), not homed ([1006]) or in
error ([1011]) and counted in ``refused`` (and every command received is kept in ``received``).
``inject_error`` puts the robot in error ([3005] motion error event, status es=1) until
``ResetError``; ``set_estop(True)`` is the robot's own e-stop: [3070][1], motors deactivated.

Not emulated (only a real robot verifies them): inverse kinematics (the joint angles stay those
of the home position while the flange moves), joint and workspace limits, singularities,
acceleration limits, the robot's own blending, the timing of a real controller, and every
command not listed in ``_handle`` (answered ``[1001]`` unknown command).
"""
from __future__ import annotations

import argparse
import math
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np

FIRMWARE = "9.3.0"
HOME_JOINTS_DEG = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
HOME_POSE = (190.0, 0.0, 308.0, 0.0, 90.0, 0.0)  # mm, deg: the Meca500's zero-joint flange pose


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
    vel_timeout: float = 0.05
    cart_lin_vel: float = 150.0  # mm/s
    cart_ang_vel: float = 45.0  # deg/s
    joint_vel: float = 25.0  # %


_COMMAND = re.compile(r"^-?\s*([A-Za-z_]\w*)\s*(?:\((.*)\))?\s*$")
MOTION = {"movelinvelwrf", "movelinveltrf", "movejointsvel", "movepose", "movelin", "movejoints",
          "movelinrelwrf", "movelinreltrf"}


class Meca500Emulator:
    """Serve the control and monitoring ports on 127.0.0.1 until ``stop()``."""

    def __init__(self, control_port: int = 10000, monitor_port: int = 10001,
                 monitoring_interval: float = 0.015) -> None:
        self.state = RobotState()
        self.monitoring_interval = monitoring_interval
        self.received: list[str] = []  # every command, as received
        self.refused: list[tuple[str, int, float]] = []  # (command, code, monotonic s) refused
        self.fault_at: float | None = None  # monotonic s of the last injected error or e-stop
        self._lock = threading.RLock()
        self._clients: list[tuple[socket.socket, dict]] = []
        self._stop = threading.Event()
        self._servers = []
        for port, kind in ((control_port, "control"), (monitor_port, "monitor")):
            srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            srv.bind(("127.0.0.1", port))
            srv.listen(4)
            srv.settimeout(0.2)
            self._servers.append((srv, kind))
        self.control_port = self._servers[0][0].getsockname()[1]
        self.monitor_port = self._servers[1][0].getsockname()[1]
        self._threads = [threading.Thread(target=self._accept, args=(s, k), daemon=True)
                         for s, k in self._servers]
        self._threads.append(threading.Thread(target=self._physics, daemon=True))

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
            for sock, _ in self._clients:
                sock.close()
        for srv, _ in self._servers:
            srv.close()

    # --- test hooks ---------------------------------------------------------------------------
    def inject_error(self, code: int = 3005, text: str = "Motion error (emulated).") -> None:
        """A robot error: motion stops, the robot stays in error until ResetError."""
        with self._lock:
            self.fault_at = time.monotonic()
            self.state.error = code
            self.state.velocity[:] = 0.0
            self._broadcast(f"[{code}][{text}]")
            self._broadcast_status()

    def set_estop(self, active: bool) -> None:
        """The robot's own e-stop: stop at once, deactivate the motors ([3070] event)."""
        with self._lock:
            self.fault_at = time.monotonic()
            self.state.estop = active
            if active:
                self.state.velocity[:] = 0.0
                self.state.activated = self.state.homed = False
            self._broadcast(f"[3070][{1 if active else 0}]")
            self._broadcast_status()

    def snapshot(self) -> RobotState:
        with self._lock:
            s = self.state
            return RobotState(s.activated, s.homed, s.error, s.estop, s.paused, s.position.copy(),
                              s.rotation.copy(), s.joints.copy(), s.velocity.copy())

    # --- sockets ------------------------------------------------------------------------------
    def _accept(self, srv: socket.socket, kind: str) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = srv.accept()
            except (socket.timeout, OSError):
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = {"kind": kind, "monitor": kind == "monitor"}
            with self._lock:
                if kind == "control" and any(c["kind"] == "control" for _, c in self._clients):
                    self._send(conn, "[3001][Another user is already connected, closing "
                                     "connection.]")
                    conn.close()
                    continue
                self._clients.append((conn, client))
                self._send(conn, f"[3000][Connected to Meca500 R3 v{FIRMWARE}]")
            if kind == "control":
                threading.Thread(target=self._serve, args=(conn, client), daemon=True).start()

    def _send(self, conn: socket.socket, text: str) -> None:
        try:
            conn.sendall((text + "\0").encode("ascii"))
        except OSError:
            self._drop(conn)

    def _drop(self, conn: socket.socket) -> None:
        with self._lock:
            self._clients = [(s, c) for s, c in self._clients if s is not conn]
            if not any(c["kind"] == "control" for _, c in self._clients):
                # A dropped control connection pauses motion (as on the robot).
                self.state.velocity[:] = 0.0
        conn.close()

    def _broadcast(self, text: str, monitoring: bool = False) -> None:
        for conn, client in list(self._clients):
            if not monitoring or client["monitor"]:
                self._send(conn, text)

    def _status_text(self) -> str:
        s = self.state
        flags = (s.activated, s.homed, 0, bool(s.error), s.paused, 0, 0)
        return "[2007][" + ",".join(str(int(f)) for f in flags) + "]"

    def _broadcast_status(self) -> None:
        self._broadcast(self._status_text())

    def _serve(self, conn: socket.socket, client: dict) -> None:
        buffer = b""
        while not self._stop.is_set():
            try:
                conn.settimeout(0.2)
                data = conn.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data:
                break
            buffer += data
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                text = raw.decode("ascii", "replace").strip()
                if text:
                    with self._lock:
                        self.received.append(text)
                        for reply in self._handle(text, client):
                            self._send(conn, reply)
        self._drop(conn)

    # --- commands -----------------------------------------------------------------------------
    def _handle(self, text: str, client: dict) -> list[str]:
        match = _COMMAND.match(text)
        if not match:
            return ["[1001][Unknown command.]"]
        name = match.group(1)
        key = name.lower()
        try:
            args = [float(a) for a in match.group(2).split(",")] if match.group(2) else []
        except ValueError:
            return [f"[1002][Invalid argument(s) for {name}.]"]
        s = self.state
        if key in MOTION:
            code = 1005 if not s.activated else 1006 if not s.homed else 1011 if s.error else 0
            if s.estop:
                code = 1005
            if code:
                self.refused.append((text, code, time.monotonic()))
                return [{1005: "[1005][The robot is not activated.]",
                         1006: "[1006][The robot is not homed.]",
                         1011: "[1011][The robot is in error.]"}[code]]
            return self._motion(key, args)
        if key == "activaterobot":
            if s.estop:
                return ["[1013][Activation failed: e-stop active.]"]
            if s.activated:
                return ["[2001][Motors already activated.]"]
            s.activated = True
            return ["[2000][Motors activated.]", self._status_text()]
        if key == "deactivaterobot":
            s.activated = s.homed = False
            s.velocity[:] = 0.0
            return ["[2004][Motors deactivated.]", self._status_text()]
        if key == "home":
            if not s.activated:
                self.refused.append((text, 1005, time.monotonic()))
                return ["[1005][The robot is not activated.]"]
            if s.homed:
                return ["[2003][Homing already done.]"]
            s.homed = True
            return ["[2002][Homing done.]", self._status_text()]
        if key == "reseterror":
            if not s.error:
                return ["[2006][There was no error to reset.]"]
            s.error = 0
            return ["[2005][The error was reset.]", self._status_text()]
        if key == "getstatusrobot":
            return [self._status_text()]
        if key == "clearmotion":
            s.velocity[:] = 0.0
            return ["[2044][The motion was cleared.]"]
        if key == "pausemotion":
            s.paused, s.velocity[:] = True, 0.0
            return ["[2042][Motion paused.]", self._status_text()]
        if key == "resumemotion":
            s.paused = False
            return ["[2043][Motion resumed.]", self._status_text()]
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
        if key == "getrobotserial":
            return ["[2083][m500-00000000-emulator]"]
        if key == "getfwversionfull":
            return [f"[2082][v{FIRMWARE}.0-emulator]"]
        if key == "getrealtimemonitoring":
            return ["[2117][2210,2211]"]
        if key == "getmonitoringinterval":
            return [f"[2116][{self.monitoring_interval:.3f}]"]
        if key == "setctrlportmonitoring":
            client["monitor"] = bool(args and args[0])
            return [f"[2096][{int(client['monitor'])}]", self._status_text()]
        if key in ("setrtc", "setmonitoringinterval", "setrealtimemonitoring", "seteob",
                   "seteom", "connectionwatchdog"):
            if key == "setmonitoringinterval" and args:
                self.monitoring_interval = max(0.001, args[0])
            return []
        return ["[1001][Unknown command.]"]

    def _motion(self, key: str, args: list[float]) -> list[str]:
        s = self.state
        if key == "movelinvelwrf" and len(args) == 6:
            v = np.array(args)
            lin = float(np.linalg.norm(v[:3]))
            ang = float(np.linalg.norm(v[3:]))
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
        return [f"[1002][Invalid argument(s) for {key}.]"]

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
                if now > s.velocity_deadline:
                    s.velocity[:] = 0.0
                if s.activated and s.homed and not s.error and not s.estop:
                    s.position = s.position + s.velocity[:3] * dt
                    s.rotation = _exp(np.radians(s.velocity[3:]) * dt) @ s.rotation
                if now >= next_monitor:
                    next_monitor = now + self.monitoring_interval
                    stamp = int(now * 1e6)
                    euler = matrix_to_euler_xyz(s.rotation)
                    joints = ",".join(f"{v:.6f}" for v in s.joints)
                    pose = ",".join(f"{v:.6f}" for v in (*s.position, *euler))
                    # 2200/2201 (targets) come every cycle; 2210/2211 (measured) are the
                    # optional ones GetRealTimeMonitoring lists. A kinematic robot tracks exactly.
                    for code, values in ((2200, joints), (2201, pose), (2210, joints),
                                         (2211, pose)):
                        self._broadcast(f"[{code}][{stamp},{values}]", monitoring=True)
                    self._broadcast(f"[2230][{stamp}]", monitoring=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--control-port", type=int, default=10000)
    parser.add_argument("--monitor-port", type=int, default=10001)
    args = parser.parse_args()
    emulator = Meca500Emulator(args.control_port, args.monitor_port).start()
    print(f"meca500 emulator ready: control {emulator.control_port}, monitoring "
          f"{emulator.monitor_port}", flush=True)
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
