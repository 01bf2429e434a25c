"""The executor's three standard outputs, published by a real rclpy node and received over DDS."""
from __future__ import annotations

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped, TwistStamped
from trajectory_msgs.msg import JointTrajectory

from asyncvla_common.timeconv import ns_to_stamp
from asyncvla_executor.executor_core import Setpoint, TickResult
from asyncvla_executor.executor_outputs import OUTPUTS, output_class
from asyncvla_testing.ros_listener import RosListener

TYPES = {"pose": PoseStamped, "twist": TwistStamped, "joint_trajectory": JointTrajectory}


def test_output_registry_refuses_what_it_cannot_carry():
    assert set(OUTPUTS) == set(TYPES)
    with pytest.raises(ValueError, match="joint_trajectory"):
        output_class("pose", "joint_delta")
    with pytest.raises(ValueError, match="unknown output"):
        output_class("wrench", "ee_delta")


@pytest.mark.parametrize("key", sorted(TYPES))
def test_setpoint_and_hold_messages(ros_env, key):
    cls = OUTPUTS[key]
    with RosListener(int(ros_env["ROS_DOMAIN_ID"]), {cls.default_topic: TYPES[key]}) as ros:
        out = cls(ros.node, "", "base_link", [f"joint_{i}" for i in range(1, 7)], 0.01)
        target = np.array([0.2, -0.1, 0.3, 0.0, 0.0, np.pi / 2])
        setpoint = Setpoint(10_000_000, target, np.array([0.01, 0.0, 0.0, 0.0, 0.0, 0.1]))
        stamp = ns_to_stamp(0)
        ros.wait_until(lambda: out._pub.get_subscription_count() > 0, 10, "matched")
        out.send(setpoint, stamp)
        held = out.send_hold(TickResult(None, "estop", "e-stop", target, True), stamp)
        again = out.send_hold(TickResult(None, "estop", "e-stop", target, False), stamp)
        msgs = ros[cls.default_topic].wait_for(1 + held + again, 5)
    first = msgs[0]
    if key == "pose":
        assert first.header.frame_id == "base_link"
        p, o = first.pose.position, first.pose.orientation
        assert [p.x, p.y, p.z] == pytest.approx(target[:3])
        assert [o.x, o.y, o.z, o.w] == pytest.approx([0, 0, np.sqrt(0.5), np.sqrt(0.5)])
        assert (held, again) == (True, False)  # the hold pose once
    elif key == "twist":
        assert [first.twist.linear.x, first.twist.angular.z] == pytest.approx([0.01, 0.1])
        assert (held, again) == (True, True)  # zero twists while holding
        assert msgs[-1].twist.linear.x == 0.0 and msgs[-1].twist.angular.z == 0.0
    else:
        assert first.joint_names == [f"joint_{i}" for i in range(1, 7)]
        assert list(first.points[0].positions) == pytest.approx(list(target))
        assert first.points[0].time_from_start.nanosec == 10_000_000
        assert (held, again) == (True, False)
        assert msgs[-1].points == []  # empty trajectory: the controller stops and holds
