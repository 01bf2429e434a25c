"""Euler angles -> quaternion against rotations worked out by hand (asyncvla_core/rotations.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from asyncvla_core.rotations import all_conventions, euler_to_quaternion, parse_convention
from asyncvla_core.rotations import quaternion_to_matrix

H = math.sqrt(0.5)


def elementary(axis: str, deg: float) -> np.ndarray:
    """Right-handed rotation matrices, written out independently of the module."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return {"x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
            "y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
            "z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])}[axis]


@pytest.mark.parametrize("convention, angles, expected", [
    # A single 90 deg turn about x: q = (sin 45, 0, 0, cos 45).
    ("xyz_extrinsic", (90, 0, 0), (H, 0, 0, H)),
    ("xyz_extrinsic", (0, 90, 0), (0, H, 0, H)),
    ("xyz_extrinsic", (0, 0, 90), (0, 0, H, H)),
    ("xyz_extrinsic", (30, 0, 0), (math.sin(math.radians(15)), 0, 0, math.cos(math.radians(15)))),
    # Rz(90) Rx(90) = [[0,0,1],[1,0,0],[0,1,0]]: x->y, y->z, z->x, i.e. 120 deg about (1,1,1);
    # qz*qx = (cs, s^2, cs; c^2) = (1/2, 1/2, 1/2; 1/2).
    ("xyz_extrinsic", (90, 0, 90), (0.5, 0.5, 0.5, 0.5)),
    # Same matrix as intrinsic z-y'-x'' with the angles reversed.
    ("zyx_intrinsic", (90, 0, 90), (0.5, 0.5, 0.5, 0.5)),
    # Intrinsic x-y'-z'' (90, 0, 90) = Rx(90) Rz(90) = [[0,-1,0],[0,0,-1],[1,0,0]]:
    # qx*qz = (cs, -s^2, cs; c^2) = (1/2, -1/2, 1/2; 1/2).
    ("xyz_intrinsic", (90, 0, 90), (0.5, -0.5, 0.5, 0.5)),
    # Proper Euler z-y'-z'' (90, 90, 0) = Rz(90) Ry(90) = [[0,-1,0],[0,0,1],[-1,0,0]]:
    # qz*qy = (-s^2, cs, cs; c^2) = (-1/2, 1/2, 1/2; 1/2).
    ("zyz_intrinsic", (90, 90, 0), (-0.5, 0.5, 0.5, 0.5)),
    # z-y'-z'' (90, 0, 90) is 180 deg about z: (0, 0, 1, 0).
    ("zyz_intrinsic", (90, 0, 90), (0, 0, 1, 0)),
    # 180 deg about x then 180 about y (fixed) = 180 about z: w = 0, sign kept from the product.
    ("xyz_extrinsic", (180, 180, 0), (0, 0, -1, 0)),
])
def test_hand_computed(convention, angles, expected):
    q = euler_to_quaternion(angles, convention)
    np.testing.assert_allclose(q, expected, atol=1e-12)


def test_hand_computed_matrices():
    np.testing.assert_allclose(quaternion_to_matrix(euler_to_quaternion((90, 0, 90),
                                                                        "xyz_extrinsic")),
                               [[0, 0, 1], [1, 0, 0], [0, 1, 0]], atol=1e-12)
    np.testing.assert_allclose(quaternion_to_matrix(euler_to_quaternion((90, 90, 0),
                                                                        "zyz_intrinsic")),
                               [[0, -1, 0], [0, 0, 1], [-1, 0, 0]], atol=1e-12)


def test_every_convention_matches_matrix_products():
    rng = np.random.default_rng(0)
    conventions = all_conventions()
    assert len(conventions) == 24
    for convention in conventions:
        axes, kind = parse_convention(convention)
        for _ in range(20):
            angles = rng.uniform(-180, 180, size=3)
            mats = [elementary(a, ang) for a, ang in zip(axes, angles)]
            expected = (mats[0] @ mats[1] @ mats[2] if kind == "intrinsic"
                        else mats[2] @ mats[1] @ mats[0])
            q = euler_to_quaternion(angles, convention)
            assert abs(np.linalg.norm(q) - 1) < 1e-12 and q[3] >= 0
            np.testing.assert_allclose(quaternion_to_matrix(q), expected, atol=1e-12,
                                       err_msg=f"{convention} {angles}")


def test_extrinsic_equals_reversed_intrinsic():
    rng = np.random.default_rng(1)
    for _ in range(50):
        a = rng.uniform(-180, 180, size=3)
        np.testing.assert_allclose(euler_to_quaternion(a, "xyz_extrinsic"),
                                   euler_to_quaternion(a[::-1], "zyx_intrinsic"), atol=1e-12)


@pytest.mark.parametrize("bad", ["xyz", "xxy_intrinsic", "xyw_extrinsic", "xyz_fixed", "",
                                 "xy_intrinsic"])
def test_bad_conventions_rejected(bad):
    with pytest.raises(ValueError):
        euler_to_quaternion((0, 0, 0), bad)
