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
