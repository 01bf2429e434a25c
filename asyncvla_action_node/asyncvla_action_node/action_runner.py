"""The timing-thread design of the action loop, without ROS: a tick thread and an expert thread.

Why: the expert takes longer than a 10 ms period on a CPU (tens of ms for the full-size one), and
inline in rclpy's single executor thread it delayed every tick and every subscription behind it.
Here

* a `TimingThread` ticks on absolute monotonic deadlines (`tick_timing.DeadlineClock`: late
  wake-ups keep the grid, missed deadlines are counted, never bursted) and at every tick asks the
  loop for the newest finished inference re-timed to the tick (`ActionLoop.tick(retimed=True)`),
  which it hands to `publish` with the tick's monotonic deadline (the node publishes it from
  this thread, no executor hop, or, with a lead, hands it to its publisher process, which
  publishes it at the deadline: `publisher_process.py`);
* a worker thread runs the expert whenever `InferenceTrigger` says so (at a tick, or when a new
  sensor batch arrived, at most `inference_max_rate_hz`), outside the lock, and hands the result
  back to the loop under it. With the "deadline" trigger a tick plans the next run instead of
  starting it: the worker waits until `tick_timing.start_ahead_ns` (the next tick's wake-up less
  the recent inference time and a margin), so the run ends just before the tick that publishes it.

Every call into the ActionLoop holds `lock`; the node takes the same lock around its
subscription callbacks and reports, so the loop is never entered from two threads at once.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable

from asyncvla_action_node.action_core import InferenceInputs, TickOutcome
from asyncvla_action_node.action_loop import ActionLoop
from asyncvla_action_node.tick_timing import (DEADLINE_HISTORY, InferenceTrigger, Tick,
                                              TimingThread, start_ahead_ns)


class RetimedRunner:
    """Drives an ActionLoop from a tick thread and an expert thread (see the module doc)."""

    def __init__(self, loop: ActionLoop, rate_hz: float, trigger: str, max_rate_hz: float,
                 now_ns: Callable[[], int], publish: Callable[[TickOutcome, int], None],
                 on_error: Callable[[str, BaseException], None], priority: int = 0,
                 lead_s: float = 0.0) -> None:
        self.loop = loop
        self.lock = threading.RLock()
        self.trigger = InferenceTrigger(trigger, max_rate_hz)
        self._now_ns = now_ns
        self._publish = publish
        self._on_error = on_error
        self._job: InferenceInputs | None = None
        self._busy = False  # an inference is queued or running
        #: "deadline": when the planned inference may start (monotonic ns; None: none planned)
        self._start_at_ns: int | None = None
        self._recent_s: deque[float] = deque(maxlen=DEADLINE_HISTORY)  # inference times
        self._wake = threading.Condition(self.lock)
        self._stopping = False
        self.ticker = TimingThread(1.0 / rate_hz, self._on_tick,
                                   lambda exc: on_error("tick", exc), priority=priority,
                                   lead_s=lead_s)
        self._worker = threading.Thread(target=self._work, name="action-expert", daemon=True)

    def start(self) -> None:
        self._worker.start()
        self.ticker.start()

    def stop(self) -> None:
        self.ticker.stop()
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        self._worker.join(5.0)

    # --- events ---------------------------------------------------------------------------------
    def sensor_batch_arrived(self) -> None:
        """Call after the loop accepted a sensor batch (the caller holds `lock`)."""
        self.trigger.event("sensor")
        self._maybe_start()

    def _on_tick(self, tick: Tick) -> None:
        """Publish first, then start the next inference: gathering its inputs (the sensor
        window, the robot state) is not the chunk's business and must not delay it. Both under
        the lock, so a hold published by an e-stop callback never precedes this tick's chunk.
        A tick prepared ahead (a lead) is decided and stamped for its deadline, not for now."""
        with self.lock:
            self.loop.tick_timing(tick)
            ahead_ns = max(0, tick.deadline_ns - time.monotonic_ns())
            self._publish(self.loop.tick(self._now_ns() + ahead_ns, retimed=True),
                          tick.deadline_ns)
            self.trigger.event("tick")
            if self.trigger.mode == "deadline":
                clock = self.ticker.clock
                assert clock is not None
                self._start_at_ns = start_ahead_ns(clock.next_ns - self.ticker.lead_ns,
                                                   time.monotonic_ns(), list(self._recent_s))
                self._wake.notify()
            else:
                self._maybe_start()

    def _maybe_start(self) -> None:
        """Start an inference if the trigger allows (holding `lock`); with "deadline", not before
        the planned start."""
        if self._stopping:
            return
        now = time.monotonic_ns()
        if self.trigger.mode == "deadline" and (self._start_at_ns is None
                                                or now < self._start_at_ns):
            return  # only the planned start starts it (not a sensor batch, not the last run)
        if not self.trigger.take(now, idle=not self._busy):
            return
        self._start_at_ns = None
        inputs = self.loop.inference_inputs(self._now_ns())
        if inputs is None:
            return  # refused: the next tick reports why
        self._job = inputs
        self._busy = True
        self._wake.notify()

    # --- the expert thread ------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._wake:
                while self._job is None and not self._stopping:
                    if self._start_at_ns is None:
                        self._wake.wait()
                        continue
                    wait_ns = self._start_at_ns - time.monotonic_ns()
                    if wait_ns > 0:
                        self._wake.wait(wait_ns / 1e9)
                        continue
                    self._maybe_start()  # the planned start ("deadline")
                    if self._job is None:  # refused (rate bound, inputs): the next tick plans
                        self._start_at_ns = None
                if self._stopping:
                    return
                job, self._job = self._job, None
            try:
                run = self.loop.core.run_policy(job)  # no lock: the expert takes its time
                with self.lock:
                    self._recent_s.append(run.seconds)
                    self.loop.inference_done(job, run)
            except Exception as exc:  # noqa: BLE001 - the worker must outlive a bad run
                self._on_error("inference", exc)
            finally:
                with self.lock:
                    self._busy = False
                    self._maybe_start()  # a sensor batch may have arrived meanwhile
