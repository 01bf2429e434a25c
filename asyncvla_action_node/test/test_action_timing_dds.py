"""The timing-thread action loop over real DDS: at rate, no bursts, honest provenance.

A 50 Hz action node (tiny policy) runs on synthetic inputs; a separate process records every
ActionChunk. Thresholds are for a loaded 2-core CI machine (other tests may run at once), yet
fail if the design regresses: a tick that bursts after a stall (two chunks stamped under half a
period apart), a loop that stops ticking at rate, or a chunk that presents an old inference as a
new one (reuse counts that do not count up, an inference or sensor stamp after the chunk's).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from asyncvla_testing.pipeline import HERE, start_action, start_sources

pytest.importorskip("rclpy")

RATE = 50.0
RECORDER = os.path.join(HERE, "chunk_recorder.py")
INJECTOR = os.path.join(HERE, "vl_injector.py")


def record_node(processes, assets, duration_s: float, **params):
    """A 50 Hz node of the given design on synthetic inputs, and the chunks a separate process
    recorded in `duration_s` (with the node's last "action output" diagnostic)."""
    start_sources(processes, ["view1"], ["--camera-fps", "2"])
    processes.start("vl", [INJECTOR, "--model-id", assets.model_id, "--tokens",
                           str(assets.num_feature_tokens), "--dim", "64", "--rate", "3"])
    timing = {"action_rate_hz": RATE, "inference_trigger": "sensor", **params.pop("timing")}
    node = start_action(processes, assets, timing=timing, freshness={
        "robot_state_max_age": 0.5, "sensor_max_age": 0.3, "max_inference_age": 0.5}, **params)
    node.wait_for_line("action node ready", 60)
    rec = processes.start("recorder", [RECORDER, "--duration", str(duration_s),
                                       "--timeout", "60"])
    data = json.loads(rec.wait_for_line("CHUNKS ", 90)[len("CHUNKS "):])
    rows = [dict(zip(data["fields"], row)) for row in data["rows"]]
    assert len(rows) > 20, node.output()[-3000:]
    return node, data, rows


def test_timing_thread_publishes_at_rate_without_bursts(processes, assets):
    node, data, rows = record_node(processes, assets, 5, timing={"tick_source": "timing_thread"})
    stamps = np.array([r["stamp_ns"] for r in rows], dtype=np.int64)
    gaps_ms = np.diff(stamps) / 1e6
    period_ms = 1e3 / RATE
    # no burst: each chunk is for a tick of its own on the grid; a tick woken late (by less than
    # a period, or it is skipped) may be followed closely by an on-time one, but four chunks
    # never span two periods or less (a catch-up burst after a stall would)
    assert np.all(stamps[3:] - stamps[:-3] > 2 * period_ms * 1e6), (gaps_ms, data["diagnostics"])
    # at rate: the typical gap is one period (late wake-ups keep the grid), and at least 40 %
    # of the span's ticks arrived (the rest: ticks withheld while a loaded machine starves the
    # synthetic inputs; an executor timer running a 20 ms+ expert inline failed this)
    assert abs(float(np.median(gaps_ms)) - period_ms) < 3.0, (gaps_ms, data["diagnostics"])
    span_ticks = (stamps[-1] - stamps[0]) / 1e6 / period_ms
    assert len(rows) >= 0.4 * span_ticks, (len(rows), span_ticks)
    # honest provenance: an inference's re-publications count up from 0 and are never newer
    # than the chunk; the sensor sample is never newer than the inference's inputs
    seen: dict[int, list[int]] = {}
    for r in rows:
        assert r["inference_stamp_ns"] <= r["stamp_ns"]
        assert 0 < r["sensor_stamp_ns"] <= r["inference_stamp_ns"]
        seen.setdefault(r["inference_sequence"], []).append(r["inference_reuse_count"])
    assert list(seen) == sorted(seen) and len(seen) >= 3  # inferences arrive in order
    assert all(np.all(np.diff(counts) > 0) for counts in seen.values())
    later = list(seen.values())[1:]  # the first may have started before the recorder
    assert sum(counts[0] == 0 for counts in later) >= 0.8 * len(later)


def test_publisher_process_publishes_at_the_deadline_and_ends_with_its_node(processes, assets):
    """`timing.tick_source: publisher_process`: each tick is prepared 8 ms ahead and its chunk reaches
    the subscriber at its deadline, not when it was prepared; the child process publishes, and
    stops publishing once its node is killed (SIGKILL: no clean-up of the node's own)."""
    node, data, rows = record_node(
        processes, assets, 4, timing={"tick_source": "publisher_process", "publish_lead_ms": 8.0},
        reporting={"diagnostics_period": 0.5})
    stamps = np.array([r["stamp_ns"] for r in rows], dtype=np.int64)
    early_ms = (stamps - np.array([r["recv_ns"] for r in rows], dtype=np.int64)) / 1e6
    # published at the deadline the chunk is stamped for: prepared 8 ms ahead, a chunk sent at
    # once would arrive ~8 ms before its stamp; allow the clocks' sub-millisecond difference
    assert np.median(early_ms) < 0.5 and np.mean(early_ms < 2.0) > 0.95, sorted(early_ms)[-10:]
    assert np.all(stamps[3:] - stamps[:-3] > 2 * 20e6), np.diff(stamps) / 1e6  # no burst
    diag = data["diagnostics"]
    assert diag.get("publisher_process") == "running", diag
    assert int(diag["publisher_published"]) > 0 and "publisher process" in diag["tick_thread"]
    children = subprocess.run(["pgrep", "-P", str(node.popen.pid)], capture_output=True,
                              text=True).stdout.split()
    assert len(children) == 1, children
    os.kill(node.popen.pid, signal.SIGKILL)  # the node alone, not its process group
    assert wait_gone(int(children[0]), 10.0), f"publisher process {children[0]} outlived its node"


def wait_gone(pid: int, timeout: float) -> bool:
    """True once `pid` has exited (gone, or a zombie nobody reaped yet) within `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(") ", 1)[-1].startswith("Z"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.1)
    return False
