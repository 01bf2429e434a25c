#!/usr/bin/env python3
"""Replay a rosbag2 recording onto the live topics, re-stamped to now, optionally looping.

Stands in for `ros2 bag play` where rosbag2 is not installed (the PyPI ROS wheels lack it): the
demo replays a recording into the VLM and action nodes with it. Messages are read with `rosbags`
as the raw CDR bytes rosbag2 stored, turned into rclpy messages with rclpy's own deserializer,
and published at their recorded pace. Header stamps (and ForceOctBatch per-sample stamps) are
shifted by one constant per pass, so the nodes' freshness checks see live data with the recorded
timing; each loop starts where the previous ended in time. The latched VL features topic is not
replayed (the VLM node computes its own).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import time

import rclpy
from rclpy.node import Node
from rclpy.serialization import deserialize_message

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from asyncvla_common import qos  # noqa: E402
from asyncvla_common.timeconv import ns_to_stamp, stamp_to_ns  # noqa: E402

SKIP_TOPICS = ("/asyncvla/vl_features", "/asyncvla/action_chunk", "/diagnostics")


def message_class(msgtype: str) -> type:
    """'sensor_msgs/msg/CompressedImage' -> the rclpy class."""
    package, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


def read_bag(path: str) -> tuple[list[tuple[int, str, str, bytes]], int, int]:
    """[(bag time ns, topic, msgtype, raw CDR)], first and last bag time."""
    from rosbags.rosbag2 import Reader

    with Reader(path) as reader:
        conns = [c for c in reader.connections if c.topic not in SKIP_TOPICS]
        rows = [(t, c.topic, c.msgtype, bytes(raw)) for c, t, raw in reader.messages(conns)]
    rows.sort(key=lambda r: r[0])
    if not rows:
        raise ValueError(f"{path}: no messages to replay")
    return rows, rows[0][0], rows[-1][0]


def shift_stamps(msg: object, offset_ns: int) -> None:
    header = getattr(msg, "header", None)
    if header is not None:
        header.stamp = ns_to_stamp(stamp_to_ns(header.stamp) + offset_ns)
    if hasattr(msg, "sample_stamps"):
        msg.sample_stamps = [ns_to_stamp(stamp_to_ns(s) + offset_ns) for s in msg.sample_stamps]


class BagPlayer(Node):
    def __init__(self, path: str, loop: bool) -> None:
        super().__init__("asyncvla_bag_player")
        self.rows, self.first_ns, self.last_ns = read_bag(path)
        self.loop = loop
        self.classes = {msgtype: message_class(msgtype) for _, _, msgtype, _ in self.rows}
        self.pubs = {}
        for _, topic, msgtype, _ in self.rows:
            if topic not in self.pubs:
                self.pubs[topic] = self.create_publisher(self.classes[msgtype], topic,
                                                         qos.stream_publisher(50))

    def play(self) -> None:
        period_ns = self.last_ns - self.first_ns + 10_000_000  # 10 ms between passes
        start_wall = time.monotonic()
        start_ros = self.get_clock().now().nanoseconds
        passes = 0
        while rclpy.ok():
            for bag_ns, topic, msgtype, raw in self.rows:
                rel_ns = passes * period_ns + bag_ns - self.first_ns
                delay = start_wall + rel_ns / 1e9 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                msg = deserialize_message(raw, self.classes[msgtype])
                shift_stamps(msg, start_ros + passes * period_ns - self.first_ns)
                self.pubs[topic].publish(msg)
            passes += 1
            print(f"PASS {passes} done", flush=True)
            if not self.loop:
                return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bag", help="rosbag2 directory (mcap or sqlite3)")
    parser.add_argument("--loop", action="store_true", help="replay until stopped")
    args = parser.parse_args()
    rclpy.init()
    node = BagPlayer(args.bag, args.loop)
    print(f"PLAYER READY: {len(node.rows)} messages on {len(node.pubs)} topics", flush=True)
    try:
        node.play()
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
