#!/usr/bin/env python3
"""Benchmark: sensor-to-action latency, from a force/OCT step at the UDP input to the first
ActionChunk computed from a window that contains it, over real UDP and DDS.

This process plays the lab's sensor PC (tools/asyncvla_testing/lab_senders.py, written from the
UDP wire format: 650 samples/s, `--batch` records per datagram) into the real sensor bridge; VL
features come from vl_injector and the robot state from synthetic_sources (its own sensor stream
paused), and the real action node computes chunks that chunk_recorder receives in another
process. Every `--step-every` s the force steps by 1 N and the A-line shifts, from one sample on
(its sender time `ts` is known). The step is found in a chunk by metadata only: the first chunk
whose `sensor_stamp` (the newest sample of the window it was computed from; windows are the
newest contiguous samples) is at or after the step sample's stamp, less half a sample period for
the bridge's clock mapping. The model's output is never looked at.

Per design x rate, in ms: `from_send` = chunk received - the step's datagram sent (bridge + node
+ DDS), `from_sample` = the same from the step sample's own time (adds the sender's batching),
`stamp_from_sample` = the chunk's header stamp - the sample's time. Designs: `default` (the
node's defaults for the tick design and its trigger: only the rate and the runtime are given),
`timing_thread/tick` (expert
started at a tick, published re-timed at later ticks), `timing_thread/sensor` (expert started
when a sensor batch arrives, at most `--max-rate` Hz), `publisher_process/tick` (as
`timing_thread/tick`, each tick prepared `timing.publish_lead_ms` ahead and published at its
deadline by a child process). The removed `executor_timer` design (the expert inline at an rclpy
timer tick) was measured here too; its rows in docs/benchmarks are history (TIMING.md). Prints one JSON object, with the CPU (`cpu`) and, per run, the runtime the node
ran (`expert`; `--expert-runtime auto`, the default, lets the node choose).

Usage: flock /work/bench.lock python tools/bench/bench_sensor_latency.py --policy seed \
           --expert-runtime auto --rates 10,50,100 --duration 15
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from action_bench import (add_common_arguments, bench_env, node_counters,  # noqa: E402
                          node_defaults, node_expert, record_chunks, start_action, start_inputs,
                          summary)
from asyncvla_policy.cpu_info import cpu_record  # noqa: E402
from asyncvla_testing.bridge_harness import start_bridge  # noqa: E402
from asyncvla_testing.lab_senders import ALINE_LENGTH, SensorSender, sensor_datagram  # noqa: E402
from asyncvla_testing.processes import ProcessGroup  # noqa: E402

SAMPLE_HZ = 650.0
#: design -> its timing.* parameters (the default design: the node's own)
DESIGNS = {"default": {},
           "timing_thread/tick": {"tick_source": "timing_thread", "inference_trigger": "tick"},
           "timing_thread/sensor": {"tick_source": "timing_thread",
                                    "inference_trigger": "sensor"},
           "publisher_process/tick": {"tick_source": "publisher_process",
                                      "inference_trigger": "tick"}}


class StepSender(threading.Thread):
    """The sensor PC: 650 samples/s in datagrams of `batch`, a step every `step_every` s.

    Samples are timed on an absolute schedule from the wall clock (`ts`, as the lab's sender
    stamps them); the thread asks for SCHED_FIFO so that on a loaded machine the instrument is
    not what is late. `steps` holds (step sample ts ns, its datagram's send time ns).
    """

    def __init__(self, endpoint: str, batch: int, step_every: float) -> None:
        super().__init__(daemon=True)
        host, port = endpoint[len("udp://"):].rsplit(":", 1)
        self.sender = SensorSender(host, int(port))
        self.batch = batch
        self.step_every = step_every
        self.steps: list[tuple[int, int]] = []
        self.stop_event = threading.Event()
        self.rng = np.random.default_rng(0)

    def run(self) -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(60))
        except OSError:
            pass
        start = time.time()
        k = 0
        level = 0
        next_step = start + 2.0
        base = np.linspace(0.0, 1.0, ALINE_LENGTH, dtype=np.float32)
        while not self.stop_event.is_set():
            records, step_ts = [], None
            for i in range(self.batch):
                ts = start + (k + i) / SAMPLE_HZ
                if ts >= next_step:
                    level, next_step = level ^ 1, next_step + self.step_every * (
                        0.75 + 0.5 * self.rng.random())  # random phase against the ticks
                    step_ts = ts
                records.append((ts, ts, 0.2 + 1.0 * level, base + 0.5 * level))
            k += self.batch
            send_at = start + (k - 1) / SAMPLE_HZ  # when the batch's newest sample exists
            delay = send_at - time.time()
            if delay > 0:
                time.sleep(delay)
            data = sensor_datagram([(ts, time.time(), f, a) for ts, _, f, a in records])
            sent_ns = time.time_ns()
            self.sender.send(data)
            if step_ts is not None:
                self.steps.append((int(round(step_ts * 1e9)), sent_ns))
        self.sender.close()


def latencies(rows: list[dict], steps: list[tuple[int, int]]) -> dict:
    half_sample = int(0.5e9 / SAMPLE_HZ)
    rows = sorted(rows, key=lambda r: r["recv_ns"])
    first_recv = rows[0]["recv_ns"] if rows else 0
    last_recv = rows[-1]["recv_ns"] if rows else 0
    from_send, from_sample, stamp_from_sample, missed = [], [], [], 0
    for step_ns, sent_ns in steps:
        if sent_ns < first_recv or sent_ns > last_recv - int(1e9):
            continue  # outside the recorded span
        hit = next((r for r in rows if r["recv_ns"] >= sent_ns
                    and r["sensor_stamp_ns"] >= step_ns - half_sample), None)
        if hit is None:
            missed += 1
            continue
        from_send.append((hit["recv_ns"] - sent_ns) / 1e6)
        from_sample.append((hit["recv_ns"] - step_ns) / 1e6)
        stamp_from_sample.append((hit["stamp_ns"] - step_ns) / 1e6)
    return {"steps": len(from_send), "steps_not_seen": missed, "from_send": summary(from_send),
            "from_sample": summary(from_sample),
            "stamp_from_sample": summary(stamp_from_sample)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--rates", default="10,50")
    parser.add_argument("--designs", default=",".join(DESIGNS))
    parser.add_argument("--batch", type=int, default=10, help="samples per UDP datagram")
    parser.add_argument("--step-every", type=float, default=0.5, help="s between steps (mean)")
    parser.add_argument("--duration", type=float, default=15.0, help="s measured per run")
    args = parser.parse_args()
    group = ProcessGroup(bench_env())
    runs = []
    pause = tempfile.NamedTemporaryFile("w", suffix=".pause", delete=False)
    pause.write("sensor\n")  # the robot state only: the force/OCT comes over UDP
    pause.close()
    try:
        checkpoint, model_id = start_inputs(group, args, pause.name)
        _, endpoint = start_bridge(group, "sensor", {"wire": {"port": 0},
                                                        "publish_wrench": False})
        sender = StepSender(endpoint, args.batch, args.step_every)
        sender.start()
        for design in args.designs.split(","):
            if design not in DESIGNS:
                parser.error(f"--designs: {design!r} is not one of {', '.join(DESIGNS)}")
            for rate in (float(r) for r in args.rates.split(",")):
                timing = dict(DESIGNS[design])
                if design != "default":
                    timing["inference_max_rate_hz"] = args.max_rate
                params = {"expert.runtime": args.expert_runtime,
                          "expert.threads": args.expert_threads,
                          **{f"timing.{name}": value for name, value in timing.items()}}
                node = start_action(group, checkpoint, model_id,
                                    **{"timing.action_rate_hz": rate, **params})
                effective = {**node_defaults(), **params}
                rows, diag = record_chunks(group, args.duration, 2.0, rt_priority=60)
                runs.append({"design": design, "rate_hz": rate,
                             "tick_source": effective["timing.tick_source"],
                             "inference_trigger": effective["timing.inference_trigger"],
                             "inference_max_rate_hz":
                                 effective["timing.inference_max_rate_hz"],
                             "expert": node_expert(node), "chunks": len(rows),
                             **latencies(rows, list(sender.steps)),
                             "node_message": diag.get("_message", ""),
                             "node_log": node_counters(node)})
                node.stop()
                group.procs.remove(node)
        sender.stop_event.set()
    finally:
        group.stop_all()
        os.unlink(pause.name)
    print(json.dumps({"benchmark": "sensor_latency", "cpu": cpu_record(),
                      "command": " ".join(["python", "tools/bench/bench_sensor_latency.py",
                                           *sys.argv[1:]]),
                      "policy": args.policy,
                      "expert_runtime": args.expert_runtime,
                      "expert_threads": args.expert_threads, "cpu_count": os.cpu_count(),
                      "load_avg_1m": round(os.getloadavg()[0], 2), "sample_hz": SAMPLE_HZ,
                      "batch": args.batch, "inference_max_rate_hz": args.max_rate,
                      "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
