"""A small publisher/subscriber process for DDS tests and benchmarks of asyncvla_msgs.

Run as `python dds_peer.py pub|sub ...`. Each received message is printed as one JSON line
prefixed with `RECV `, so the test that started the process can parse it.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from asyncvla_msgs.msg import ActionChunk, ForceOctBatch, VLFeatures

sys.path.insert(0, __file__.rsplit("/", 2)[0])
from asyncvla_testing.msg_dict import to_plain  # noqa: E402

TYPES = {"VLFeatures": VLFeatures, "ActionChunk": ActionChunk, "ForceOctBatch": ForceOctBatch}


def qos(latched: bool) -> QoSProfile:
    if latched:
        return QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                          reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)
    return QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


def sample_message(kind: str, index: int, payload_bytes: int, stamp_ns: int):
    """A message of `kind` whose every field holds a value derived from `index` (no defaults)."""
    rng = np.random.default_rng(index)
    sec, nsec = divmod(stamp_ns, 1_000_000_000)
    if kind == "VLFeatures":
        msg = VLFeatures()
        msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nsec
        msg.header.frame_id = "vlm"
        msg.sequence = index + 1
        msg.view_names = [f"view{i + 1}" for i in range(5)]
        for i in range(5):
            t = msg.header.stamp.__class__()
            t.sec, t.nanosec = sec - 1, (nsec + i * 1000) % 1_000_000_000
            msg.view_stamps.append(t)
        msg.prompt = "Insert the needle through the trocar into the eye phantom model"
        msg.prompt_id = hashlib.sha256(msg.prompt.encode()).hexdigest()[:16]
        msg.model_id = "tiny-qwen2.5-vl"
        msg.adapter_id = "lora-test"
        msg.feature_layer = -1
        msg.compute_time = 0.381
        msg.token_count = 1538
        msg.dtype = VLFeatures.DTYPE_FLOAT16
        msg.feature_dim = 2048
        msg.num_tokens = max(1, payload_bytes // (2 * msg.feature_dim))
        msg.data = rng.integers(0, 256, size=msg.num_tokens * msg.feature_dim * 2,
                                dtype=np.uint8).tobytes()
        return msg
    if kind == "ActionChunk":
        msg = ActionChunk()
        msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nsec
        msg.header.frame_id = "base_link"
        msg.horizon, msg.action_dim = 8, 7
        msg.actions = rng.standard_normal(56).astype(np.float32).tolist()
        msg.dim_names = ["dx_m", "dy_m", "dz_m", "drx_rad", "dry_rad", "drz_rad", "tool"]
        msg.action_space = "ee_delta"
        msg.reference = rng.standard_normal(6).astype(np.float32).tolist()
        msg.step_period = 0.1
        msg.vl_sequence = 7 + index
        msg.vl_age = 0.25
        msg.vl_reuse_count = 3
        msg.inference_time = 0.0042
        msg.sequence = index + 1
        msg.inference_sequence = index + 3
        msg.inference_stamp.sec, msg.inference_stamp.nanosec = sec - 1, nsec
        msg.sensor_stamp.sec, msg.sensor_stamp.nanosec = sec - 1, (nsec + 5000) % 1_000_000_000
        msg.inference_reuse_count = 2
        return msg
    msg = ForceOctBatch()
    msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nsec
    msg.header.frame_id = "oct_probe"
    msg.num_samples, msg.aline_length = 3, 1025
    for i in range(3):
        t = msg.header.stamp.__class__()
        t.sec, t.nanosec = sec, (nsec + i * 1538461) % 1_000_000_000
        msg.sample_stamps.append(t)
    msg.force = rng.standard_normal(3).astype(np.float32).tolist()
    msg.alines = rng.standard_normal(3 * 1025).astype(np.float32)
    msg.clock_offset = 0.0123
    return msg


def run_pub(args) -> None:
    node = Node("dds_peer_pub")
    pub = node.create_publisher(TYPES[args.type], args.topic, qos(args.latched))
    # Wait for matching subscribers when asked, so nothing is published into the void.
    deadline = time.monotonic() + args.wait_subscribers_timeout
    while args.wait_subscribers and pub.get_subscription_count() < args.wait_subscribers:
        if time.monotonic() > deadline:
            print("ERROR no subscriber matched", flush=True)
            return
        time.sleep(0.01)
    for i in range(args.count):
        msg = sample_message(args.type, i, args.payload_bytes, time.time_ns())
        if args.print_sent:
            print("SENT " + json.dumps(to_plain(msg)), flush=True)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(time.time_ns(), 1_000_000_000) \
            if args.stamp_at_publish else (msg.header.stamp.sec, msg.header.stamp.nanosec)
        pub.publish(msg)
        print(f"PUBLISHED {i}", flush=True)
        if args.period > 0:
            time.sleep(args.period)
    end = time.monotonic() + args.hold
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
    print("DONE", flush=True)


def run_sub(args) -> None:
    node = Node("dds_peer_sub")
    received = 0

    def on_msg(msg) -> None:
        nonlocal received
        recv_ns = time.time_ns()
        received += 1
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        record = {"recv_ns": recv_ns, "latency_ms": (recv_ns - stamp_ns) / 1e6}
        if args.full:
            record["msg"] = to_plain(msg)
        elif hasattr(msg, "data"):
            record["sequence"] = msg.sequence
            record["bytes"] = len(msg.data)
            record["sha"] = hashlib.sha256(bytes(msg.data)).hexdigest()[:16]
        print("RECV " + json.dumps(record), flush=True)

    node.create_subscription(TYPES[args.type], args.topic, on_msg, qos(args.latched))
    print("SUBSCRIBED", flush=True)
    deadline = time.monotonic() + args.timeout
    while received < args.count and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    print(f"DONE received={received}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["pub", "sub"])
    parser.add_argument("--type", choices=sorted(TYPES), default="VLFeatures")
    parser.add_argument("--topic", default="/asyncvla/test")
    parser.add_argument("--latched", action="store_true")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--payload-bytes", type=int, default=4096)
    parser.add_argument("--period", type=float, default=0.0)
    parser.add_argument("--hold", type=float, default=0.0, help="keep spinning this long at the end")
    parser.add_argument("--wait-subscribers", type=int, default=0)
    parser.add_argument("--wait-subscribers-timeout", type=float, default=15.0)
    parser.add_argument("--stamp-at-publish", action="store_true",
                        help="overwrite header.stamp with the wall clock right before publish")
    parser.add_argument("--print-sent", action="store_true")
    parser.add_argument("--full", action="store_true", help="print every field of each message")
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()
    rclpy.init()
    try:
        run_pub(args) if args.mode == "pub" else run_sub(args)
    finally:
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
