#!/usr/bin/env python3
"""Synthetic robot-PC streams on the real topics, for the demo and the integration tests.

Publishes what the bridges would: per view a sensor_msgs/CompressedImage (JPEG) at --camera-fps,
asyncvla_msgs/ForceOctBatch at 650 Hz in batches (--sensor-batch samples per message), and
sensor_msgs/JointState + geometry_msgs/PoseStamped at 100 Hz. Images are pre-encoded (a moving
bar), so the source costs little CPU. Views can be dropped or paused at run time through the
`--pause-file` (a file listing stream names to pause: view names, "sensor", "robot") and faults
injected the same way: "sensor_nan" / "sensor_inf" (non-finite force values), "robot_nan" (NaN
joint positions), "robot_inf" (an infinite EE position), "robot_clock_forward" / "robot_clock_backward" (robot stamps 2 s ahead or
behind, as after a clock step on the robot PC).

`--follow-robot` (the closed-loop demo, with "robot" paused): the streams follow the robot state
another process publishes on /robot/ee_pose: the camera frame shows the bar shifted by the EE's
x motion (one frame per 2 mm), and the force grows by 50 N per metre the EE went down from where
it was first seen (an insertion-like contact), so the policy's inputs change with its actions.
"""
from __future__ import annotations

import argparse
import math
import os
import sys

import cv2
import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, JointState

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from asyncvla_common import qos  # noqa: E402
from asyncvla_common.timeconv import ns_to_stamp  # noqa: E402
from asyncvla_msgs.msg import ForceOctBatch  # noqa: E402

ALINE = 1025


def make_jpegs(width: int, height: int, frames: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    out = []
    for i in range(frames):
        img = base.copy()
        x = int((i / frames) * (width - 20))
        img[:, x:x + 20] = (255, 255, 255)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 70])
        assert ok
        out.append(buf.tobytes())
    return out


