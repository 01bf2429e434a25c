#!/usr/bin/env python3
"""Benchmark: how fast the camera bridge recovers from the lab's field conditions, how true its
stamps stay, side by side with the bound the field tests hold it to (1 s, 50 ms).

Runs the camera bridge (installed entry point, default parameters) as a process on loopback
against `asyncvla_testing.lab_camera_sender` (the lab's Jetson sender as it behaves: a queue of
up to 1000 frames while nobody listens, its own clock, steps, views out of order, the 5 FPS
second generation) and a listener in this process, subscribed before the bridge starts. For each
scenario it reports `flows_again_s`: from the condition to the first frame *delivered* to the
listener that was captured at or after it (for a bridge start under a backlog: from the bridge's
"ready" line, its socket open, to the first delivered frame, DDS discovery included); the published stamps'
error against the true capture time (summary: n, p50, p99, max in ms, over every delivered
frame); and the frames dropped while the bridge was settling. One JSON object on stdout (and in
`--out`), with the CPU, date and command (tools/bench/run_record.py).

Usage: flock /tmp/asyncvla-cpu.lock python tools/bench/bench_camera_field.py --settle 3 \
           --out docs/benchmarks/camera_field-<cpu kind>.json
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
from asyncvla_testing.bridge_harness import latest_diagnostics, start_bridge  # noqa: E402
from asyncvla_testing.lab_camera_sender import LabCameraSender, true_capture  # noqa: E402
from asyncvla_testing.processes import ProcessGroup, allocate_domain_id  # noqa: E402
from run_record import emit, run_record, summary  # noqa: E402

TOPICS = [f"/camera/view{i}/image_raw/compressed" for i in range(1, 6)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Scenario:
    def __init__(self, group: ProcessGroup, domain: int) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import CompressedImage

        from asyncvla_testing.ros_listener import RosListener

        self.group = group
        self.ros = RosListener(domain, {t: CompressedImage for t in TOPICS}
                               | {"/diagnostics": DiagnosticArray})
        self.port = free_port()
        self.proc = None

    def start_bridge(self, wait_discovery: bool) -> float:
        self.proc, _ = start_bridge(self.group, "camera", {
            "wire": {"port": self.port}, "reporting": {"diagnostics_period": 0.2}})
        started = time.time()
        if wait_discovery:
            self.ros.wait_until(lambda: all(self.ros.node.count_publishers(t) for t in TOPICS),
                                20, "bridge discovered")
            time.sleep(0.3)
        return started

    def frames(self) -> list[tuple[float, float, float]]:
        """(receive time, published stamp, true capture time) of every delivered frame."""
        out = []
        for topic in TOPICS:
            for received, msg in self.ros[topic].timed():
                stamp = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
                out.append((received, stamp, true_capture(bytes(msg.data))[0]))
        return sorted(out)

    def report(self, since: float) -> dict[str, object]:
        """Frames flow again: the first frame captured at or after `since` that reached the
        listener, `flows_again_s` after `since`."""
        frames = self.frames()
        first = next((r for r, _, c in frames if c >= since), float("nan"))
        diag = latest_diagnostics(self.ros, "camera_bridge") or {}
        return {"flows_again_s": round(first - since, 3), "delivered": len(frames),
                "stamp_error_ms": summary(abs(s - c) * 1e3 for _, s, c in frames),
                "dropped_settling": int(diag.get("drop.clock_settling", 0)),
                "clock_jumps": int(diag.get("clock_jumps", 0))}

    def close(self) -> None:
        self.ros.close()
        self.group.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle", type=float, default=3.0, help="seconds per phase")
    parser.add_argument("--out", help="also write the JSON object to this file")
    args = parser.parse_args()
    if args.settle <= 0:
        parser.error("--settle must be > 0")
    results: dict[str, object] = {"bound_recovery_s": 1.0, "bound_stamp_error_ms": 50.0}

    def scenario() -> Scenario:
        domain = allocate_domain_id()
        env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
                   ROS_DOMAIN_ID=str(domain), PYTHONUNBUFFERED="1")
        return Scenario(ProcessGroup(env), domain)

    s = scenario()
    sender = LabCameraSender(f"tcp://127.0.0.1:{s.port}").start()
    time.sleep(args.settle)
    started = s.start_bridge(wait_discovery=False)
    time.sleep(args.settle)
    results["backlog_at_start"] = s.report(started)
    results["backlog_at_start"]["sender_frames_before_start"] = int(args.settle * 150)
    sender.stop()
    s.close()

    s = scenario()
    s.start_bridge(wait_discovery=True)
    sender = LabCameraSender(f"tcp://127.0.0.1:{s.port}").start()
    time.sleep(args.settle)
    step = sender.step_clock(+2.0)
    time.sleep(args.settle)
    results["clock_step_forward_2s"] = s.report(step)
    step = sender.step_clock(-2.0)
    time.sleep(args.settle)
    results["clock_step_back_2s"] = s.report(step)
    sender.stop()
    s.close()

    s = scenario()
    s.start_bridge(wait_discovery=True)
    started = time.time()
    sender = LabCameraSender(f"tcp://127.0.0.1:{s.port}", generation=2).start()
    time.sleep(args.settle)
    results["second_generation_5fps"] = s.report(started)
    sender.stop()
    s.close()
    emit({**run_record("camera_field"), "settle_s": args.settle, "results": results}, args.out)


if __name__ == "__main__":
    main()
