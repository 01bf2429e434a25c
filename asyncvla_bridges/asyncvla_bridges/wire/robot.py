"""The robot PC's ZMQ state messages: parse, validate, convert to SI units.

Wire format (the lab's robot PC sender, as in Najongs/Insertion_VLA): ``[b"robot_state", payload]``, payload struct ``<ddf12f``
(68 bytes): origin_ts (s), send_ts (s), force (float), 6 joint angles (degrees), 6 end-effector
pose values: x, y, z (mm) then 3 orientation angles (degrees, convention set by the bridge's
`euler_convention` parameter, see asyncvla_core/rotations.py).

ZMQ subscriptions match topic prefixes, so a part 0 such as b"robot_state_debug" still reaches
the subscriber; it is dropped here (reason "topic") instead of being parsed as state.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Sequence

from asyncvla_core.conventions import JOINT_NAMES

from .errors import WireError

TOPIC = b"robot_state"
PAYLOAD = struct.Struct("<ddf12f")
assert PAYLOAD.size == 68
NUM_JOINTS = len(JOINT_NAMES)  # the wire carries as many joint angles as the robot has


@dataclass(frozen=True)
class RobotState:
    """One robot state sample in the sender's units."""

    origin_ts: float
    send_ts: float
    force: float
    joints_deg: tuple[float, ...]       # 6 joint angles, degrees
    position_mm: tuple[float, ...]      # x, y, z, millimetres
    orientation_deg: tuple[float, ...]  # 3 Euler angles, degrees, wire order

    @property
    def joints_rad(self) -> list[float]:
        return [math.radians(a) for a in self.joints_deg]

    @property
    def position_m(self) -> list[float]:
        return [v / 1000.0 for v in self.position_mm]


def parse_robot_message(parts: Sequence[bytes]) -> RobotState:
    """Validate one multipart message; raise WireError(reason) if it must be dropped.

    Reasons: "parts" (not 2 parts), "topic" (part 0 is not exactly b"robot_state"), "size"
    (payload not 68 bytes), "nonfinite" (a NaN or infinite value anywhere in the payload).
    """
    if len(parts) != 2:
        raise WireError("parts", f"expected 2 parts [topic, payload], got {len(parts)}")
    if bytes(parts[0]) != TOPIC:
        raise WireError("topic", f"topic {bytes(parts[0])[:40]!r} is not {TOPIC!r}")
    payload = bytes(parts[1])
    if len(payload) != PAYLOAD.size:
        raise WireError("size", f"payload of {len(payload)} bytes, expected {PAYLOAD.size}")
    values = PAYLOAD.unpack(payload)
    if not all(math.isfinite(v) for v in values):
        raise WireError("nonfinite", "NaN or infinite value in the robot state")
    return RobotState(origin_ts=values[0], send_ts=values[1], force=values[2],
                      joints_deg=values[3:9], position_mm=values[9:12],
                      orientation_deg=values[12:15])
