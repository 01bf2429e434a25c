"""quaternion_to_euler is the inverse of euler_to_quaternion, for every convention.

A sender of the lab's robot wire format (the Meca500 reports mobile-XYZ Euler angles in degrees)
turns a pose into three angles; the robot bridge turns them back with euler_to_quaternion. If
the two disagree, every pose the bridge publishes is rotated. Checked: random rotations for all
24 conventions (rotation -> angles -> the same rotation), random angles in the canonical ranges
(angles -> rotation -> the same angles), and the 180-degree and gimbal-lock poses of the
Meca500 table in asyncvla_bridges/test/test_bridge_meca500_pose.py, whose expected angles at
gimbal lock follow the documented choice (the last wire angle is 0, the first carries the turn).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from asyncvla_core.rotations import (all_conventions, euler_to_quaternion,
                                     quaternion_to_euler)

MECA = "xyz_intrinsic"
H = math.sqrt(0.5)


def same_rotation(q, expected, atol: float = 1e-9) -> bool:
    q, expected = np.asarray(q, float), np.asarray(expected, float)
    return bool(np.allclose(q, expected, atol=atol) or np.allclose(q, -expected, atol=atol))


def same_angles(a, b, atol: float = 1e-6) -> bool:
    """Equal modulo 360 degrees (180 and -180 are the same turn)."""
    diff = (np.asarray(a, float) - np.asarray(b, float) + 180.0) % 360.0 - 180.0
    return bool(np.all(np.abs(diff) < atol))


def random_quaternions(n: int, seed: int) -> np.ndarray:
    q = np.random.default_rng(seed).normal(size=(n, 4))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


@pytest.mark.parametrize("convention", all_conventions())
def test_random_rotations_round_trip(convention):
    for q in random_quaternions(300, seed=len(convention) + hash(convention) % 1000):
        angles = quaternion_to_euler(q, convention)
        assert np.all(angles > -180.0) and np.all(angles <= 180.0), angles
        assert same_rotation(euler_to_quaternion(angles, convention), q), (q, angles)


@pytest.mark.parametrize("convention", all_conventions())
def test_canonical_angles_come_back(convention):
    rng = np.random.default_rng(7)
    proper = convention[0] == convention[2]
    for _ in range(300):
        a1, a3 = rng.uniform(-179.0, 179.0, 2)
        a2 = rng.uniform(1.0, 179.0) if proper else rng.uniform(-89.0, 89.0)
        angles = quaternion_to_euler(euler_to_quaternion((a1, a2, a3), convention), convention)
        assert same_angles(angles, (a1, a2, a3)), ((a1, a2, a3), angles)


#: Meca500 (alpha, beta, gamma) -> the angles quaternion_to_euler must give back (degrees).
#: At beta = +-90 alpha and gamma turn about the same axis (Rx(a) Ry(90) = Ry(90) Rz(a),
#: Rx(a) Ry(-90) = Ry(-90) Rz(-a)): only gamma + alpha, or gamma - alpha, is defined, and the
#: inverse sets gamma = 0.
MECA500_CASES = [
    ((0, 0, 0), (0, 0, 0)),
    ((180, 0, 0), (180, 0, 0)),          # tool straight down, the usual insertion pose
    ((0, 0, 180), (0, 0, 180)),
    ((180, 0, 90), (180, 0, 90)),
    ((-180, 0, 90), (180, 0, 90)),
    ((180, 0, -90), (180, 0, -90)),
    ((0, 180, 0), (180, 0, 180)),        # Ry(180) = Rx(180) Rz(180)
    ((90, 90, 0), (90, 90, 0)),
    ((0, 90, 90), (90, 90, 0)),
    ((45, 90, -45), (0, 90, 0)),
    ((30, 90, 30), (60, 90, 0)),
    ((30, -90, 30), (0, -90, 0)),        # gamma - alpha = 0
    ((10, -90, 50), (-40, -90, 0)),      # gamma - alpha = 40 -> alpha = -40
]


@pytest.mark.parametrize("angles, expected", MECA500_CASES)
def test_meca500_180_degree_and_gimbal_poses(angles, expected):
    q = euler_to_quaternion(angles, MECA)
    back = quaternion_to_euler(q, MECA)
    assert same_angles(back, expected), back
    assert same_rotation(euler_to_quaternion(back, MECA), q)


def test_hand_worked_quaternions_give_the_meca500_angles():
    # Worked by hand from R = Rx(alpha) Ry(beta) Rz(gamma) (see test_bridge_meca500_pose.py):
    # qx(180) qz(90) = (H, -H, 0; 0) and qx(90) qy(90) = (1/2, 1/2, 1/2; 1/2).
    assert same_angles(quaternion_to_euler((H, -H, 0, 0), MECA), (180, 0, 90))
    assert same_angles(quaternion_to_euler((0.5, 0.5, 0.5, 0.5), MECA), (90, 90, 0))
    assert same_angles(quaternion_to_euler((0, -H, 0, H), MECA), (0, -90, 0))


@pytest.mark.parametrize("beta", [89.99, 89.9999, 89.999999, -89.99, -89.999999])
def test_near_gimbal_lock_keeps_the_rotation(beta):
    for alpha, gamma in ((45.0, -45.0), (10.0, 20.0), (-170.0, 160.0)):
        q = euler_to_quaternion((alpha, beta, gamma), MECA)
        back = quaternion_to_euler(q, MECA)
        assert abs(back[1] - beta) < 1e-3, back
        assert same_rotation(euler_to_quaternion(back, MECA), q, atol=1e-7), (back, q)


@pytest.mark.parametrize("bad", [(0, 0, 0, 0), (float("nan"), 0, 0, 1), (0, 0, 0, float("inf"))])
def test_bad_quaternion_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="zero or not finite"):
        quaternion_to_euler(bad, MECA)


def test_bad_convention_is_a_clear_error():
    with pytest.raises(ValueError, match="bad Euler convention"):
        quaternion_to_euler((0, 0, 0, 1), "xxy_intrinsic")
