"""asyncvla_msgs over real DDS between separate processes (Fast DDS on loopback)."""
from __future__ import annotations

import hashlib
import json
import os
import time

import numpy as np
import pytest

PEER = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "asyncvla_testing",
                    "dds_peer.py")
MAX_PAYLOAD_BYTES = 1048576  # VLFeatures.MAX_PAYLOAD_BYTES, checked against the message below


def records(proc, prefix: str) -> list[dict]:
    return [json.loads(line[len(prefix):]) for line in proc.lines if line.startswith(prefix)]


def test_budget_constant_matches_message():
    from asyncvla_msgs.msg import VLFeatures

    assert VLFeatures.MAX_PAYLOAD_BYTES == MAX_PAYLOAD_BYTES


@pytest.mark.parametrize("kind", ["VLFeatures", "ActionChunk", "ForceOctBatch"])
def test_every_field_round_trips_between_processes(processes, kind):
    sub = processes.start("sub", [PEER, "sub", "--type", kind, "--full", "--count", "2"])
    sub.wait_for_line("SUBSCRIBED", 20)
    pub = processes.start("pub", [PEER, "pub", "--type", kind, "--count", "2", "--print-sent",
                                  "--wait-subscribers", "1", "--period", "0.05", "--hold", "1"])
    sub.wait_for_line("DONE", 30)
    pub.wait_for_line("DONE", 30)
    sent = records(pub, "SENT ")
    received = [r["msg"] for r in records(sub, "RECV ")]
    assert len(sent) == 2 and received == sent
    # The two samples differ, so a subscriber that repeated one message would fail above.
    assert sent[0] != sent[1]


def test_late_subscriber_receives_last_latched_vlfeatures(processes):
    pub = processes.start("pub", [PEER, "pub", "--type", "VLFeatures", "--latched", "--count", "3",
                                  "--hold", "30"])
    pub.wait_for_line("PUBLISHED 2", 20)
    time.sleep(1.5)  # the subscriber starts well after the last publish
    sub = processes.start("sub", [PEER, "sub", "--type", "VLFeatures", "--latched", "--count",
                                  "3", "--timeout", "4"])
    done = sub.wait_for_line("DONE", 30)
    got = records(sub, "RECV ")
    # Depth 1: exactly the newest message, not the history.
    assert done == "DONE received=1"
    assert [r["sequence"] for r in got] == [3]


def test_volatile_subscriber_does_not_receive_history(processes):
    """Control for the test above: without TRANSIENT_LOCAL nothing published earlier arrives."""
    pub = processes.start("pub", [PEER, "pub", "--type", "VLFeatures", "--count", "3",
                                  "--hold", "30"])
    pub.wait_for_line("PUBLISHED 2", 20)
    time.sleep(1.5)
    sub = processes.start("sub", [PEER, "sub", "--type", "VLFeatures", "--count", "1",
                                  "--timeout", "3"])
    assert sub.wait_for_line("DONE", 30) == "DONE received=0"


def test_max_budget_vlfeatures_crosses_processes(processes):
    count = 5
    sub = processes.start("sub", [PEER, "sub", "--type", "VLFeatures", "--latched", "--count",
                                  str(count), "--timeout", "30"])
    sub.wait_for_line("SUBSCRIBED", 20)
    pub = processes.start("pub", [PEER, "pub", "--type", "VLFeatures", "--latched", "--count",
                                  str(count), "--payload-bytes", str(MAX_PAYLOAD_BYTES),
                                  "--period", "0.3", "--wait-subscribers", "1", "--hold", "2",
                                  "--stamp-at-publish"])
    sub.wait_for_line("DONE", 60)
    got = records(sub, "RECV ")
    # Latched is KEEP_LAST 1 ("only the newest matters"): a subscriber busy for longer than the
    # period (a loaded 2-core CI machine) may see a sample replaced by the next one. What must
    # hold: the newest arrives, in order, and every sample that arrives is intact.
    sequences = [rec["sequence"] for rec in got]
    assert len(got) >= 2 and sequences[-1] == count, sub.output()
    assert sequences == sorted(set(sequences)), sequences
    for rec in got:
        rng = np.random.default_rng(rec["sequence"] - 1)  # dds_peer: sequence = index + 1
        expected = rng.integers(0, 256, size=MAX_PAYLOAD_BYTES, dtype=np.uint8).tobytes()
        assert rec["bytes"] == MAX_PAYLOAD_BYTES
        assert rec["sha"] == hashlib.sha256(expected).hexdigest()[:16]
    latencies = sorted(r["latency_ms"] for r in got)
    print(f"\n1 MiB VLFeatures publish-to-receive latency ms: {latencies}")
    # Bounds at 3x the 1 MiB figures bench_vlfeatures_latency.py measured when they were set
    # (60 messages: p50 13.3 ms, p99 14.4 ms; the committed run is
    # docs/benchmarks/vlfeatures_latency-*.json). Measured with this test (5 messages each, 2-core machine,
    # all beside another engineer's training benchmark): medians 3.5-20.4 ms, largest 28.3 ms
    # in 4 runs; medians 5.9-18.2 ms, largest 29.1 ms in 7 runs also beside busy-loop CPU hogs.
    assert 0 < latencies[len(latencies) // 2] <= 3 * 13.3, latencies
    assert latencies[-1] <= 3 * 14.4, latencies
    pub.wait_for_line("DONE", 30)
