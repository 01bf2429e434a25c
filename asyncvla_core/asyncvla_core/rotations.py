"""Rotation math of the whole project, in one place (numpy only: no ROS, no torch).

Quaternions are (x, y, z, w) with R(q) mapping the rotated frame's coordinates to the reference
frame's (a PoseStamped orientation); rotation vectors are axis * angle in radians (REP-103). The
bridges (Euler angles of a robot controller), the action node's output guard and the training
data all use these functions, so a convention can only be defined once.
"""
from __future__ import annotations

import math

import numpy as np

_AXIS_INDEX = {"x": 0, "y": 1, "z": 2}


def axis_quaternion(axis: str, angle_rad: float) -> np.ndarray:
    """(x, y, z, w) of a rotation by `angle_rad` about the unit axis named 'x', 'y' or 'z'."""
    q = np.zeros(4)
    q[_AXIS_INDEX[axis]] = math.sin(angle_rad / 2.0)
    q[3] = math.cos(angle_rad / 2.0)
    return q


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of xyzw quaternions (broadcasting): R(a b) = R(a) R(b)."""
    ax, ay, az, aw = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    bx, by, bz, bw = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack([aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw,
                     aw * bw - ax * bx - ay * by - az * bz], axis=-1)


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    return np.concatenate([-q[..., :3], q[..., 3:]], axis=-1)


def quat_sign_continuous(quats: np.ndarray, anchor: np.ndarray) -> np.ndarray:
    """Unit xyzw quaternions (n, 4) with each sign chosen so the sequence is continuous.

    q and -q are the same rotation; any rule that picks the sign from one quaternion alone (such
    as w >= 0) jumps somewhere (w >= 0 jumps where w crosses 0: a tool pointing straight down).
    Here sample i takes the sign with a non-negative dot product against sample i - 1, and the
    first sample the sign with a non-negative dot product against ``anchor`` (the previous
    sample of the same motion when there is one, else a fixed reference orientation). A zero or
    non-finite quaternion raises ValueError.
    """
    q = np.asarray(quats, dtype=np.float64).reshape(-1, 4)
    norms = np.linalg.norm(q, axis=-1, keepdims=True)
    if q.size and (not np.all(np.isfinite(norms)) or float(norms.min()) < 1e-6):
        raise ValueError("quaternion is zero or not finite")
    q = q / norms
    if not len(q):
        return q
    steps = np.where(np.sum(q[1:] * q[:-1], axis=-1) < 0, -1.0, 1.0)
    first = -1.0 if float(np.dot(q[0], np.asarray(anchor, dtype=np.float64))) < 0 else 1.0
    signs = first * np.cumprod(np.concatenate([[1.0], steps]))
    return q * signs[:, None]


def quat_to_rotvec(q: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle, rad) of unit xyzw quaternions (broadcasting), angle in [0, pi]."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    q = np.where(q[..., 3:4] < 0, -q, q)
    sin_half = np.linalg.norm(q[..., :3], axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(sin_half, q[..., 3:4])
    safe = np.where(sin_half < 1e-12, 1.0, sin_half)
    return np.where(sin_half < 1e-12, 2.0 * q[..., :3], q[..., :3] / safe * angle)


def quat_slerp(q0: np.ndarray, q1: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Spherical interpolation (shortest arc) between unit quaternions, weight ``w`` of q1."""
    q0 = np.asarray(q0, dtype=np.float64)
    q1 = np.asarray(q1, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)[..., None]
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.abs(dot).clip(max=1.0)
    omega = np.arccos(dot)
    sin_omega = np.sin(omega)
    close = sin_omega < 1e-9
    safe = np.where(close, 1.0, sin_omega)
    a = np.where(close, 1.0 - w, np.sin((1.0 - w) * omega) / safe)
    b = np.where(close, w, np.sin(w * omega) / safe)
    out = a * q0 + b * q1
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix of a unit (x, y, z, w) quaternion."""
    x, y, z, w = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def rotvec_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix of a rotation vector (Rodrigues)."""
    v = np.asarray(rotvec, dtype=np.float64).reshape(3)
    theta = float(np.linalg.norm(v))
    k = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    if theta < 1e-12:
        return np.eye(3) + k
    k /= theta
    return np.eye(3) + np.sin(theta) * k + (1.0 - np.cos(theta)) * (k @ k)


