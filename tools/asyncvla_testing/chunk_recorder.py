#!/usr/bin/env python3
"""Records every ActionChunk's timing and provenance in a process of its own (benchmarks, tests).

Why a separate process: the action loop's period must be measured where a consumer sees it,
over DDS, not inside the node. The callback does no more than append a tuple (the receive times
first), and the whole record is printed as one JSON line (`CHUNKS {...}`) after `--duration`
seconds, so printing never delays a receive.

Per chunk: `recv_ns` (CLOCK_REALTIME, read first in the callback), `rmw_recv_ns` (the
middleware's reception timestamp from the MessageInfo, before the executor ran the callback;
0 when the rmw gives none), `stamp_ns` (header.stamp), `sequence`, `inference_sequence`,
`inference_stamp_ns`, `sensor_stamp_ns`, `inference_reuse_count`, `horizon`, `inference_time` (s);
and the last "action output" /diagnostics values (the node's ticks_skipped, tick lateness,
withheld ticks by reason), with every one received and its receive time (`diagnostics_history`)
so that a benchmark can count what happened inside its measuring window.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import rclpy
from rclpy.node import Node

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from asyncvla_common import qos  # noqa: E402
from asyncvla_common.timeconv import stamp_to_ns  # noqa: E402
from asyncvla_msgs.msg import ActionChunk  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402

FIELDS = ("recv_ns", "rmw_recv_ns", "stamp_ns", "sequence", "inference_sequence",
          "inference_stamp_ns", "sensor_stamp_ns", "inference_reuse_count", "horizon",
          "inference_time")


def raise_all_threads(priority: int) -> None:
    """SCHED_FIFO `priority` for every thread of this process (the DDS receive threads too).

    Why after start-up, not before: measured on the 2-core machine, a recorder that took
    SCHED_FIFO before importing rclpy and joining DDS held the CPUs through its start-up and
    stopped the synthetic sources' publishing for 128-457 ms; started at normal priority the same
    recorder stalled nothing (largest gap 23 ms, the sources' own 20 ms batches)."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setscheduler(int(tid), os.SCHED_FIFO, os.sched_param(priority))
        except OSError as exc:  # no CAP_SYS_NICE / rtprio limit, or the thread ended
            print(f"RT refused for thread {tid}: {exc}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topic", default="/asyncvla/action_chunk")
    parser.add_argument("--duration", type=float, required=True, help="seconds after the first chunk")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for it")
    parser.add_argument("--rt-priority", type=int, default=0,
                        help="SCHED_FIFO priority for the whole recorder (its DDS threads too), so "
                             "that on a loaded machine the instrument is not what is late; taken "
                             "once it has subscribed, not for its start-up")
    args = parser.parse_args()
    rclpy.init()
    node = Node("asyncvla_chunk_recorder")
    rows: list[tuple] = []

    def on_chunk(msg: ActionChunk, info) -> None:
        recv = time.time_ns()
        rows.append((recv, int(info.get("received_timestamp", 0) or 0),
                     stamp_to_ns(msg.header.stamp), msg.sequence, msg.inference_sequence,
                     stamp_to_ns(msg.inference_stamp), stamp_to_ns(msg.sensor_stamp),
                     msg.inference_reuse_count, msg.horizon, msg.inference_time))

    history: list[tuple[int, dict[str, str]]] = []  # (recv_ns, values) of each one

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:  # the action node's own account of its ticks
            if status.name.endswith("action output"):
                history.append((time.time_ns(), {
                    **{kv.key: kv.value for kv in status.values},
                    "_level": str(int.from_bytes(status.level, "little")
                                  if isinstance(status.level, bytes) else status.level),
                    "_message": status.message}))

    node.create_subscription(ActionChunk, args.topic, on_chunk, qos.COMMAND)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    if args.rt_priority:
        raise_all_threads(args.rt_priority)
    print("SUBSCRIBED", flush=True)
    deadline = time.monotonic() + args.timeout
    end = None
    while rclpy.ok() and time.monotonic() < (end or deadline):
        rclpy.spin_once(node, timeout_sec=0.05)
        if end is None and rows:
            end = time.monotonic() + args.duration
            if args.rt_priority:  # threads the middleware started when it matched the writer
                raise_all_threads(args.rt_priority)
    print("CHUNKS " + json.dumps({"fields": FIELDS, "rows": rows,
                                  "diagnostics": history[-1][1] if history else {},
                                  "diagnostics_history": history}),
          flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


if __name__ == "__main__":
    main()
