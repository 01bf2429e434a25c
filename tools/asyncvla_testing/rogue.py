#!/usr/bin/env python3
"""A rogue node on the suite's DDS domain: publishes valid-looking but wrong input (tests only).

Each mode reproduces one way a second publisher, a misconfigured sender or a clock step can feed
the action node bad data, on the real topic with the real QoS:

    vl_future      valid VL features stamped one hour ahead
    vl_flood       valid VL features stamped now, at --rate (a second "VLM", model id copied)
    vl_oversize    VL features of --megabytes MB whose header is consistent with the payload
    vl_oversize_header  the same payload with the expected tokens x dim in the header
    sensor_future  ForceOctBatch messages stamped one hour ahead
    joints_other   JointState of 100 joints named other_* (none of the configured ones)
    go             e-stop released then enable pressed (what an intruder would send)

Every message carries a sequence number from 1_000_000 up (VL modes), so a test can prove no
chunk was computed from rogue data. The node publishes --count messages at --rate, then keeps
its publishers alive for --hold seconds and exits cleanly (its DDS entities are removed at once).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import rclpy
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from asyncvla_common import qos  # noqa: E402
from asyncvla_common.timeconv import ns_to_stamp  # noqa: E402
from asyncvla_core.conventions import ALINE_LENGTH  # noqa: E402
from asyncvla_core.vl_payload import DTYPE_FLOAT16, encode_features  # noqa: E402
from asyncvla_msgs.msg import ForceOctBatch, VLFeatures  # noqa: E402

HOUR_NS = 3600 * 1_000_000_000
ROGUE_SEQUENCE = 1_000_000
MODES = ("vl_future", "vl_flood", "vl_oversize", "vl_oversize_header", "sensor_future",
         "joints_other", "go")


def vl_message(args: argparse.Namespace, sequence: int, stamp_ns: int,
               rng: np.random.Generator) -> VLFeatures:
    msg = VLFeatures()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = "vlm"
    msg.sequence = sequence
    msg.model_id = args.model_id
    msg.dtype = DTYPE_FLOAT16
    if args.mode.startswith("vl_oversize"):
        size = int(args.megabytes * 1e6) // (2 * args.dim) * (2 * args.dim)
        msg.data = bytes(size)  # zeros: finite float16
        tokens = size // (2 * args.dim)
        msg.num_tokens = args.tokens if args.mode == "vl_oversize_header" else tokens
        msg.feature_dim = args.dim
        return msg
    features = rng.standard_normal((args.tokens, args.dim)).astype(np.float32)
    msg.data, msg.dtype = encode_features(features, "float16")
    msg.num_tokens, msg.feature_dim = features.shape
    return msg


class Rogue(Node):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args.name)
        self.args = args
        self.rng = np.random.default_rng(7)
        self.sent = 0
        mode = args.mode
        if mode.startswith("vl_"):
            self.pub = self.create_publisher(VLFeatures, args.topic or "/asyncvla/vl_features",
                                             qos.LATCHED)
        elif mode == "sensor_future":
            self.pub = self.create_publisher(ForceOctBatch, args.topic or "/sensor/force_oct",
                                             qos.stream_publisher(50))
        elif mode == "joints_other":
            self.pub = self.create_publisher(JointState, args.topic or "/robot/joint_states",
                                             qos.stream_publisher())
        else:
            self.estop = self.create_publisher(Bool, "/asyncvla/estop", qos.LATCHED)
            self.pub = self.create_publisher(Bool, "/asyncvla/enable", qos.LATCHED)

    def wait_matched(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.pub.get_subscription_count() < 1 and time.monotonic() < deadline:
            rclpy.spin_once(self, timeout_sec=0.05)

    def publish_one(self) -> None:
        now = self.get_clock().now().nanoseconds
        mode = self.args.mode
        if mode.startswith("vl_"):
            stamp = now + HOUR_NS if mode == "vl_future" else now
            self.pub.publish(vl_message(self.args, ROGUE_SEQUENCE + self.sent, stamp, self.rng))
        elif mode == "sensor_future":
            n = 13
            msg = ForceOctBatch()
            stamps = [now + HOUR_NS + i * 1_538_461 for i in range(n)]
            msg.header.stamp = ns_to_stamp(stamps[-1])
            msg.num_samples, msg.aline_length = n, ALINE_LENGTH
            msg.sample_stamps = [ns_to_stamp(s) for s in stamps]
            msg.force = np.full(n, 0.2, dtype=np.float32)
            msg.alines = np.zeros(n * ALINE_LENGTH, dtype=np.float32)
            self.pub.publish(msg)
        elif mode == "joints_other":
            msg = JointState()
            msg.header.stamp = ns_to_stamp(now)
            msg.name = [f"other_{i}" for i in range(100)]
            msg.position = [0.5] * 100
            self.pub.publish(msg)
        else:
            self.estop.publish(Bool(data=False))
            self.pub.publish(Bool(data=True))
        self.sent += 1

    def run(self) -> None:
        self.wait_matched(10.0)
        print(f"ROGUE START {self.args.mode}", flush=True)
        period = 1.0 / self.args.rate
        next_at = time.monotonic()
        while self.sent < self.args.count:
            self.publish_one()
            next_at += period
            rclpy.spin_once(self, timeout_sec=max(0.0, next_at - time.monotonic()))
        print(f"ROGUE SENT {self.sent}", flush=True)
        end = time.monotonic() + self.args.hold
        while time.monotonic() < end:
            rclpy.spin_once(self, timeout_sec=0.05)
        print("ROGUE DONE", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("--name", default="rogue")
    parser.add_argument("--topic", default="")
    parser.add_argument("--model-id", default="")
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--megabytes", type=float, default=50.0)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--hold", type=float, default=0.0)
    args = parser.parse_args()
    rclpy.init()
    node = Rogue(args)
    try:
        node.run()
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