def matrix_to_quaternion(matrix: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w), w >= 0, of a rotation matrix (Shepperd's method)."""
    m = np.asarray(matrix, dtype=np.float64)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
    q = np.asarray(q) / np.linalg.norm(q)
    return -q if q[3] < 0 else q


def matrix_to_rotvec(matrix: np.ndarray) -> np.ndarray:
    """Rotation vector (rad) of a rotation matrix, angle in [0, pi]."""
    return quat_to_rotvec(matrix_to_quaternion(matrix))


# --- Euler angles of robot controllers --------------------------------------------------------
# Euler angles (degrees) to a unit quaternion, for every Euler convention. Why our own: robot controllers report end-effector orientation as three angles whose meaning
# differs per vendor, and tf_transformations / scipy are not dependencies of this project. Getting
# the convention wrong silently rotates every pose, so the convention is an explicit parameter and
# the definition below is exact.
#
# Convention string: ``"<axes>_<kind>"``, e.g. ``"xyz_extrinsic"``, ``"zyx_intrinsic"``,
# ``"zyz_intrinsic"``. ``axes`` is three letters from x/y/z with no letter repeated back to back
# (the 6 Tait-Bryan and 6 proper-Euler sequences); ``kind`` is ``intrinsic`` or ``extrinsic``.
# The three angles (a1, a2, a3) are taken in the order they arrive on the wire, and angle a_k turns
# about axis ``axes[k]``. With R_x, R_y, R_z the right-handed elementary rotations (positive angle =
# counter-clockwise looking down the axis towards the origin):
#
# - extrinsic ``abc``: first a1 about the fixed axis a, then a2 about the fixed b, then a3 about the
#   fixed c:  ``R = R_c(a3) @ R_b(a2) @ R_a(a1)``.
# - intrinsic ``abc``: first a1 about a, then a2 about the *rotated* b, then a3 about the twice
#   rotated c:  ``R = R_a(a1) @ R_b(a2) @ R_c(a3)``.
#
# So ``xyz_extrinsic`` (roll, pitch, yaw about fixed axes; what ROS/tf2 ``setRPY`` means) equals
# ``zyx_intrinsic`` with the angles given in reverse order. R maps coordinates in the rotated frame
# (the end effector) to the reference frame (the robot base), which is what a PoseStamped's
# orientation means. The quaternion is returned as (x, y, z, w), normalised, with w >= 0 (q and -q
# are the same rotation; one sign keeps outputs deterministic).

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


#: Below this middle-angle distance (rad) from 0 or pi (proper Euler) or from +-pi/2
#: (Tait-Bryan), the first and third axes coincide and only their sum or difference is defined.
GIMBAL_TOLERANCE_RAD = 1e-7


def quaternion_to_euler(q: np.ndarray, convention: str) -> np.ndarray:
    """The three Euler angles (degrees, wire order) of a unit (x, y, z, w) quaternion: the inverse
    of `euler_to_quaternion` under the same `convention` (module doc).

    Why: a robot controller such as the Mecademic Meca500 reports its pose as three angles, so a
    sender that speaks its wire format (the robot PC, a kinematic stand-in) needs the inverse.
    Method: Bernardes & Viollet, "Quaternion to Euler angles conversion: a direct, general and
    computationally efficient method" (PLoS ONE, 2022), exact for all 12 axis sequences and
    stable near gimbal lock (atan2 of half-angle sums, no arcsin). Angles are wrapped to
    (-180, 180]; the middle one lies in [-90, 90] (Tait-Bryan, e.g. the Meca500's beta) or
    [0, 180] (proper Euler). At gimbal lock (middle angle within GIMBAL_TOLERANCE_RAD of its
    limit) the first and last axes coincide: the last angle is set to 0 and the first carries
    the whole turn (for the Meca500, gamma = 0 and alpha the sum or difference). A zero or
    non-finite quaternion raises ValueError.
    """
    axes, kind = parse_convention(convention)
    q = np.asarray(q, dtype=np.float64).reshape(4)
    norm = float(np.linalg.norm(q))
    if not math.isfinite(norm) or norm < 1e-6:
        raise ValueError("quaternion is zero or not finite")
    q = q / norm
    # An intrinsic sequence abc with angles (a1, a2, a3) is the extrinsic sequence cba with
    # angles (a3, a2, a1): R = Ra(a1) Rb(a2) Rc(a3) either way.
    seq = axes if kind == "extrinsic" else axes[::-1]
    i, j, k = (_AXIS_INDEX[a] for a in seq)
    proper = i == k
    if proper:
        k = 3 - i - j
    sign = (i - j) * (j - k) * (k - i) / 2.0  # +1 for a cyclic i, j, k, else -1
    w = q[3]
    if proper:
        a, b, c, d = w, q[i], q[j], sign * q[k]
    else:
        a, b, c, d = w - q[j], q[i] + sign * q[k], q[j] + w, sign * q[k] - q[i]
    middle = 2.0 * math.atan2(math.hypot(c, d), math.hypot(a, b))
    half_sum, half_diff = math.atan2(b, a), math.atan2(d, c)
    # Extrinsic order: first about seq[0], last about seq[2]. The angle set to 0 at gimbal lock
    # is the one that comes last in the caller's (wire) order.
    at_zero = abs(middle) < GIMBAL_TOLERANCE_RAD
    if at_zero or abs(middle - math.pi) < GIMBAL_TOLERANCE_RAD:
        # Only first + last (= 2 half_sum, middle 0) or last - first (= 2 half_diff, middle pi)
        # is defined. Zero the angle that comes last in the wire order: for an intrinsic
        # sequence that is the extrinsic first.
        if kind == "intrinsic":
            first, last = 0.0, 2.0 * (half_sum if at_zero else half_diff)
        else:
            first, last = 2.0 * (half_sum if at_zero else -half_diff), 0.0
    else:
        first, last = half_sum - half_diff, half_sum + half_diff
    if not proper:
        last *= sign
        middle -= math.pi / 2.0
    angles = [first, middle, last] if kind == "extrinsic" else [last, middle, first]
    out = np.degrees(np.asarray(angles))
    return np.where(out <= -180.0, out + 360.0, np.where(out > 180.0, out - 360.0, out))
