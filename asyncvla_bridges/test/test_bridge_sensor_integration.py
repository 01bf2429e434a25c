"""Force/OCT sensor bridge as a real process: a UDP peer and an rclpy subscriber in the test.

One test runs the whole life of a bridge: good datagrams with every published field checked,
a fuzz pass whose drop counters must match exactly (datagram_* count datagrams, record_* count
records), good datagrams again, and a clean SIGINT shutdown.
"""
from __future__ import annotations

import math
import os
import struct
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))

from asyncvla_testing.bridge_harness import (domain_id, drops, start_bridge,  # noqa: E402
                                             wait_diagnostics)
from asyncvla_testing.lab_senders import SensorSender, sensor_datagram  # noqa: E402
from asyncvla_testing.ros_listener import RosListener  # noqa: E402

OFFSET = -7.25   # the sensor PC's clock is 7.25 s ahead of ours
RATE = 650.0
BATCH = "/sensor/force_oct"
WRENCH = "/sensor/wrench"


class Sensor:
    """A 650 Hz sensor in sender time: strictly increasing sample times, never in the future.

    `records(n)` returns the next n samples, waiting until the newest has been captured; after
    an idle spell it skips ahead (samples nobody sent), so data is always fresh.
    """

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.start = time.time() - OFFSET
        self.k = 0
        self.value = 0

    def records(self, n: int) -> list[tuple]:
        now_sender = time.time() - OFFSET
        self.k = max(self.k, int((now_sender - 0.005 - self.start) * RATE))
        newest = self.start + (self.k + n - 1) / RATE
        if newest > now_sender:
            time.sleep(newest - now_sender)
        send = time.time() - OFFSET
        out = []
        for i in range(n):
            ts = self.start + (self.k + i) / RATE
            out.append((ts, send, float(np.float32(0.01 * self.value - 1.0)),
                        self.rng.normal(size=1025).astype(np.float32)))
            self.value += 1
        self.k += n
        return out


