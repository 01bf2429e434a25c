"""ROS glue shared by the three bridges (camera, robot, force/OCT sensor).

What every bridge needs and nothing more: its typed parameters (`bridge_config`: the shared
clock, freshness and reporting groups and the bridge's own), the clock-offset estimator, drop
counters by reason, rates and stamp latency for /diagnostics, throttled logs, the receive thread,
and a `main` that shuts down cleanly on SIGINT (stop the thread, close the socket, destroy the
node). Parsing and clock logic live in the ROS-free `wire` package.

Threading: the socket is read and messages are published from one background thread
(rcl publishers are thread-safe); the executor thread only runs the diagnostics timer and the
parameter services, so it never blocks on I/O. Counters and rate meters are lock-protected; the
estimator is only written by the receive thread.
"""
from __future__ import annotations

import sys
import time
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from asyncvla_common import params
from asyncvla_common.diagnostics import DiagnosticsPublisher
from asyncvla_common.report import ERROR, OK, WARN, Report
from asyncvla_common.stats import Counters, DropWindow, RateMeter, RollingStats, drop_severity
from .receive_loop import ReceiveLoop
from .bridge_config import BridgeConfig
from .wire.clock_offset import ClockOffsetEstimator
from .wire.errors import WireError
from .wire.clock_offset import Verdict
from .wire.stamping import Stamper

LOG_PERIOD_S = 5.0
RECENT_JUMP_S = 10.0


