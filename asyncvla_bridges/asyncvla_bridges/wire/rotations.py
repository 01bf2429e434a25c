"""Euler angles (degrees) to a unit quaternion, for every Euler convention, with numpy only.

Why our own: robot controllers report end-effector orientation as three angles whose meaning
differs per vendor, and tf_transformations / scipy are not dependencies of this project. Getting
the convention wrong silently rotates every pose, so the convention is an explicit parameter and
the definition below is exact.

Convention string: ``"<axes>_<kind>"``, e.g. ``"xyz_extrinsic"``, ``"zyx_intrinsic"``,
``"zyz_intrinsic"``. ``axes`` is three letters from x/y/z with no letter repeated back to back
(the 6 Tait-Bryan and 6 proper-Euler sequences); ``kind`` is ``intrinsic`` or ``extrinsic``.
The three angles (a1, a2, a3) are taken in the order they arrive on the wire, and angle a_k turns
about axis ``axes[k]``. With R_x, R_y, R_z the right-handed elementary rotations (positive angle =
counter-clockwise looking down the axis towards the origin):

- extrinsic ``abc``: first a1 about the fixed axis a, then a2 about the fixed b, then a3 about the
  fixed c:  ``R = R_c(a3) @ R_b(a2) @ R_a(a1)``.
- intrinsic ``abc``: first a1 about a, then a2 about the *rotated* b, then a3 about the twice
  rotated c:  ``R = R_a(a1) @ R_b(a2) @ R_c(a3)``.

So ``xyz_extrinsic`` (roll, pitch, yaw about fixed axes; what ROS/tf2 ``setRPY`` means) equals
``zyx_intrinsic`` with the angles given in reverse order. R maps coordinates in the rotated frame
(the end effector) to the reference frame (the robot base), which is what a PoseStamped's
orientation means. The quaternion is returned as (x, y, z, w), normalised, with w >= 0 (q and -q
are the same rotation; one sign keeps outputs deterministic).
"""
from __future__ import annotations

import math

import numpy as np

from asyncvla_training.rotations import axis_quaternion, quat_multiply

_AXIS_INDEX = {"x": 0, "y": 1, "z": 2}
KINDS = ("intrinsic", "extrinsic")


def parse_convention(convention: str) -> tuple[str, str]:
    """Split and validate a convention string; raise ValueError with the accepted forms."""
    axes, _, kind = convention.strip().lower().partition("_")
    valid = (len(axes) == 3 and all(a in _AXIS_INDEX for a in axes)
             and axes[0] != axes[1] and axes[1] != axes[2] and kind in KINDS)
    if not valid:
        raise ValueError(f"bad Euler convention {convention!r}: expected '<axes>_<kind>' with "
                         "axes like xyz, zyx, zyz (no axis repeated back to back) and kind "
                         "'intrinsic' or 'extrinsic'")
    return axes, kind


def all_conventions() -> list[str]:
    """The 24 accepted conventions (12 axis sequences x intrinsic/extrinsic)."""
    out = []
    for a in "xyz":
        for b in "xyz":
            for c in "xyz":
                if a != b and b != c:
                    out.extend(f"{a}{b}{c}_{kind}" for kind in KINDS)
    return out


def euler_to_quaternion(angles_deg: tuple[float, float, float] | np.ndarray,
                        convention: str) -> np.ndarray:
    """Quaternion (x, y, z, w) of three Euler angles in degrees under `convention` (module doc)."""
    axes, kind = parse_convention(convention)
    qs = [axis_quaternion(axis, math.radians(float(angle)))
          for axis, angle in zip(axes, angles_deg)]
    if kind == "intrinsic":   # R = R_a(a1) R_b(a2) R_c(a3)
        q = quat_multiply(quat_multiply(qs[0], qs[1]), qs[2])
    else:                     # R = R_c(a3) R_b(a2) R_a(a1)
        q = quat_multiply(quat_multiply(qs[2], qs[1]), qs[0])
    q = q / np.linalg.norm(q)
    return -q if q[3] < 0 else q


