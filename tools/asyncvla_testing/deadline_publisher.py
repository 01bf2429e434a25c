#!/usr/bin/env python3
"""The period floor of a Python ROS 2 publisher on this machine: ActionChunks on a deadline grid
from a process that does nothing else (benchmarks).

Why: the action node's period deviation has three possible sources, the OS and DDS path to the
subscriber, the node's Python (one GIL and one loop lock shared by the tick, the executor's
callbacks and the expert thread) and the refusals of ticks whose inputs or inference are too
old. This process keeps only the first: one Python thread, under SCHED_FIFO where allowed, that
sleeps to absolute deadlines (the action node's own `DeadlineClock` and `sleep_until`) and
publishes a pre-built chunk stamped with its deadline, with the COMMAND QoS of the real topic.
Run beside the loaded action node, its deviation at a subscriber is the floor the node's designs
are compared against (tools/bench/bench_action_period.py, design `publisher_floor`).

Prints `DEADLINE PUBLISHER READY`, publishes for `--duration` s, then `DEADLINE PUBLISHER DONE
{"published": N, "skipped": N, "late_ms_p99": X}` (skipped: deadlines missed entirely).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.serialization import serialize_message

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from asyncvla_action_node.tick_timing import DeadlineClock, make_realtime, sleep_until  # noqa: E402
from asyncvla_common import qos  # noqa: E402
from asyncvla_common.timeconv import ns_to_stamp  # noqa: E402
from asyncvla_msgs.msg import ActionChunk  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topic", default="/asyncvla/deadline_probe")
    parser.add_argument("--rate", type=float, required=True, help="Hz")
    parser.add_argument("--duration", type=float, required=True, help="s of publishing")
    parser.add_argument("--priority", type=int, default=50,
                        help="SCHED_FIFO priority (0 = normal), as tick_thread_priority")
    parser.add_argument("--raw", action="store_true",
                        help="publish the chunk serialised (as the publisher process does)")
    args = parser.parse_args()
    rclpy.init()
    node = Node("asyncvla_deadline_publisher", start_parameter_services=False)
    publisher = node.create_publisher(ActionChunk, args.topic, qos.COMMAND)
    msg = ActionChunk()
    msg.horizon, msg.action_dim = 8, 7
    msg.actions = [0.0] * 56
    note = make_realtime(args.priority)
    wall_minus_monotonic = time.time_ns() - time.monotonic_ns()
    clock = DeadlineClock(1.0 / args.rate, time.monotonic_ns())
    late: list[int] = []
    print(f"DEADLINE PUBLISHER READY ({note})", flush=True)
    end = time.monotonic_ns() + int(args.duration * 1e9)
    while clock.next_ns < end:
        sleep_until(clock.next_ns)
        tick = clock.after_wake(time.monotonic_ns())
        msg.header.stamp = ns_to_stamp(tick.deadline_ns + wall_minus_monotonic)
        msg.inference_stamp = msg.header.stamp
        msg.sequence = msg.inference_sequence = clock.ticks
        publisher.publish(serialize_message(msg) if args.raw else msg)
        late.append(tick.late_ns)
    summary = {"published": clock.ticks, "skipped": clock.skipped,
               "late_ms_p99": round(float(np.percentile(late, 99)) / 1e6, 3) if late else None}
    print("DEADLINE PUBLISHER DONE " + json.dumps(summary), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


if __name__ == "__main__":
    main()
