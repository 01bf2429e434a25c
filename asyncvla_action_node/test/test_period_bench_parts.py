"""The parts of the action-period benchmark that decide what it reports
(tools/bench/bench_action_period.py): the publish-only floor and the in-window refusal counts.

The floor is only a floor if it is what it claims: a chunk for every deadline, stamped exactly on
the grid, in order, over real DDS to a recorder in another process. The window counts must
difference the node's cumulative counters at the window's edge, not report start-up refusals.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from asyncvla_testing.pipeline import HERE

pytest.importorskip("rclpy")

sys.path.insert(0, os.path.join(os.path.dirname(HERE), "bench"))
from action_bench import node_defaults, node_expert, window_counts  # noqa: E402

RECORDER = os.path.join(HERE, "chunk_recorder.py")
PUBLISHER = os.path.join(HERE, "deadline_publisher.py")
TOPIC = "/asyncvla/deadline_probe"


def test_window_counts_difference_the_counters_at_the_windows_edge():
    history = [
        [100, {"chunks_published": "5", "withheld_watchdog": "40", "ticks_skipped": "1",
               "tick_late_ms_p99": "3.0"}],
        [200, {"chunks_published": "55", "withheld_watchdog": "41", "ticks_skipped": "1",
               "tick_late_ms_p99": "9.0"}],
        [300, {"chunks_published": "105", "withheld_watchdog": "41", "withheld_sensor": "2",
               "ticks_skipped": "3", "tick_late_ms_p99": "1.0", "_message": "x"}],
    ]
    # window from 250: the report at 200 is the base; a reason first seen later counts from 0
    assert window_counts(history, 250) == {"chunks_published": 50, "ticks_skipped": 2,
                                           "withheld_sensor": 2, "withheld_watchdog": 0}
    # no report before the window: everything since start-up
    assert window_counts(history, 50)["withheld_watchdog"] == 41
    assert window_counts([], 0) == {}


class _Lines:
    def __init__(self, lines):
        self.lines = lines


def test_the_default_design_is_the_nodes_and_the_runtime_is_read_from_its_log():
    """`--designs default` runs what the node's config says, and a run records the runtime
    the node actually ran (for `auto`, the line with the figures it chose by)."""
    from asyncvla_action_node.action_config import ActionNodeConfig

    defaults = node_defaults()
    assert defaults["timing.tick_source"] == ActionNodeConfig().timing.tick_source \
        == "publisher_process"
    auto = ("[INFO] [1.0] [asyncvla_action_node]: expert_runtime auto: openvino_float32 "
            "(14.20 ms p50, 1.3e-06 from float32 <= 0.01), cached choice re-checked at 1.1e-06 "
            "in 0.9 s; torch_float32 ok 40.10 ms 8.8e-07")
    ready = ("[INFO] [2.0] [asyncvla_action_node]: action node ready: 100.0 Hz "
             "(publisher_process, expert on tick <= 50 Hz), expert openvino_float32 (auto), "
             "horizon 8x7 (ee_delta)")
    got = node_expert(_Lines([auto, ready]))
    assert got["runtime"] == "openvino_float32" and got["auto"] and got["auto_cached"]
    assert got["auto_summary"].startswith("expert_runtime auto: openvino_float32 (14.20 ms")
    named = node_expert(_Lines([ready.replace(" (auto)", "").replace("openvino_float32",
                                                                      "torch_float32")]))
    assert named == {"runtime": "torch_float32", "auto": False, "auto_cached": False,
                     "auto_summary": ""}


#: Bounds on |inter-arrival - period| at the subscriber. The README documents the floor at p50
#: 0.07-0.11 ms, p99 0.5-1.5 ms (bench_action_period.py `publisher_floor`, beside a loaded action
#: node, both processes SCHED_FIFO). Measured with this test at 50 Hz (n = 250 each, 2-core
#: machine, 14 runs, all beside another engineer's training benchmark, 6 of them also beside two
#: busy-loop CPU hogs, which do not delay SCHED_FIFO threads): p50 0.017-0.049 ms, p99
#: 0.15-1.05 ms in 13 runs and 3.19 ms in one. The p99 bound is 3x the documented worst p99.
ARRIVAL_P50_MS = 0.25
ARRIVAL_P99_MS = 4.5


def test_deadline_publisher_puts_every_chunk_on_the_grid(processes):
    """What the benchmark reports for the floor is arrival times at a subscriber in another
    process: they must be on the period, not only the stamps the publisher sets."""
    rate = 50.0
    pub = processes.start("deadline", [PUBLISHER, "--topic", TOPIC, "--rate", str(rate),
                                       "--duration", "30", "--priority", "50"])
    ready = pub.wait_for_line("DEADLINE PUBLISHER READY", 60)
    rec = processes.start("recorder", [RECORDER, "--topic", TOPIC, "--duration", "5",
                                       "--timeout", "60", "--rt-priority", "60"])
    data = json.loads(rec.wait_for_line("CHUNKS ", 90)[len("CHUNKS "):])
    rows = [dict(zip(data["fields"], row)) for row in data["rows"]]
    period_ns = int(round(1e9 / rate))
    assert len(rows) >= 200, len(rows)  # 5 s at 50 Hz
    stamps = np.array([r["stamp_ns"] for r in rows], dtype=np.int64)
    steps = np.diff(stamps)
    # stamped with the deadline itself: every step a whole number of periods, almost all one
    assert np.all(steps % period_ns == 0) and np.all(steps > 0), steps
    assert np.mean(steps == period_ns) >= 0.9, steps / period_ns
    sequences = np.array([r["sequence"] for r in rows])
    assert np.all(np.diff(sequences) > 0), sequences
    assert all(r["inference_stamp_ns"] == r["stamp_ns"] for r in rows)
    # Arrival: |inter-arrival - period| between chunks of neighbouring deadlines, as the
    # benchmark's deviation (a missed deadline is counted above, not as a late arrival).
    recv = np.array([r["recv_ns"] for r in rows], dtype=np.int64)
    adjacent = np.diff(sequences) == 1
    deviation_ms = np.abs(np.diff(recv)[adjacent] - period_ns) / 1e6
    p50, p99 = np.percentile(deviation_ms, [50, 99])
    print(f"\nfloor at the subscriber ({ready}; n={deviation_ms.size}): deviation p50 "
          f"{p50:.3f} ms, p99 {p99:.3f} ms, max {deviation_ms.max():.3f} ms", flush=True)
    assert deviation_ms.size >= 180, deviation_ms.size
    assert p99 <= ARRIVAL_P99_MS, (ready, p50, p99, np.sort(deviation_ms)[-5:])
    assert p50 <= ARRIVAL_P50_MS, (ready, p50, p99)
