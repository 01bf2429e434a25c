#!/usr/bin/env python3
"""A kinematic robot and a 10 Hz chunk source over real DDS, for the executor's tests and demo.

``robot``: integrates the executor's setpoints at 100 Hz like a robot in velocity mode
(TwistStamped: position += v dt, orientation rotated by w dt, base frame) or pose mode
(PoseStamped: the pose is the target). A setpoint older than ``--command-timeout`` stops it, as
the Meca500's velocity timeout does. Every state line it logs can be parsed by a test
(``STATE t x y z``). Its state (six constant joints, the EE pose in base_link) goes out either

- ``--state-out ros`` (default): directly as the robot bridge's topics (sensor_msgs/JointState,
  geometry_msgs/PoseStamped), or
- ``--state-out wire``: as the lab's robot PC sends it, for the real robot bridge to convert: a
  ZMQ PUB bound to a free loopback port (logged as ``robot state wire: tcp://...``), multipart
  [b"robot_state", struct '<ddf12f'] = origin_ts and send_ts (s, this machine's wall clock),
  force (0.0: the kinematic robot has no sensor), 6 joint angles in degrees, x y z in
  millimetres and the Meca500's mobile-XYZ Euler angles in degrees (R = Rx(alpha) Ry(beta)
  Rz(gamma), the bridge's default pose.euler_convention 'xyz_intrinsic'), at 100 Hz.

Two options for the closed loop on the moving-target task (tools/bench/bench_closed_loop_dds.py):
``--joint-model tracking`` sends the joints the task's recordings hold for the current position
(``tracking_task``'s fixed linear "inverse kinematics") instead of constant ones, so a policy
trained on those recordings sees the state it was trained on; ``--reset-topic`` (PoseStamped,
default /test/robot_reset) puts the robot at a pose at once, velocity zero, as an operator
moving the robot to an episode's start.

``chunks``: at 10 Hz publishes asyncvla_msgs/ActionChunk like the action node (stamp = now,
reference = the newest robot state, offsets of a smooth circular motion from it, plus up to
``--noise`` m of disagreement per chunk, and a slow turn about z); pauses while the latched Bool
``/test/chunks_on`` is False.

Both roles run in one process by default (``--roles robot,chunks``).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from asyncvla_common import qos  # noqa: E402
from asyncvla_common.timeconv import ns_to_stamp, stamp_to_ns  # noqa: E402
from asyncvla_core.conventions import ACTION_SPACES  # noqa: E402
from asyncvla_core.rotations import (matrix_to_quaternion, quat_to_rotvec,  # noqa: E402
                                     quaternion_to_euler, rotvec_to_matrix)
from asyncvla_msgs.msg import ActionChunk  # noqa: E402
from asyncvla_testing.lab_senders import RobotPublisher, robot_payload  # noqa: E402

START = np.array([0.19, 0.0, 0.308])  # m: a Meca500-like home position of the flange
JOINTS = ["joint_1", "joint_2", "joint_3", "joint_4", "joint_5", "joint_6"]
JOINT_POSITIONS = [0.0, 0.1, -0.1, 0.0, 0.3, 0.0]  # rad: constant (a kinematic EE, no IK)
#: The Mecademic Meca500's GetPose orientation: mobile XYZ Euler angles (robot bridge default).
WIRE_EULER_CONVENTION = "xyz_intrinsic"


class KinematicRobot(Node):
    def __init__(self, args) -> None:
        super().__init__("kinematic_robot")
        self.args = args
        self.position = START.copy()
        self.rotation = np.eye(3)
        self.velocity = np.zeros(6)
        self.target: tuple[np.ndarray, np.ndarray] | None = None
        self.command_mono = -1e9
        self.wire: RobotPublisher | None = None
        if args.state_out == "wire":
            self.wire = RobotPublisher()
            print(f"robot state wire: {self.wire.endpoint}", flush=True)
        else:
            self.joint_pub = self.create_publisher(JointState, args.joint_topic,
                                                   qos.stream_publisher())
            self.pose_pub = self.create_publisher(PoseStamped, args.pose_topic,
                                                  qos.stream_publisher())
        self.joint_model = args.joint_model
        if args.reset_topic:
            self.create_subscription(PoseStamped, args.reset_topic, self._on_reset, qos.COMMAND)
        if args.mode == "twist":
            self.create_subscription(TwistStamped, args.setpoint_topic, self._on_twist,
                                     qos.COMMAND)
        else:
            self.create_subscription(PoseStamped, args.setpoint_topic, self._on_pose,
                                     qos.COMMAND)
        self.dt = 0.01
        self.create_timer(self.dt, self._step)
        self._last_step = time.monotonic()
        self._log_at = 0.0

    def _on_twist(self, msg: TwistStamped) -> None:
        lin, ang = msg.twist.linear, msg.twist.angular
        self.velocity = np.array([lin.x, lin.y, lin.z, ang.x, ang.y, ang.z])
        self.command_mono = time.monotonic()

    def _on_pose(self, msg: PoseStamped) -> None:
        p, o = msg.pose.position, msg.pose.orientation
        rot = rotvec_to_matrix(quat_to_rotvec(np.array([o.x, o.y, o.z, o.w])))
        self.target = (np.array([p.x, p.y, p.z]), rot)

    def _on_reset(self, msg: PoseStamped) -> None:
        """Be at this pose now, at rest (an operator moved the robot to an episode's start)."""
        p, o = msg.pose.position, msg.pose.orientation
        self.position = np.array([p.x, p.y, p.z])
        self.rotation = rotvec_to_matrix(quat_to_rotvec(np.array([o.x, o.y, o.z, o.w])))
        self.velocity = np.zeros(6)
        self.command_mono = -1e9
        self.target = (self.position.copy(), self.rotation.copy())
        x, y, z = self.position
        print(f"RESET {x:.6f} {y:.6f} {z:.6f}", flush=True)

    def joint_positions(self) -> list[float]:
        """The joints sent with the pose (rad): constant, or the moving-target task's."""
        if self.joint_model == "tracking":
            from asyncvla_testing.tracking_task import joints_at

            return [float(v) for v in joints_at(self.position)]
        return list(JOINT_POSITIONS)

    def _step(self) -> None:
        now_mono = time.monotonic()
        dt, self._last_step = now_mono - self._last_step, now_mono
        if self.args.mode == "twist":
            if now_mono - self.command_mono > self.args.command_timeout:
                self.velocity = np.zeros(6)
            self.position = self.position + self.velocity[:3] * dt
            self.rotation = rotvec_to_matrix(self.velocity[3:] * dt) @ self.rotation
        elif self.target is not None:
            self.position, self.rotation = self.target
        stamp = ns_to_stamp(self.get_clock().now().nanoseconds)
        quat = matrix_to_quaternion(self.rotation)
        if self.wire is not None:
            self._send_wire(quat)
        else:
            self._publish_ros(stamp, quat)
        if now_mono - self._log_at >= self.args.log_period:
            self._log_at = now_mono
            t = stamp.sec + stamp.nanosec * 1e-9
            x, y, z = self.position
            print(f"STATE {t:.4f} {x:.6f} {y:.6f} {z:.6f}", flush=True)

    def _publish_ros(self, stamp, quat: np.ndarray) -> None:
        joints = JointState()
        joints.header.stamp, joints.name = stamp, JOINTS
        joints.position = self.joint_positions()
        pose = PoseStamped()
        pose.header.stamp, pose.header.frame_id = stamp, "base_link"
        p, o = pose.pose.position, pose.pose.orientation
        p.x, p.y, p.z = (float(v) for v in self.position)
        o.x, o.y, o.z, o.w = (float(v) for v in quat)
        self.joint_pub.publish(joints)
        self.pose_pub.publish(pose)

    def _send_wire(self, quat: np.ndarray) -> None:
        """One state in the robot PC's units: degrees, millimetres, Meca500 Euler angles."""
        origin = time.time()  # the sample's capture time on the "robot PC" clock
        pose = [*(1000.0 * self.position), *quaternion_to_euler(quat, WIRE_EULER_CONVENTION)]
        self.wire.send([b"robot_state", robot_payload(
            origin, time.time(), 0.0, [math.degrees(a) for a in self.joint_positions()], pose)])

    def close(self) -> None:
        if self.wire is not None:
            self.wire.close()


class ChunkSource(Node):
    """Chunks of a circle of radius --radius (m) at --speed (m/s) plus a slow turn about z."""

    H, STEP = 8, 0.1

    def __init__(self, args) -> None:
        super().__init__("chunk_source")
        self.args = args
        self.rng = np.random.default_rng(args.seed)
        self.reference: np.ndarray | None = None
        self.on = True
        self.t0 = time.monotonic()
        self.sequence = 0
        self.create_subscription(PoseStamped, args.pose_topic, self._on_pose,
                                 qos.sensor_subscriber())
        self.create_subscription(Bool, "/test/chunks_on", self._on_switch, qos.LATCHED)
        self.pub = self.create_publisher(ActionChunk, args.action_topic, qos.COMMAND)
        self.create_timer(self.STEP, self._publish)

    def _on_pose(self, msg: PoseStamped) -> None:
        p, o = msg.pose.position, msg.pose.orientation
        self.reference = np.array([p.x, p.y, p.z, *quat_to_rotvec(
            np.array([o.x, o.y, o.z, o.w]))])
        self.ref_stamp_ns = stamp_to_ns(msg.header.stamp)

    def _on_switch(self, msg: Bool) -> None:
        self.on = bool(msg.data)

    def velocity(self, t: float) -> np.ndarray:
        """The motion's velocity (m/s) at time t: around a circle of --radius at --speed."""
        w = self.args.speed / self.args.radius
        return self.args.speed * np.array([np.cos(w * t), np.sin(w * t), 0.0])

    def _publish(self) -> None:
        if not self.on or self.reference is None:
            return
        now_ns = self.get_clock().now().nanoseconds
        t = time.monotonic() - self.t0
        ref = self.reference
        actions = np.zeros((self.H, 7), dtype=np.float32)
        noise = self.rng.uniform(-self.args.noise, self.args.noise, 3)
        offset = np.zeros(3)
        for i in range(self.H):  # offsets from where the robot is: velocity integrated per step
            offset += self.velocity(t + (i + 0.5) * self.STEP) * self.STEP
            actions[i, :3] = offset + noise
            actions[i, 5] = self.args.turn * (i + 1) * self.STEP
            actions[i, 6] = 1.0
        msg = ActionChunk()
        msg.header.stamp, msg.header.frame_id = ns_to_stamp(now_ns), "base_link"
        msg.horizon, msg.action_dim = self.H, 7
        msg.actions = actions.reshape(-1)
        msg.dim_names = list(ACTION_SPACES["ee_delta"])
        msg.action_space = "ee_delta"
        msg.reference = ref.astype(np.float32)
        msg.step_period = self.STEP
        self.sequence += 1
        msg.sequence = self.sequence
        self.pub.publish(msg)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--roles", default="robot,chunks")
    parser.add_argument("--mode", choices=["twist", "pose"], default="twist")
    parser.add_argument("--setpoint-topic", default="/asyncvla/setpoint/twist")
    parser.add_argument("--state-out", choices=["ros", "wire"], default="ros",
                        help="robot state as ROS topics, or the lab's ZMQ wire for the bridge")
    parser.add_argument("--joint-topic", default="/robot/joint_states")
    parser.add_argument("--pose-topic", default="/robot/ee_pose")
    parser.add_argument("--action-topic", default="/asyncvla/action_chunk")
    parser.add_argument("--command-timeout", type=float, default=0.05)
    parser.add_argument("--radius", type=float, default=0.02)
    parser.add_argument("--speed", type=float, default=0.02)
    parser.add_argument("--turn", type=float, default=0.05, help="rad/s about z")
    parser.add_argument("--noise", type=float, default=0.0005)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-period", type=float, default=0.05,
                        help="s between STATE lines (0: every 10 ms step)")
    parser.add_argument("--joint-model", choices=["constant", "tracking"], default="constant",
                        help="joints sent with the pose: constant, or the moving-target task's "
                             "linear map of the position")
    parser.add_argument("--reset-topic", default="/test/robot_reset",
                        help="PoseStamped: be at this pose at once ('' = none)")
    args = parser.parse_args()
    rclpy.init()
    roles = args.roles.split(",")
    nodes = ([KinematicRobot(args)] if "robot" in roles else []) + \
        ([ChunkSource(args)] if "chunks" in roles else [])
    executor = rclpy.executors.SingleThreadedExecutor()
    for node in nodes:
        executor.add_node(node)
    print("kinematic peer ready", flush=True)
    try:
        executor.spin()
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        for node in nodes:
            if isinstance(node, KinematicRobot):
                node.close()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
