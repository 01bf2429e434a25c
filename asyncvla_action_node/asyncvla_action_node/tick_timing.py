"""When the action node ticks and when it runs the expert, without ROS: deadlines and rate bounds.

Why a module of its own: an rclpy executor timer (the node's first design, measured and removed:
TIMING.md) wakes the single executor thread, which also serves every subscription, and the tick
ran the expert inline, so one slow inference delayed the next tick and every message behind it.
The timing-thread design (`action_runner.RetimedRunner`)
ticks from a thread of its own on absolute deadlines and runs the expert on another; the rules
that decide when each happens are here, plain and unit-tested:

* `DeadlineClock`: ticks on a fixed grid of absolute monotonic deadlines. A tick that wakes late
  keeps the grid (the next deadline is not pushed back by the lateness), and deadlines missed
  entirely (a stall, an overrun) are counted and skipped, never fired in a burst afterwards: a
  burst of chunks stamped milliseconds apart would tell a consumer nothing new.
* `InferenceTrigger`: which event starts an inference ("tick": the tick, "sensor": a new sensor
  batch, "deadline": the tick, with the start delayed so that the run ends just before the next
  tick, `start_ahead_ns`), never more often than `max_rate_hz`, and only while no inference is
  running.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable

NS_PER_S = 1_000_000_000

#: Who publishes the action node's tick (parameter `timing.tick_source`; TIMING.md: why two).
TICK_SOURCES = ("publisher_process", "timing_thread")
#: What may start an inference (parameter `timing.inference_trigger`).
TRIGGERS = ("deadline", "tick", "sensor")
#: "deadline": how long before the next tick an inference is planned to end.
DEADLINE_MARGIN_S = 0.002
#: "deadline": the inference time planned for is the longest of this many last runs (a run that
#: misses its tick leaves that tick to re-publish the previous inference, a period older).
DEADLINE_HISTORY = 20


#: CPython's GIL switch interval while a timing thread runs. A thread that wants the GIL waits
#: up to this long for a thread running Python code to hand it over (default 5 ms, which was the
#: timing thread's p99 lateness behind the executor's callbacks); the tick thread's budget is
#: about a millisecond, so it is shortened for as long as a TimingThread runs.
TICK_GIL_SWITCH_INTERVAL_S = 0.0005


@dataclass(frozen=True)
class Tick:
    """One tick of a DeadlineClock."""

    deadline_ns: int  # the grid point this tick is for (monotonic)
    late_ns: int  # wake-up time minus deadline (>= 0 unless woken early)
    skipped: int  # deadlines missed entirely just before this one (not fired)


class DeadlineClock:
    """A fixed grid of absolute deadlines; missed deadlines are counted, never bursted."""

    def __init__(self, period_s: float, start_ns: int) -> None:
        if not period_s > 0:
            raise ValueError(f"period must be positive, got {period_s}")
        self.period_ns = int(round(period_s * NS_PER_S))
        self.next_ns = int(start_ns) + self.period_ns
        self.ticks = 0
        self.skipped = 0

    def after_wake(self, now_ns: int) -> Tick:
        """The tick for a wake-up at `now_ns`: the newest grid point at or before it.

        Whole periods that passed since the deadline being waited for are skipped (counted in
        `skipped`); the next deadline is the grid point after the tick's, so a late wake-up does
        not shift the grid and a stall is followed by one tick, not a burst.
        """
        deadline = self.next_ns
        missed = max(0, (int(now_ns) - deadline) // self.period_ns)
        deadline += missed * self.period_ns
        self.next_ns = deadline + self.period_ns
        self.ticks += 1
        self.skipped += missed
        return Tick(deadline, int(now_ns) - deadline, missed)


def sleep_until(deadline_ns: int, clock: Callable[[], int] = time.monotonic_ns) -> None:
    """Sleep until the monotonic `deadline_ns` (no-op when it has passed).

    CPython 3.11+ implements time.sleep with clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) on
    Linux, so this is an absolute-deadline sleep; computing the remainder from the deadline keeps
    the grid from drifting by the loop's own work.
    """
    remaining = deadline_ns - clock()
    if remaining > 0:
        time.sleep(remaining / NS_PER_S)


def make_realtime(priority: int) -> str:
    """Put the calling thread under SCHED_FIFO at `priority` (1-99); 0 leaves it as it is.

    Why: on a loaded 2-core machine a normal-priority thread waits for a CPU for milliseconds
    (measured: deadline misses of 100+ ms at load 7), while a SCHED_FIFO thread preempts every
    normal one at once; only this thread is raised, never the expert's. Needs CAP_SYS_NICE or an
    rtprio limit (as ros2_control's thread_priority does); without it the thread stays normal and
    the returned note says why. Returns a note for the node's diagnostics.
    """
    if priority <= 0:
        return "normal priority (timing.tick_thread_priority 0)"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError) as exc:
        return f"normal priority: SCHED_FIFO {priority} refused ({exc})"
    return f"SCHED_FIFO {priority}"


class TimingThread:
    """Calls `on_tick(Tick)` on a DeadlineClock from a daemon thread until `stop()`.

    With `lead_s` > 0 it wakes that long before each deadline and the Tick is for the deadline
    ahead (its `late_ns` is measured from the wake-up it aimed for): the publisher-process design
    prepares a tick's chunk ahead and another process publishes it at the deadline.

    An exception in `on_tick` is handed to `on_error` and the loop goes on: a tick that failed is
    a tick that published nothing, not a node that stopped ticking.
    """

    def __init__(self, period_s: float, on_tick: Callable[[Tick], None],
                 on_error: Callable[[BaseException], None], name: str = "action-tick",
                 priority: int = 0, lead_s: float = 0.0) -> None:
        if not 0 <= lead_s < period_s:
            raise ValueError(f"lead {lead_s} s must be in [0, period {period_s} s)")
        self.period_s = period_s
        self.lead_ns = int(round(lead_s * NS_PER_S))
        self.priority = priority
        self.priority_note = "not started"
        self._on_tick = on_tick
        self._on_error = on_error
        self._stop = threading.Event()
        self._switch_interval: float | None = None  # the interpreter's, while this one runs
        self.clock: DeadlineClock | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self.clock = DeadlineClock(self.period_s, time.monotonic_ns())
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, TICK_GIL_SWITCH_INTERVAL_S))
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
            self._switch_interval = None

    def _run(self) -> None:
        clock = self.clock
        assert clock is not None
        self.priority_note = make_realtime(self.priority)
        while not self._stop.is_set():
            sleep_until(clock.next_ns - self.lead_ns)
            if self._stop.is_set():
                return
            tick = clock.after_wake(time.monotonic_ns() + self.lead_ns)
            try:
                self._on_tick(tick)
            except Exception as exc:  # noqa: BLE001 - reported, the loop keeps its rate
                self._on_error(exc)


class InferenceTrigger:
    """Decides when the expert starts: on its trigger event, while idle, at most max_rate_hz.

    An event that arrives while an inference runs or inside the rate bound is remembered
    (`pending`) and starts the next inference as soon as both allow; events never queue up, so
    however many sensor batches arrive, at most one inference follows them.
    """

    def __init__(self, mode: str, max_rate_hz: float) -> None:
        if mode not in TRIGGERS:
            raise ValueError(f"unknown inference trigger {mode!r}; expected one of {TRIGGERS}")
        if not max_rate_hz > 0:
            raise ValueError(f"timing.inference_max_rate_hz must be positive, got {max_rate_hz}")
        self.mode = mode
        self.min_interval_ns = int(round(NS_PER_S / max_rate_hz))
        self.pending = False
        self._last_start_ns: int | None = None
        self.started = 0
        self.deferred_by_rate = 0  # takes refused only because of the rate bound

    def event(self, kind: str) -> None:
        """A tick ("tick") or a new sensor batch ("sensor") happened ("deadline" listens to
        ticks)."""
        if kind == ("tick" if self.mode == "deadline" else self.mode):
            self.pending = True

    def take(self, now_ns: int, idle: bool) -> bool:
        """True (and the event consumed) when an inference should start now."""
        if not self.pending or not idle:
            return False
        if self._last_start_ns is not None and now_ns - self._last_start_ns < self.min_interval_ns:
            self.deferred_by_rate += 1
            return False
        self.pending = False
        self._last_start_ns = now_ns
        self.started += 1
        return True


def start_ahead_ns(next_tick_ns: int, now_ns: int, recent_s: list[float],
                   margin_s: float = DEADLINE_MARGIN_S) -> int:
    """When a "deadline"-triggered inference should start (monotonic ns): so that it ends
    `margin_s` before `next_tick_ns` (the next tick's wake-up) if it takes as long as the longest
    of the recent runs, but never before `now_ns`; `now_ns` while no run has been timed yet.

    Why: a tick-started inference is published at the next tick, one period after its inputs
    were taken (100 ms of latency at 10 Hz); started this late, its inputs are about one inference
    time old when it is published, and the expert still runs at most once per tick."""
    if not recent_s:
        return now_ns
    return max(now_ns, next_tick_ns - int(round((max(recent_s) + margin_s) * NS_PER_S)))
