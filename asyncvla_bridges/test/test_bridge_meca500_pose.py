"""The lab's robot is a Mecademic Meca500: its poses must come out right with default parameters.

Mecademic documents the orientation of GetPose (alpha, beta, gamma, degrees) as mobile (intrinsic)
XYZ Euler angles: first alpha about the base x axis, then beta about the new y axis, then gamma
about the twice-rotated z axis, R = Rx(alpha) Ry(beta) Rz(gamma). The quaternions below were
worked out by hand from that definition (the product qx(alpha) qy(beta) qz(gamma), each
q = (sin(t/2) axis, cos(t/2)) in (x, y, z, w) order), not with the code under test; a second check
builds R from elementary matrices written out here. The robot bridge's default
`euler_convention` must reproduce every row, in a unit test and in a real bridge process.
"""
from __future__ import annotations

import math
import os
import sys
import time

import numpy as np
import pytest

from asyncvla_bridges.bridge_config import ROBOT_BRIDGE_PARAMETERS
from asyncvla_core.rotations import euler_to_quaternion
from asyncvla_core.rotations import quaternion_to_matrix

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))

from asyncvla_testing.bridge_harness import domain_id, start_bridge  # noqa: E402
from asyncvla_testing.lab_senders import RobotPublisher, robot_payload  # noqa: E402
from asyncvla_testing.ros_listener import RosListener  # noqa: E402

H = math.sqrt(0.5)
S15, C15 = math.sin(math.radians(15)), math.cos(math.radians(15))
S22, C22 = math.sin(math.radians(22.5)), math.cos(math.radians(22.5))

#: (alpha, beta, gamma) in degrees -> the unit quaternion (x, y, z, w), up to sign.
MECA500_POSES = [
    ((0, 0, 0), (0, 0, 0, 1)),
    ((30, 0, 0), (S15, 0, 0, C15)),
    ((0, -45, 0), (0, -S22, 0, C22)),
    ((0, 0, 180), (0, 0, 1, 0)),
    # Tool pointing straight down, the usual insertion pose: 180 deg about x.
    ((180, 0, 0), (1, 0, 0, 0)),
    # qx(180) qz(90) = (1,0,0;0)(0,0,H;H) = (H, -H, 0; 0). Extrinsic xyz reads these angles as
    # Rz(90) Rx(180), which is 180 deg away: the error the old default made on this robot.
    ((180, 0, 90), (H, -H, 0, 0)),
    ((-180, 0, 90), (H, -H, 0, 0)),        # -180 and 180 about x are the same turn
    ((180, 0, -90), (H, H, 0, 0)),         # (1,0,0;0)(0,0,-H;H) = (H, H, 0; 0)
    # qx(90) qz(90) = (H,0,0;H)(0,0,H;H) = (1/2, -1/2, 1/2; 1/2)
    ((90, 0, 90), (0.5, -0.5, 0.5, 0.5)),
    # Gimbal lock at beta = 90: alpha and gamma turn about the same axis, only their sum counts.
    # qx(90) qy(90) = (1/2, 1/2, 1/2; 1/2) and qy(90) qz(90) = (1/2, 1/2, 1/2; 1/2).
    ((90, 90, 0), (0.5, 0.5, 0.5, 0.5)),
    ((0, 90, 90), (0.5, 0.5, 0.5, 0.5)),
    ((45, 90, -45), (0, H, 0, H)),          # alpha + gamma = 0: just Ry(90)
    # At beta = -90, Rx(a) Ry(-90) = Ry(-90) Rz(-a): only gamma - alpha counts.
    ((30, -90, 30), (0, -H, 0, H)),
]
#: Near gimbal lock the angles are ill-conditioned but the rotation is not: within 1e-4.
NEAR_GIMBAL = [((45, 89.999, -45), (0, H, 0, H)), ((10, 89.99, -10), (0, H, 0, H))]


def default_convention() -> str:
    return next(p.default for p in ROBOT_BRIDGE_PARAMETERS if p.name == "pose.euler_convention")


def elementary(axis: str, deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return {"x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
            "y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
            "z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])}[axis]


def same_rotation(q, expected, atol: float) -> bool:
    q, expected = np.asarray(q, float), np.asarray(expected, float)
    return bool(np.allclose(q, expected, atol=atol) or np.allclose(q, -expected, atol=atol))


@pytest.mark.parametrize("angles, expected", MECA500_POSES + NEAR_GIMBAL)
def test_default_convention_reads_meca500_poses(angles, expected):
    q = euler_to_quaternion(angles, default_convention())
    assert same_rotation(q, expected, atol=1e-4 if angles[1] % 90 else 1e-12), q
    matrix = elementary("x", angles[0]) @ elementary("y", angles[1]) @ elementary("z", angles[2])
    np.testing.assert_allclose(quaternion_to_matrix(q), matrix, atol=1e-12)


def test_tool_axis_points_down_in_the_insertion_pose():
    # The tool's z axis in base coordinates is R's third column.
    r = quaternion_to_matrix(euler_to_quaternion((180, 0, 90), default_convention()))
    np.testing.assert_allclose(r[:, 2], [0, 0, -1], atol=1e-12)


def test_extrinsic_reading_would_be_180_degrees_off():
    """The reason the default changed: the same angles under xyz_extrinsic."""
    meca = euler_to_quaternion((180, 0, 90), default_convention())
    wrong = euler_to_quaternion((180, 0, 90), "xyz_extrinsic")
    angle = 2 * math.degrees(math.acos(min(1.0, abs(float(np.dot(meca, wrong))))))
    assert angle == pytest.approx(180.0, abs=1e-6)


def test_robot_bridge_with_defaults_publishes_meca500_orientations(processes):
    """A real bridge process started without a pose.euler_convention parameter."""
    from geometry_msgs.msg import PoseStamped

    pub = RobotPublisher()
    start_bridge(processes, "robot", {"wire": {"endpoint": pub.endpoint}})
    offset = 7.0
    with RosListener(domain_id(processes), {"/robot/ee_pose": PoseStamped}) as ros:
        k, deadline = 0, time.monotonic() + 20
        while not len(ros["/robot/ee_pose"]) and time.monotonic() < deadline:
            now = time.time() - offset
            pub.send([b"robot_state", robot_payload(now, now, 0.0, [0.0] * 6,
                                                    [200.0, 0.0, 300.0, 0.0, 0.0, 0.0])])
            k += 1
            time.sleep(0.02)
        time.sleep(0.2)
        first = len(ros["/robot/ee_pose"])
        assert first
        for angles, _ in MECA500_POSES:
            now = time.time() - offset
            pub.send([b"robot_state", robot_payload(now, now, 0.0, [0.0] * 6,
                                                    [200.0, 0.0, 300.0, *angles])])
            time.sleep(0.01)
        poses = ros["/robot/ee_pose"].wait_for(first + len(MECA500_POSES), 10)[first:]
    pub.close()
    assert len(poses) == len(MECA500_POSES)
    for (angles, expected), msg in zip(MECA500_POSES, poses):
        o = msg.pose.orientation
        # float32 on the wire: angles like 89.999 are not exact, the table's are.
        assert same_rotation((o.x, o.y, o.z, o.w), expected, atol=1e-6), (angles, o)
