#!/usr/bin/env python3
"""Benchmark: the CPU share rclpy's SingleThreadedExecutor and MultiThreadedExecutor spend on the
action node's input callbacks, side by side in one run (why asyncvla_common.spin is
single-threaded).

A publisher process plays the action node's inputs at their rates over loopback DDS: force/OCT
batches of 10 samples at 65 Hz (650 samples/s), joint states and EE poses at 100 Hz each (265
messages/s). For each round and executor, a fresh subscriber process holds the action node's three
input subscriptions (same types, same QoS: best effort, depth 50 / 10; one mutually exclusive
callback group, the node's default, as the action node's `inputs` group) with callbacks that only
count, spins with that executor (MultiThreadedExecutor with its default thread count), and once
every input has arrived and `--warmup` s more have passed, measures its own CPU time (all threads,
user + system) over `--duration` s: `cpu_share` = CPU seconds / wall seconds (1.0 = one core busy).
Rounds alternate the two executors so drift in the machine's load falls on both. Prints one JSON
object (and writes it to `--out`): per executor the rounds' shares and callbacks/s and their
median, with the CPU, date and command (tools/bench/run_record.py).

Usage: flock /tmp/asyncvla-cpu.lock python tools/bench/bench_spin_cpu.py --rounds 3 \
           --duration 6 --out docs/benchmarks/spin_cpu-<cpu kind>.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

RATES_HZ = {"sensor": 65.0, "joints": 100.0, "pose": 100.0}
TOPICS = {"sensor": "/bench/force_oct", "joints": "/bench/joint_states", "pose": "/bench/ee_pose"}
EXECUTORS = ("single", "multi")


def _types():
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import JointState

    from asyncvla_msgs.msg import ForceOctBatch
    return {"sensor": ForceOctBatch, "joints": JointState, "pose": PoseStamped}


def publish(duration: float) -> None:
    """The publisher process: every input at its rate until `duration` s have passed."""
    import numpy as np
    import rclpy

    from asyncvla_common import qos
    from asyncvla_testing.lab_senders import ALINE_LENGTH

    rclpy.init()
    node = rclpy.create_node("spin_cpu_sources")
    types = _types()
    batch = types["sensor"]()
    batch.num_samples, batch.aline_length = 10, ALINE_LENGTH
    batch.sample_stamps = [batch.header.stamp] * 10
    batch.force = np.zeros(10, dtype=np.float32).tolist()
    batch.alines = np.zeros(10 * ALINE_LENGTH, dtype=np.float32).tolist()
    joints = types["joints"]()
    joints.name = [f"joint_{i}" for i in range(1, 7)]
    joints.position = [0.0] * 6
    messages = {"sensor": batch, "joints": joints, "pose": types["pose"]()}
    pubs = {k: node.create_publisher(types[k], TOPICS[k], qos.sensor_subscriber()) for k in TOPICS}
    for key, rate in RATES_HZ.items():
        node.create_timer(1.0 / rate, lambda k=key: pubs[k].publish(messages[k]))
    print("PUBLISHING", flush=True)
    end = time.monotonic() + duration
    while rclpy.ok() and time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.1)
    node.destroy_node()
    rclpy.try_shutdown()


def subscribe(executor_name: str, warmup: float, duration: float) -> None:
    """The subscriber process: spin the three subscriptions, print the measured window."""
    import rclpy
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor

    from asyncvla_common import qos

    rclpy.init()
    node = rclpy.create_node("spin_cpu_inputs")
    counts = {k: 0 for k in TOPICS}
    depth = {"sensor": 50, "joints": 10, "pose": 10}

    def callback(key: str):
        def on_message(_msg) -> None:
            counts[key] += 1
        return on_message

    for key, msg_type in _types().items():
        node.create_subscription(msg_type, TOPICS[key], callback(key),
                                 qos.sensor_subscriber(depth[key]))
    executor = (SingleThreadedExecutor() if executor_name == "single"
                else MultiThreadedExecutor())
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    deadline = time.monotonic() + 30
    while not all(counts.values()) and time.monotonic() < deadline:  # every input discovered
        time.sleep(0.05)
    time.sleep(warmup)
    before_cpu, before_wall, before_n = time.process_time(), time.monotonic(), sum(counts.values())
    time.sleep(duration)
    cpu, wall = time.process_time() - before_cpu, time.monotonic() - before_wall
    received = sum(counts.values()) - before_n
    print("RESULT " + json.dumps({"executor": executor_name, "cpu_s": round(cpu, 3),
                                  "wall_s": round(wall, 3), "cpu_share": round(cpu / wall, 3),
                                  "callbacks_per_s": round(received / wall, 1)}), flush=True)
    executor.shutdown(timeout_sec=1.0)
    node.destroy_node()
    rclpy.try_shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both executors")
    parser.add_argument("--duration", type=float, default=6.0, help="s measured per executor")
    parser.add_argument("--warmup", type=float, default=2.0, help="s spun before measuring")
    parser.add_argument("--out", help="also write the JSON object to this file")
    parser.add_argument("--role", choices=["pub", "sub"], help=argparse.SUPPRESS)
    parser.add_argument("--executor", choices=EXECUTORS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rounds < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("--rounds must be >= 1, --duration > 0 and --warmup >= 0")
    if args.role == "pub":
        publish(args.duration)
        return
    if args.role == "sub":
        subscribe(args.executor, args.warmup, args.duration)
        return

    from asyncvla_testing.processes import ProcessGroup, allocate_domain_id
    from run_record import emit, run_record

    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               ROS_DOMAIN_ID=str(allocate_domain_id()), PYTHONUNBUFFERED="1")
    group = ProcessGroup(env)
    script = os.path.abspath(__file__)
    total = args.rounds * len(EXECUTORS) * (args.duration + args.warmup + 15) + 30
    rounds: dict[str, list[dict]] = {name: [] for name in EXECUTORS}
    try:
        group.start("pub", [script, "--role", "pub", "--duration", str(total)]).wait_for_line(
            "PUBLISHING", 30)
        for _ in range(args.rounds):
            for name in EXECUTORS:
                sub = group.start(f"sub_{name}", [script, "--role", "sub", "--executor", name,
                                                  "--warmup", str(args.warmup),
                                                  "--duration", str(args.duration)])
                line = sub.wait_for_line("RESULT ", args.warmup + args.duration + 30)
                rounds[name].append(json.loads(line.split("RESULT ", 1)[1]))
                sub.stop()
                group.procs.remove(sub)
    finally:
        group.stop_all()
    executors = {}
    for name, runs in rounds.items():
        executors[name] = {"rounds": runs,
                           "cpu_share_median": round(statistics.median(r["cpu_share"]
                                                                       for r in runs), 3),
                           "callbacks_per_s_median": round(statistics.median(
                               r["callbacks_per_s"] for r in runs), 1)}
    emit({**run_record("spin_cpu"), "published_hz": RATES_HZ, "warmup_s": args.warmup,
          "duration_s": args.duration, "executors": executors,
          "multi_over_single": round(executors["multi"]["cpu_share_median"]
                                     / executors["single"]["cpu_share_median"], 2)}, args.out)


if __name__ == "__main__":
    main()
