#!/usr/bin/env python3
"""Impose a VLM latency over real DDS: republish VL features as late as a slower VLM would.

The VLM node (with a tiny model its compute takes tens of milliseconds) publishes
asyncvla_msgs/VLFeatures on ``--input-topic``; this relay republishes each message unchanged
(same stamp: the camera frame's capture time; same sequence, model id, payload) on
``--output-topic``, where the action node listens, ``--latency - compute_time`` seconds after it
arrived, ``compute_time`` being the message's own (the VLM's measured compute). So a message
leaves the relay ``--latency`` (plus the VLM's encoding and the two hops' transport) after its
VLM update started, as if the model's compute took ``--latency``. With the VLM node's
``timing.target_period`` set to ``--latency`` its updates start that far apart: a VLM whose compute
takes ``--latency``, run back to back (the simulator's ``LatencyModel``).

Both topics use the VLM node's QoS (latched: reliable, transient local, depth 1). Messages are
released in due order from a thread of their own (rclpy publishers are thread-safe). Each
release is logged: ``RELAY <sequence> stamp_ns=<> compute_ms=<> held_ms=<> late_ms=<>``
(held: arrival to release; late: release after the due time).
"""
from __future__ import annotations

import argparse
import heapq
import itertools
import os
import sys
import threading
import time

from rclpy.node import Node

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from asyncvla_common import qos  # noqa: E402
from asyncvla_common.timeconv import stamp_to_ns  # noqa: E402
from asyncvla_msgs.msg import VLFeatures  # noqa: E402


def hold_for(latency: float, compute_time: float) -> float:
    """Seconds to keep a message whose VLM compute took ``compute_time`` (never negative)."""
    return max(0.0, float(latency) - float(compute_time))


class VLDelayRelay(Node):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__("vl_delay_relay")
        self.latency = float(args.latency)
        self.pub = self.create_publisher(VLFeatures, args.output_topic, qos.LATCHED)
        self.create_subscription(VLFeatures, args.input_topic, self._on_vl, qos.LATCHED)
        self._queue: list[tuple[float, int, float, VLFeatures]] = []  # (due, n, arrival, msg)
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._release_loop, daemon=True)
        self._thread.start()
        print(f"RELAY READY latency={self.latency:g} {args.input_topic} -> {args.output_topic}",
              flush=True)

    def _on_vl(self, msg: VLFeatures) -> None:
        arrival = time.monotonic()
        due = arrival + hold_for(self.latency, msg.compute_time)
        with self._cond:
            heapq.heappush(self._queue, (due, next(self._order), arrival, msg))
            self._cond.notify()

    def _release_loop(self) -> None:
        while True:
            with self._cond:
                while not self._stop and (not self._queue
                                          or self._queue[0][0] > time.monotonic()):
                    wait = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._cond.wait(wait)
                if self._stop:
                    return
                due, _, arrival, msg = heapq.heappop(self._queue)
            try:
                self.pub.publish(msg)
            except Exception:  # noqa: BLE001 - the context closed under the thread at shutdown
                return
            now = time.monotonic()
            print(f"RELAY {msg.sequence} stamp_ns={stamp_to_ns(msg.header.stamp)} "
                  f"compute_ms={msg.compute_time * 1e3:.1f} held_ms={(now - arrival) * 1e3:.1f} "
                  f"late_ms={(now - due) * 1e3:.1f}", flush=True)

    def destroy_node(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(2.0)
        super().destroy_node()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, required=True,
                        help="s from a VLM update's start to its features leaving the relay")
    parser.add_argument("--input-topic", default="/asyncvla/vl_features_vlm")
    parser.add_argument("--output-topic", default="/asyncvla/vl_features")
    args = parser.parse_args()
    from asyncvla_common.spin import spin_node

    sys.exit(spin_node(lambda: VLDelayRelay(args), "vl_delay_relay"))


if __name__ == "__main__":
    main()