class SyntheticSources(Node):
    def __init__(self, args) -> None:
        super().__init__("asyncvla_synthetic_sources")
        self.args = args
        self.views = args.views.split(",") if args.views else []
        self.cam_pubs = {v: self.create_publisher(CompressedImage,
                                                  f"/camera/{v}/image_raw/compressed",
                                                  qos.stream_publisher(2)) for v in self.views}
        self.jpegs = {v: make_jpegs(args.width, args.height, 10, i)
                      for i, v in enumerate(self.views)}
        self.sensor_pub = self.create_publisher(ForceOctBatch, "/sensor/force_oct",
                                                qos.stream_publisher(50))
        self.joint_pub = self.create_publisher(JointState, "/robot/joint_states",
                                               qos.stream_publisher())
        self.pose_pub = self.create_publisher(PoseStamped, "/robot/ee_pose",
                                              qos.stream_publisher())
        self.frame_index = 0
        self.sample_period_ns = int(1e9 / args.sensor_hz)
        self.next_sample_ns = self.get_clock().now().nanoseconds
        self.rng = np.random.default_rng(0)
        self.aline_base = np.sin(np.linspace(0, 20, ALINE)).astype(np.float32)
        self.paused: set[str] = set()
        self.create_timer(1.0 / args.camera_fps, self.publish_cameras)
        self.create_timer(args.sensor_batch / args.sensor_hz, self.publish_sensor)
        self.create_timer(0.01, self.publish_robot)
        self.create_timer(0.2, self.read_pause_file)
        self.read_pause_file()  # before the first publication: a paused stream never starts
        self.robot_xz: tuple[float, float] | None = None  # (x, z) of the followed robot, m
        self.robot_start: tuple[float, float] | None = None
        if args.follow_robot:
            self.create_subscription(PoseStamped, "/robot/ee_pose", self._on_robot_pose,
                                     qos.sensor_subscriber())
        print("SOURCES READY", flush=True)

    def _on_robot_pose(self, msg: PoseStamped) -> None:
        self.robot_xz = (msg.pose.position.x, msg.pose.position.z)
        if self.robot_start is None:
            self.robot_start = self.robot_xz

    def _frame(self, frames: int) -> int:
        if self.robot_xz is None or self.robot_start is None:
            return self.frame_index % frames
        return int(round((self.robot_xz[0] - self.robot_start[0]) / 0.002)) % frames

    def _contact_force(self) -> float:
        if self.robot_xz is None or self.robot_start is None:
            return 0.0
        return 50.0 * max(0.0, self.robot_start[1] - self.robot_xz[1])

    def read_pause_file(self) -> None:
        path = self.args.pause_file
        if path and os.path.exists(path):
            with open(path) as f:
                self.paused = {line.strip() for line in f if line.strip()}
        else:
            self.paused = set()

    def publish_cameras(self) -> None:
        stamp = self.get_clock().now().to_msg()
        self.frame_index += 1
        for view, pub in self.cam_pubs.items():
            if view in self.paused:
                continue
            msg = CompressedImage()
            msg.header.stamp = stamp
            msg.header.frame_id = f"{view}_optical_frame"
            msg.format = "jpeg"
            msg.data = self.jpegs[view][self._frame(len(self.jpegs[view]))]
            pub.publish(msg)

    def publish_sensor(self) -> None:
        now_ns = self.get_clock().now().nanoseconds
        if "sensor" in self.paused:
            self.next_sample_ns = now_ns
            return
        if now_ns - self.next_sample_ns > 1e9:  # after a stall, do not publish a backlog
            self.next_sample_ns = now_ns - self.args.sensor_batch * self.sample_period_ns
        stamps = []
        while self.next_sample_ns <= now_ns:
            stamps.append(self.next_sample_ns)
            self.next_sample_ns += self.sample_period_ns
        if not stamps:
            return
        n = len(stamps)
        msg = ForceOctBatch()
        msg.header.stamp = ns_to_stamp(stamps[-1])
        msg.header.frame_id = "oct_probe"
        msg.num_samples, msg.aline_length = n, ALINE
        msg.sample_stamps = [ns_to_stamp(s) for s in stamps]
        t = np.array(stamps) / 1e9
        msg.force = (0.2 + 0.05 * np.sin(2 * math.pi * 0.5 * t)
                     + self._contact_force()).astype(np.float32)
        if "sensor_nan" in self.paused:
            msg.force = np.full(n, np.nan, dtype=np.float32)
        if "sensor_inf" in self.paused:
            msg.force = np.full(n, np.inf, dtype=np.float32)
        alines = self.aline_base[None, :] + 0.01 * self.rng.standard_normal((n, ALINE))
        msg.alines = alines.astype(np.float32).reshape(-1)
        self.sensor_pub.publish(msg)

    def publish_robot(self) -> None:
        if "robot" in self.paused:
            return
        now_ns = self.get_clock().now().nanoseconds
        t = now_ns / 1e9
        shift = 2e9 if "robot_clock_forward" in self.paused else \
            -2e9 if "robot_clock_backward" in self.paused else 0.0
        stamp = ns_to_stamp(int(now_ns + shift))
        joints = JointState()
        joints.header.stamp = stamp
        joints.name = [f"joint_{i}" for i in range(1, 7)]
        joints.position = [0.1 * math.sin(0.2 * t + i) for i in range(6)]
        if "robot_nan" in self.paused:
            joints.position[2] = math.nan
        self.joint_pub.publish(joints)
        pose = PoseStamped()
        pose.header.stamp = stamp
        pose.header.frame_id = "base_link"
        pose.pose.position.x = 0.4 + 0.01 * math.sin(0.2 * t)
        pose.pose.position.y = 0.0
        pose.pose.position.z = 0.3
        if "robot_inf" in self.paused:
            pose.pose.position.x = math.inf
        pose.pose.orientation.w = 1.0
        self.pose_pub.publish(pose)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", default="view1,view2,view3,view4,view5")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--camera-fps", type=float, default=15.0)
    parser.add_argument("--sensor-hz", type=float, default=650.0)
    parser.add_argument("--sensor-batch", type=int, default=13)
    parser.add_argument("--pause-file", default="")
    parser.add_argument("--follow-robot", action="store_true",
                        help="camera frames and force follow /robot/ee_pose (closed loop)")
    args = parser.parse_args()
    from asyncvla_common.spin import spin_node

    sys.exit(spin_node(lambda: SyntheticSources(args), "SyntheticSources"))


if __name__ == "__main__":
    main()