def stamp_s(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def check_batches(batches, wrenches, sent: list[tuple]) -> None:
    """Published batches/wrenches carry exactly the records in `sent`, in order."""
    flat_stamps = [stamp_s(s) for b in batches for s in b.sample_stamps]
    assert len(flat_stamps) == len(sent) == len(wrenches)
    forces = np.concatenate([np.asarray(b.force) for b in batches])
    alines = np.concatenate([np.asarray(b.alines).reshape(b.num_samples, b.aline_length)
                             for b in batches])
    np.testing.assert_array_equal(forces, [r[2] for r in sent])
    np.testing.assert_array_equal(alines, np.stack([r[3] for r in sent]))
    for b in batches:
        assert b.header.frame_id == "probe_tip" and b.aline_length == 1025
        assert b.num_samples == len(b.sample_stamps) == len(b.force)
        assert b.header.stamp == b.sample_stamps[-1]
        # The offset estimate: local - sender, plus the smallest delay seen (loopback: ~ms).
        assert 0.0 <= b.clock_offset - OFFSET < 0.03, b.clock_offset
    for stamp, record in zip(flat_stamps, sent):
        lag = stamp - (record[0] + OFFSET)  # vs. the sample's true local capture time
        assert 0.0 <= lag < 0.03, lag
    for w, stamp, record in zip(wrenches, flat_stamps, sent):
        assert w.header.frame_id == "probe_tip" and abs(stamp_s(w.header.stamp) - stamp) < 1e-9
        f, t = w.wrench.force, w.wrench.torque
        assert (f.x, f.y, f.z) == (-record[2], 0.0, 0.0)  # probe.force_axis "-x"
        assert (t.x, t.y, t.z) == (0.0, 0.0, 0.0)


def test_sensor_bridge_end_to_end(processes):
    from asyncvla_msgs.msg import ForceOctBatch
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import WrenchStamped

    proc, endpoint = start_bridge(processes, "sensor", {
        "wire": {"port": 0}, "probe": {"frame_id": "probe_tip", "force_axis": "-x"},
        "reporting": {"diagnostics_period": 0.2}})
    host, port = endpoint[len("udp://"):].rsplit(":", 1)
    sender = SensorSender(host, int(port))
    sensor = Sensor()
    with RosListener(domain_id(processes), {BATCH: ForceOctBatch, WRENCH: WrenchStamped,
                                            "/diagnostics": DiagnosticArray}) as ros:
        datagrams = records_sent = 0
        deadline = time.monotonic() + 20
        while not len(ros[BATCH]) and time.monotonic() < deadline:
            sender.send(sensor_datagram(sensor.records(2)))
            datagrams += 1
            records_sent += 2
            time.sleep(0.05)
        time.sleep(0.3)
        first_b, first_w = len(ros[BATCH]), len(ros[WRENCH])
        assert first_b
        warm_records = records_sent

        sent = []
        for n in [1, 5, 10, 15, 3] * 4:   # 15 records is the most a UDP datagram can carry
            recs = sensor.records(n)
            sender.send(sensor_datagram(recs))
            sent += recs
            datagrams += 1
        records_sent += len(sent)
        ros[BATCH].wait_for(first_b + 20, 10)
        ros[WRENCH].wait_for(first_w + len(sent), 10)
        check_batches(ros[BATCH].snapshot()[first_b:], ros[WRENCH].snapshot()[first_w:], sent)

        # Fuzz. Datagram-level reasons count datagrams, record-level reasons count records.
        rng = np.random.default_rng(7)
        expected: dict[str, int] = {}
        garbage_records = 0
        good_records = 0
        last_good: list[tuple] = sent[-3:]

        def expect(reason: str, n: int = 1) -> None:
            expected[reason] = expected.get(reason, 0) + n

        for i in range(3000):
            kind = i % 8
            if kind == 0:
                size = int(rng.integers(0, 20000))
                data = rng.bytes(size)
                if len(data) >= 4 and len(data) == 4 + struct.unpack_from("<I", data)[0] * 4120:
                    data += b"\x00"
                expect("datagram_size") if len(data) != 4 else None
                if len(data) == 4:  # count 0 would be "empty"; keep this case a size error
                    data = b"\x01\x00\x00"
                    expect("datagram_size")
            elif kind == 1:
                good = sensor_datagram(sensor.records(2))
                data = good[:int(rng.integers(1, len(good)))] if i % 16 else good + b"\x00"
                expect("datagram_size")
            elif kind == 2:
                data = struct.pack("<I", 0)
                expect("datagram_empty")
            elif kind == 3:  # one bad record among good ones: only that record is lost
                recs = sensor.records(3)
                which = int(rng.integers(0, 3))
                ts, st, f, aline = recs[which]
                field = i % 3
                if field == 0:
                    f = [math.nan, math.inf][i % 2]
                elif field == 1:
                    aline = aline.copy()
                    aline[int(rng.integers(0, 1025))] = [math.nan, -math.inf][i % 2]
                else:
                    ts = math.nan
                recs[which] = (ts, st, f, aline)
                data = sensor_datagram(recs)
                expect("record_nonfinite")
                good_records += 2
            elif kind == 4:  # a datagram sent again: every record is a duplicate
                data = sensor_datagram(last_good)
                expect("record_reordered", len(last_good))
            elif kind == 5:  # sample times far in the future: no delay explains them
                recs = sensor.records(2)
                data = sensor_datagram([(ts + 1e4, st, f, a) for ts, st, f, a in recs])
                expect("record_clock_suspect", 2)
            elif kind == 6:  # right size, random content: each record dropped for some reason
                n = int(rng.integers(1, 4))
                data = struct.pack("<I", n) + rng.bytes(n * 4120)
                garbage_records += n
            else:
                last_good = sensor.records(int(rng.integers(1, 4)))
                data = sensor_datagram(last_good)
                good_records += len(last_good)
            sender.send(data)
            datagrams += 1
            if i % 25 == 24:
                time.sleep(0.004)  # stay far below the socket buffer: UDP loss is not a drop
        after = []
        for _ in range(10):
            recs = sensor.records(4)
            sender.send(sensor_datagram(recs))
            datagrams += 1
            after += recs
            time.sleep(0.006)
        good_records += len(after)

        diag = wait_diagnostics(ros, "sensor_bridge", lambda v: int(v["received"]) == datagrams,
                                20)
        assert diag["kernel_drops"] == "0"
        got = drops(diag)
        # Nothing is published before the clock offset is confirmed (0.2 s of warm-up records).
        settling = got.pop("record_clock_settling", 0)
        assert 0 < settling < warm_records
        record_reasons = {k: v for k, v in got.items() if k.startswith("record_")}
        for reason, count in expected.items():
            if reason.startswith("datagram_"):
                assert got.get(reason) == count, (reason, got, expected)
            else:
                assert record_reasons.get(reason, 0) >= count, (reason, got, expected)
        expected_records = sum(v for k, v in expected.items() if k.startswith("record_"))
        assert sum(record_reasons.values()) == expected_records + garbage_records, \
            (got, expected, garbage_records)
        assert int(diag["published"]) == warm_records - settling + len(sent) + good_records
        assert int(diag["thread_errors"]) == 0 and diag["clock_jumps"] == "0"
        assert proc.alive()
        n_after = len(after)
        wrenches = ros[WRENCH].wait_for(first_w + len(sent) + good_records, 10)
        assert len(wrenches) - first_w == len(sent) + good_records
        batches = ros[BATCH].snapshot()
        check_batches(batches[-10:], wrenches[-n_after:], after)

    sender.close()
    assert proc.stop(timeout=10) == 0
    assert "shut down cleanly" in proc.output() and "Traceback" not in proc.output()


def test_first_published_samples_are_stamped_exactly(processes):
    """A sender that batches 10 samples per datagram (the first sample is 14 ms older than the
    last when the datagram leaves): from the very first published datagram on, every sample is
    stamped within 3 ms of its true capture time (the whole datagram informs the clock before
    any of its samples is stamped, and nothing is published before the clock is confirmed)."""
    from asyncvla_msgs.msg import ForceOctBatch

    proc, endpoint = start_bridge(processes, "sensor", {"wire": {"port": 0},
                                                           "publish_wrench": False})
    host, port = endpoint[len("udp://"):].rsplit(":", 1)
    with RosListener(domain_id(processes), {BATCH: ForceOctBatch}) as ros:
        ros.wait_until(lambda: ros.node.count_publishers(BATCH) > 0, 20, "bridge discovered")
        time.sleep(0.3)
        sender, sensor = SensorSender(host, int(port)), Sensor(seed=3)
        sent = []
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            recs = sensor.records(10)
            sender.send(sensor_datagram(recs))
            sent += recs
        batches = ros[BATCH].wait_for(1, 10)
        time.sleep(0.3)
        batches = ros[BATCH].snapshot()
        sender.close()
    assert batches[0].num_samples == 10
    truth = {float(np.float32(r[2])): r[0] + OFFSET for r in sent}  # force value -> capture
    lags = [stamp_s(s) - truth[float(f)] for b in batches
            for s, f in zip(b.sample_stamps, np.asarray(b.force))]
    assert len(lags) > 0.7 * len(sent)  # all but the settling 0.2 s
    assert 0.0 <= min(lags) and max(lags) < 0.003, (min(lags), max(lags))
