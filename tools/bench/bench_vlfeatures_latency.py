#!/usr/bin/env python3
"""Benchmark: VLFeatures publish-to-receive latency across two processes over Fast DDS (loopback).

Prints one JSON object (and writes it to `--out`): for each payload size, the latency summary in
ms (n, p50, p99, max) over the messages received of `--count` published at `--rate-hz` (latched
QoS, as the VLM node publishes), with the CPU, date and command (tools/bench/run_record.py). Sizes are the payloads the
suite actually uses: one pooled 2048-d fp16 vector (4 KiB), 64 tokens x 2048 fp16 (256 KiB,
the VLM node's default), and the 1 MiB budget.

Usage: flock /tmp/asyncvla-cpu.lock python tools/bench/bench_vlfeatures_latency.py --count 120 \
           --out docs/benchmarks/vlfeatures_latency-<cpu kind>.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
from asyncvla_testing.processes import ProcessGroup, allocate_domain_id  # noqa: E402
from run_record import emit, run_record, summary  # noqa: E402

PEER = os.path.join(os.path.dirname(HERE), "asyncvla_testing", "dds_peer.py")
SIZES = {"pooled_4KiB": 4096, "tokens64_256KiB": 262144, "budget_1MiB": 1048576}


def measure(size: int, count: int, rate_hz: float) -> dict:
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               ROS_DOMAIN_ID=str(allocate_domain_id()), PYTHONUNBUFFERED="1")
    group = ProcessGroup(env)
    try:
        sub = group.start("sub", [PEER, "sub", "--latched", "--count", str(count),
                                  "--timeout", str(count / rate_hz + 30)])
        sub.wait_for_line("SUBSCRIBED", 30)
        group.start("pub", [PEER, "pub", "--latched", "--count", str(count), "--payload-bytes",
                            str(size), "--period", str(1.0 / rate_hz), "--wait-subscribers", "1",
                            "--stamp-at-publish", "--hold", "1"])
        sub.wait_for_line("DONE", count / rate_hz + 60)
        lat = np.array([json.loads(line[5:])["latency_ms"] for line in sub.lines
                        if line.startswith("RECV ")])
    finally:
        group.stop_all()
    return {"payload_bytes": size, "sent": count, "latency_ms": summary(lat)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--rate-hz", type=float, default=10.0)
    parser.add_argument("--out", help="also write the JSON object to this file")
    args = parser.parse_args()
    if args.count < 1 or args.rate_hz <= 0:
        parser.error("--count must be >= 1 and --rate-hz > 0")
    results = {name: measure(size, args.count, args.rate_hz) for name, size in SIZES.items()}
    emit({**run_record("vlfeatures_latency"), "rmw": "rmw_fastrtps_cpp",
          "transport": "loopback, 2 processes", "rate_hz": args.rate_hz, "results": results},
         args.out)


if __name__ == "__main__":
    main()