class BridgeNode(Node):
    """Base class: subclasses open their socket, call `start_receiving(step)` and publish."""

    #: Drop reasons this bridge can report; all appear in /diagnostics from the start (as 0).
    DROP_REASONS: tuple[str, ...] = ()

    def __init__(self, name: str, config_class: type[BridgeConfig]) -> None:
        super().__init__(name)
        self.counters = Counters()
        self.rx_rate = RateMeter()
        self.pub_rate = RateMeter()
        self.latency = RollingStats(1000)  # receive time - stamp, seconds
        self.drop_window = DropWindow()
        self.last_error = ""
        self.endpoint = ""
        self._log_state: dict[str, tuple[float, int]] = {}
        self._last_rx: float | None = None
        self._loop: ReceiveLoop | None = None
        self._seen_jumps, self._jump_seen_at = 0, -1e9
        #: The typed parameters (bridge_config); subclasses read their own groups from it.
        self.config = params.declare_config(self, config_class)
        self.clock_source = self.config.clock.offset_source
        self.estimator = ClockOffsetEstimator(self.config.clock.estimator())
        self.stamper = Stamper(self.estimator)
        self.stale_timeout = self.config.freshness.stale_timeout
        self.diagnostics = DiagnosticsPublisher(
            self, period=self.config.reporting.diagnostics_period)
        self.diagnostics.add("bridge", self._report)

    # -- time ---------------------------------------------------------------------------------

    def now_s(self) -> float:
        """Local ROS time in seconds (the clock the published stamps are in)."""
        return self.get_clock().now().nanoseconds * 1e-9

    def clock_time(self, capture: float, send: float | None) -> float:
        """The sender time the clock offset is estimated from (`clock.offset_source`)."""
        return send if self.clock_source == "send" and send is not None else capture

    def observe_clock(self, clock_time: float, local_now: float,
                      queued_for: float = 0.0) -> Verdict:
        """Feed one sample's sender time to the clock estimator; log a confirmed sender step."""
        jumps, locks = self.estimator.jumps, self.estimator.locks
        verdict = self.stamper.observe(clock_time, local_now, queued_for)
        if self.estimator.locks != locks:
            self.get_logger().info(
                f"sender clock locked: offset {self.estimator.offset:.6f} s (local - sender), "
                f"{self.estimator.settling} samples dropped while settling")
        if self.estimator.jumps != jumps:
            step = self.estimator.last_step
            self.warn_throttled("clock_jump", f"sender clock stepped "
                                f"{'forward' if step > 0 else 'back'} by {step:+.3f} s; offset "
                                f"estimate reset to {self.estimator.offset:.6f} s")
        return verdict

    def stamp_sample(self, capture: float, verdict: Verdict, local_now: float,
                     key: object = None, queued_for: float = 0.0) -> float:
        """Local stamp (s) of a sender capture time; raise WireError if it must be dropped."""
        stamp = self.stamper.map(capture, verdict, key)
        if queued_for <= self.estimator.config.queue_tolerance:
            self.latency.add(local_now - stamp)
        return stamp

    def map_stamp(self, capture: float, send: float | None, local_now: float,
                  key: object = None, queued_for: float = 0.0) -> float:
        """Local stamp (s) of one sample's capture time; raise WireError if it must be dropped.

        `queued_for`: an upper bound of how long the message waited in our own receive queue
        (see wire/clock_offset.py).
        """
        verdict = self.observe_clock(self.clock_time(capture, send), local_now, queued_for)
        return self.stamp_sample(capture, verdict, local_now, key, queued_for)

    # -- accounting ---------------------------------------------------------------------------

    def note_received(self, inputs: int = 1) -> None:
        """One message arrived carrying `inputs` inputs (samples) for the drop ratio."""
        now = time.monotonic()
        self._last_rx = now
        self.rx_rate.tick(now)
        self.counters.inc("received")
        self.drop_window.received(now, inputs)

    def note_published(self, count: int = 1) -> None:
        now = time.monotonic()
        for _ in range(count):
            self.pub_rate.tick(now)
        self.counters.inc("published", count)

    def drop(self, error: WireError, count: int = 1, prefix: str = "") -> None:
        """Count `count` dropped inputs under `drop.<prefix><reason>`; log it, throttled."""
        key = f"drop.{prefix}{error.reason}"
        self.counters.inc(key, count)
        self.drop_window.dropped(time.monotonic(), f"{prefix}{error.reason}", count)
        self.last_error = f"{prefix}{error.reason}: {error.detail}"[:200]
        self.warn_throttled(key, f"dropped {count} input(s), {prefix}{error.reason}: "
                                 f"{error.detail}")

    def warn_throttled(self, key: str, message: str) -> None:
        """At most one log line per key every LOG_PERIOD_S, saying how many were suppressed."""
        now = time.monotonic()
        last, suppressed = self._log_state.get(key, (-1e9, 0))
        if now - last >= LOG_PERIOD_S:
            extra = f" ({suppressed} similar suppressed)" if suppressed else ""
            self.get_logger().warning(message[:300] + extra)
            self._log_state[key] = (now, 0)
        else:
            self._log_state[key] = (last, suppressed + 1)

    # -- receive thread -----------------------------------------------------------------------

    def start_receiving(self, step: Callable[[], None]) -> None:
        self._loop = ReceiveLoop(f"{self.get_name()}_rx", step, self._on_loop_error)
        self._loop.start()

    def start_zmq_receiving(self, sock, drain_max: int, poll_ms: int = 100) -> None:
        """Read a ZMQ socket on the receive thread: each queued multipart message goes to
        ``self.process(parts, local_now, queued_for)``, at most ``drain_max`` per poll.

        ``queued_for`` bounds how long a message may have waited in our own queue: it arrived
        after the queue was last seen empty (or after a blocking poll woke up), so it waited at
        most ``local_now`` minus that moment. The clock estimator uses it to tell its own lag
        from the sender's clock (wire/clock_offset.py).
        """
        import zmq

        empty_at = self.now_s()  # the queue is empty when the socket is created

        def step() -> None:
            nonlocal empty_at
            before = self.now_s()
            if not sock.poll(poll_ms):
                empty_at = self.now_s()
                return
            woke = self.now_s()
            if woke - before > 1e-3:
                empty_at = woke  # the poll blocked: the queue was empty until it woke
            for _ in range(drain_max):
                try:
                    parts = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    empty_at = self.now_s()
                    return
                local_now = self.now_s()
                self.process(parts, local_now, max(0.0, local_now - empty_at))

        self.start_receiving(step)

    def _on_loop_error(self, exc: BaseException) -> None:
        if self._loop is not None and self._loop.stopping or not self.context.ok():
            return  # publishing races the shutdown; not an error worth a report
        self.counters.inc("thread_errors")
        self.last_error = f"receive thread: {exc!r}"[:200]
        self.warn_throttled("thread_error", f"receive thread error (continuing): {exc!r}")

    def close(self) -> None:
        """Stop the receive thread, then release the socket (subclasses extend)."""
        if self._loop is not None and not self._loop.stop(timeout=3.0):
            self.get_logger().error("receive thread did not stop within 3 s")

    # -- diagnostics --------------------------------------------------------------------------

    def extra_values(self) -> dict[str, object]:
        """Bridge-specific diagnostics values (subclasses override)."""
        return {}

    def _report(self) -> Report:
        now = time.monotonic()
        counts = self.counters.snapshot()
        drops = {f"drop.{r}": counts.get(f"drop.{r}", 0) for r in self.DROP_REASONS}
        drops.update({k: v for k, v in counts.items() if k.startswith("drop.")})
        clock = self.estimator.snapshot()
        offset = clock["offset"]
        rx_hz, pub_hz = self.rx_rate.rate(now), self.pub_rate.rate(now)
        fraction, _, main_reason = self.drop_window.summary(now)
        values: dict[str, object] = {
            "endpoint": self.endpoint,
            "received": counts.get("received", 0),
            "published": counts.get("published", 0),
            "rate_received_hz": rx_hz,
            "rate_published_hz": pub_hz,
            "drops_total": sum(drops.values()),
            **dict(sorted(drops.items())),
            "thread_errors": counts.get("thread_errors", 0),
            "clock_offset_source": self.clock_source,
            "dropped_share_window": fraction,
            "drop_main_reason": main_reason or "none",
            "clock_locked": clock["locked"],
            "clock_offset_s": "none" if offset is None else f"{offset:.6f}",
            "clock_drift_ppm": clock["drift_ppm"],
            "clock_jumps": clock["jumps"],
            "clock_last_step_s": clock["last_step"],
            "clock_locks": clock["locks"],
            "clock_backlog_late": clock["backlog_late"],
            "stamp_latency_p50_ms": 1e3 * self.latency.percentile(50),
            "stamp_latency_p99_ms": 1e3 * self.latency.percentile(99),
            "last_error": self.last_error or "none",
            **self.extra_values(),
        }
        if self._loop is None or not self._loop.alive:
            return Report(ERROR, "receive thread is not running", values)
        if self._last_rx is None:
            return Report(WARN, f"waiting for data on {self.endpoint}", values)
        idle = now - self._last_rx
        if idle > self.stale_timeout:
            return Report(WARN, f"no data for {idle:.1f} s on {self.endpoint}", values)
        message = f"receiving {rx_hz:.1f}/s, publishing {pub_hz:.1f}/s"
        level = drop_severity(fraction)
        if level > OK:
            return Report(level, f"dropping {100 * fraction:.0f}% of input (mostly "
                          f"{main_reason}); {message}", values)
        if self._jump_recent(now, int(clock["jumps"])):
            return Report(WARN, message + f"; sender clock stepped by "
                          f"{clock['last_step']:+.3f} s", values)
        return Report(OK, message, values)

    def _jump_recent(self, now: float, jumps: int) -> bool:
        """True for RECENT_JUMP_S after diagnostics first saw the jump counter move."""
        if jumps != self._seen_jumps:
            self._seen_jumps, self._jump_seen_at = jumps, now
        return now - self._jump_seen_at < RECENT_JUMP_S


def run_bridge(factory: Callable[[], BridgeNode], args: list[str] | None = None) -> int:
    """Run one bridge until SIGINT/SIGTERM; return the process exit code."""
    rclpy.init(args=args)
    node: BridgeNode | None = None
    code = 0
    try:
        node = factory()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        node.get_logger().info(f"ready: listening on {node.endpoint}")
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:  # noqa: BLE001 - start-up errors (bad parameters, port in use)
        print(f"[FATAL] bridge failed: {exc!r}", file=sys.stderr, flush=True)
        code = 1
    finally:
        if node is not None:
            node.close()
            name = node.get_name()
            node.destroy_node()
            # Not through the ROS logger: after SIGINT its /rosout publisher is already gone.
            print(f"[{name}] shut down cleanly", file=sys.stderr, flush=True)
        rclpy.try_shutdown()
    return code
