#!/usr/bin/env python3
"""Benchmark: the action node's chunk period over DDS, seen by a subscriber in another process.

For each tick design (`tick_source`: the rclpy executor timer running the expert inline, and the
timing thread publishing the newest inference re-timed to its deadline) and each rate, the real
action node runs with the chosen policy on synthetic inputs (VL features from vl_injector, force/
OCT and robot state from synthetic_sources) and `chunk_recorder` records every ActionChunk.
Prints one JSON object; per run, in ms:

* `recv_dev`: |inter-arrival - period| at the subscriber's callback; `rmw_recv_dev` the same from
  the middleware's reception timestamps (without the subscriber's own executor);
* `stamp_dev`: |header stamp difference - period| (when the node meant to tick);
* `ticks_missing`: periods with no chunk (from the stamps: ticks late or withheld; the node's
  `node_diagnostics` say which: ticks_skipped, withheld_<reason>), `bursts`: arrivals less than half a
  period apart; `chunk_rate_hz`;
* `inference`: the expert's time per distinct inference, `inferences_per_s`, and how old the
  published computation was (`inference_age`: header stamp - inference_stamp).

Usage: flock /work/bench.lock python tools/bench/bench_action_period.py --policy seed \
           --expert-runtime torch_bf16_autocast --rates 10,50,100 [--designs executor_timer,timing_thread]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from action_bench import (add_common_arguments, bench_env, node_counters,  # noqa: E402
                          record_chunks, start_action, start_inputs, summary)
from asyncvla_testing.processes import ProcessGroup  # noqa: E402


#: The node's own figures kept from its "action output" diagnostic.
NODE_KEYS = ("_message", "ticks_skipped", "tick_late_ms_p99", "tick_thread", "inferences",
             "inferences_discarded", "chunks_published", "chunks_republished")


def analyse(rows: list[dict[str, int]], rate: float) -> dict:
    period_ms = 1e3 / rate
    if len(rows) < 3:
        return {"chunks": len(rows), "error": "fewer than 3 chunks received"}
    recv = np.diff([r["recv_ns"] for r in rows]) / 1e6
    stamps = np.diff([r["stamp_ns"] for r in rows]) / 1e6
    rmw = [r["rmw_recv_ns"] for r in rows]
    span_s = (rows[-1]["recv_ns"] - rows[0]["recv_ns"]) / 1e9
    first = {}
    for r in rows:
        first.setdefault(r["inference_sequence"], r)
    out = {
        "chunks": len(rows),
        "chunk_rate_hz": round((len(rows) - 1) / span_s, 2),
        "recv_dev": summary(np.abs(recv - period_ms)),
        "stamp_dev": summary(np.abs(stamps - period_ms)),
        "ticks_missing": int(np.maximum(np.round(stamps / period_ms) - 1, 0).sum()),
        "bursts": int((recv < period_ms / 2).sum()),
        "inference": summary([r["inference_time"] * 1e3 for r in first.values()]),
        "inferences_per_s": round(len(first) / span_s, 2),
        "inference_age": summary([(r["stamp_ns"] - r["inference_stamp_ns"]) / 1e6 for r in rows]),
        "max_reuse": int(max(r["inference_reuse_count"] for r in rows)),
    }
    if all(rmw):
        out["rmw_recv_dev"] = summary(np.abs(np.diff(rmw) / 1e6 - period_ms))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--rates", default="10,50,100")
    parser.add_argument("--designs", default="executor_timer,timing_thread")
    parser.add_argument("--trigger", default="sensor", help="timing_thread: inference_trigger")
    parser.add_argument("--duration", type=float, default=8.0, help="s measured per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="s dropped per run")
    parser.add_argument("--recorder-priority", type=int, default=60,
                        help="SCHED_FIFO priority of the recording subscriber (0 = normal)")
    parser.add_argument("--tick-priority", type=int, default=50, help="tick_thread_priority")
    args = parser.parse_args()
    group = ProcessGroup(bench_env())
    runs = []
    try:
        checkpoint, model_id = start_inputs(group, args)
        for design in args.designs.split(","):
            for rate in (float(r) for r in args.rates.split(",")):
                node = start_action(group, checkpoint, model_id, action_rate_hz=rate,
                                    tick_source=design, inference_trigger=args.trigger,
                                    inference_max_rate_hz=args.max_rate,
                                    expert_runtime=args.expert_runtime,
                                    expert_threads=args.expert_threads,
                                    tick_thread_priority=args.tick_priority)
                rows, diag = record_chunks(group, args.duration, args.warmup,
                                           args.recorder_priority)
                result = {"design": design, "rate_hz": rate, **analyse(rows, rate),
                          "node_diagnostics": {k: v for k, v in diag.items() if k in NODE_KEYS
                                               or k.startswith("withheld_")},
                          "node_log": node_counters(node)}
                if design == "timing_thread":
                    result["inference_trigger"] = args.trigger
                runs.append(result)
                node.stop()
                group.procs.remove(node)
                time.sleep(0.5)
    finally:
        group.stop_all()
    print(json.dumps({"benchmark": "action_period", "policy": args.policy,
                      "expert_runtime": args.expert_runtime,
                      "expert_threads": args.expert_threads, "cpu_count": os.cpu_count(),
                      "load_avg_1m": round(os.getloadavg()[0], 2),
                      "recorder_priority": args.recorder_priority,
                      "tick_thread_priority": args.tick_priority,
                      "duration_s": args.duration, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
