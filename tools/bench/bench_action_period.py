#!/usr/bin/env python3
"""Benchmark: the action node's chunk period over DDS, seen by a subscriber in another process.

For each tick design (`timing.tick_source`: the timing thread publishing the newest inference
re-timed to its deadline, the publisher process publishing what that thread prepared at the
deadline; `default`: the node's own defaults for the design, its trigger, lead and priority, only
the rate given) and each rate, the real
action node runs with the chosen policy on synthetic inputs (VL features from vl_injector, force/
OCT and robot state from synthetic_sources) and `chunk_recorder` records every ActionChunk.
Beside them, `publisher_floor`: the same loaded node (timing thread), and the chunks measured are
those of `deadline_publisher`, a process that only publishes on the same deadline grid at the
same SCHED_FIFO priority: what DDS and the OS allow here, side by side with the designs.
Prints one JSON object; per run, in ms:

* `recv_dev`: |inter-arrival - period| at the subscriber's callback; `rmw_recv_dev` the same from
  the middleware's reception timestamps (without the subscriber's own executor);
* `stamp_dev`: |header stamp difference - period| (when the node meant to tick);
  `recv_dev_adjacent`: `recv_dev` over neighbouring ticks only (stamps one period apart), the
  timing of the chunks published apart from the ticks refused;
* `ticks_missing`: periods with no chunk (from the stamps: ticks late or withheld; the node's
  `node_window` says which, counted inside the measuring window from its once-a-second
  diagnostics: ticks_skipped, withheld_<reason>; `node_diagnostics` are since start-up),
  `bursts`: arrivals less than half a period apart; `chunk_rate_hz`;
* `inference`: the expert's time per distinct inference, `inferences_per_s`, and how old the
  published computation was (`inference_age`: header stamp - inference_stamp).

`--expert-runtime auto` (the default) lets the node choose (`expert` in each run: the runtime it
runs, and auto's log line with the figures it chose by). Every run records the CPU (`cpu`).

Usage: flock /work/bench.lock python tools/bench/bench_action_period.py --policy seed \
           --expert-runtime auto --rates 10,50,100 \
           [--designs default,timing_thread,publisher_process,publisher_floor]

The rclpy executor-timer design (the expert inline at an rclpy timer tick) was measured by this
benchmark too and removed from the node (TIMING.md); its rows in docs/benchmarks are history.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from action_bench import (RECORDER, add_common_arguments, bench_env,  # noqa: E402
                          node_counters, node_defaults, node_expert, record_chunks, start_action,
                          start_inputs, summary)
from asyncvla_policy.cpu_info import cpu_record  # noqa: E402
from asyncvla_testing.processes import ProcessGroup  # noqa: E402


#: The tick designs (`timing.tick_source`) and the floor they are measured against: a
#: publisher-only process on the same deadline grid beside the same loaded node
#: (deadline_publisher.py).
DESIGNS = ("default", "timing_thread", "publisher_process", "publisher_floor")
DEADLINE_PUBLISHER = os.path.join(os.path.dirname(RECORDER), "deadline_publisher.py")
PROBE_TOPIC = "/asyncvla/deadline_probe"

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
        # the same over neighbouring ticks only (stamps one period apart): the timing of what
        # was published, apart from the ticks that were refused (`ticks_missing`)
        "recv_dev_adjacent": summary(np.abs(recv - period_ms)[np.abs(stamps - period_ms)
                                                              < period_ms / 2]),
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
    parser.add_argument("--designs", default=",".join(DESIGNS))
    parser.add_argument("--trigger", default="sensor", help="timing.inference_trigger")
    parser.add_argument("--duration", type=float, default=8.0, help="s measured per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="s dropped per run")
    parser.add_argument("--recorder-priority", type=int, default=60,
                        help="SCHED_FIFO priority of the recording subscriber (0 = normal)")
    parser.add_argument("--tick-priority", type=int, default=50,
                        help="timing.tick_thread_priority")
    parser.add_argument("--raw-floor", action="store_true",
                        help="publisher_floor: publish serialised chunks, as the publisher "
                             "process does")
    parser.add_argument("--lead-ms", type=float, default=8.0,
                        help="publisher_process: timing.publish_lead_ms")
    args = parser.parse_args()
    group = ProcessGroup(bench_env())
    runs = []
    try:
        checkpoint, model_id = start_inputs(group, args)
        for design in args.designs.split(","):
            if design not in DESIGNS:
                parser.error(f"--designs: {design!r} is not one of {', '.join(DESIGNS)}")
            for rate in (float(r) for r in args.rates.split(",")):
                floor = design == "publisher_floor"
                # "default": only the rate and the runtime are given; the node's defaults decide
                # the design, its trigger, rate bound, lead and priority
                expert = {"expert.runtime": args.expert_runtime,
                          "expert.threads": args.expert_threads}
                params = expert if design == "default" else {
                    **expert, "timing.tick_source": "timing_thread" if floor else design,
                    "timing.inference_trigger": args.trigger,
                    "timing.inference_max_rate_hz": args.max_rate,
                    "timing.tick_thread_priority": args.tick_priority,
                    "timing.publish_lead_ms": args.lead_ms}
                node = start_action(group, checkpoint, model_id,
                                    **{"timing.action_rate_hz": rate, **params})
                effective = {**node_defaults(), **params}
                extra: dict = {}
                if floor:  # the same load; the chunks measured are the deadline publisher's
                    prober = group.start("deadline", [
                        DEADLINE_PUBLISHER, "--topic", PROBE_TOPIC, "--rate", str(rate),
                        "--duration", str(args.duration + args.warmup + 30),
                        "--priority", str(args.tick_priority)]
                        + (["--raw"] if args.raw_floor else []))
                    extra["publisher"] = prober.wait_for_line("DEADLINE PUBLISHER READY", 60)
                rows, diag = record_chunks(group, args.duration, args.warmup,
                                           args.recorder_priority,
                                           topic=PROBE_TOPIC if floor else "")
                result = {"design": design, "rate_hz": rate,
                          "tick_source": effective["timing.tick_source"],
                          "expert": node_expert(node),
                          **analyse(rows, rate), **extra,
                          "node_diagnostics": {k: v for k, v in diag.items() if k in NODE_KEYS
                                               or k.startswith(("withheld_", "publisher",
                                                                "handoff_"))},
                          "node_window": diag.get("window_counts", {}),
                          "node_log": node_counters(node)}
                result["inference_trigger"] = effective["timing.inference_trigger"]
                result["inference_max_rate_hz"] = effective["timing.inference_max_rate_hz"]
                if effective["timing.tick_source"] == "publisher_process":
                    result["publish_lead_ms"] = effective["timing.publish_lead_ms"]
                runs.append(result)
                for proc in ([prober] if floor else []) + [node]:
                    proc.stop()
                    group.procs.remove(proc)
                time.sleep(0.5)
    finally:
        group.stop_all()
    print(json.dumps({"benchmark": "action_period", "cpu": cpu_record(),
                      "command": " ".join(["python", "tools/bench/bench_action_period.py",
                                           *sys.argv[1:]]),
                      "policy": args.policy,
                      "expert_runtime": args.expert_runtime,
                      "expert_threads": args.expert_threads, "cpu_count": os.cpu_count(),
                      "load_avg_1m": round(os.getloadavg()[0], 2),
                      "recorder_priority": args.recorder_priority,
                      "tick_thread_priority": args.tick_priority,
                      "duration_s": args.duration, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
