"""The timing core of the action loop without ROS: deadlines, overruns, no bursts, rate bounds,
re-timed chunks and their provenance, and the runner's two threads on a real clock."""
from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest

from asyncvla_action_node.action_runner import RetimedRunner
from asyncvla_action_node.refusals import Refusal
from asyncvla_action_node.tick_timing import (DEADLINE_MARGIN_S, start_ahead_ns)
from asyncvla_action_node.tick_timing import (TICK_GIL_SWITCH_INTERVAL_S, DeadlineClock,
                                              InferenceTrigger, TimingThread)
from asyncvla_core.chunk import Chunk, retime
from asyncvla_core.conventions import JOINT_NAMES

from test_action_loop_units import GRAPH, MS, Recorder, SHAPE, feed  # noqa: E402

P = 10 * MS


class TestDeadlineClock:
    def test_on_time_ticks_keep_the_grid_despite_late_wakeups(self):
        clock = DeadlineClock(0.01, 0)
        ticks = [clock.after_wake(wake) for wake in (P + 300_000, 2 * P + 900_000, 3 * P)]
        assert [t.deadline_ns for t in ticks] == [P, 2 * P, 3 * P]
        assert [t.late_ns for t in ticks] == [300_000, 900_000, 0]
        assert clock.next_ns == 4 * P and clock.skipped == 0

    def test_a_stall_is_one_tick_and_counted_skips_not_a_burst(self):
        clock = DeadlineClock(0.01, 0)
        clock.after_wake(P)
        tick = clock.after_wake(2 * P + 55 * MS)  # the deadline at 2P, then 5 more, passed
        assert tick.skipped == 5 and tick.deadline_ns == 7 * P and tick.late_ns == 5 * MS
        # the next deadline is in the future: a loop sleeping until it cannot burst
        assert clock.next_ns == 8 * P > 2 * P + 55 * MS
        assert clock.skipped == 5 and clock.ticks == 2

    def test_bad_period(self):
        with pytest.raises(ValueError):
            DeadlineClock(0.0, 0)


class TestInferenceTrigger:
    def test_sensor_events_start_at_most_max_rate(self):
        trigger = InferenceTrigger("sensor", max_rate_hz=50.0)
        starts = []
        for t in range(0, 1000 * MS, MS):  # a batch every 1 ms for 1 s, the expert always idle
            trigger.event("sensor")
            if trigger.take(t, idle=True):
                starts.append(t)
        assert len(starts) == 50
        assert min(np.diff(starts)) >= 20 * MS

    def test_waits_for_idle_and_remembers_one_event(self):
        trigger = InferenceTrigger("sensor", max_rate_hz=1000.0)
        trigger.event("sensor")
        trigger.event("tick")  # not this trigger's event
        assert not trigger.take(0, idle=False)
        assert trigger.take(5 * MS, idle=True)
        assert not trigger.take(10 * MS, idle=True)  # consumed: no event, no start

    def test_tick_trigger_ignores_sensor_batches(self):
        trigger = InferenceTrigger("tick", max_rate_hz=100.0)
        trigger.event("sensor")
        assert not trigger.take(0, idle=True)
        trigger.event("tick")
        assert trigger.take(0, idle=True)

    def test_deadline_trigger_listens_to_ticks_not_sensor_batches(self):
        trigger = InferenceTrigger("deadline", max_rate_hz=100.0)
        trigger.event("sensor")
        assert not trigger.take(0, idle=True)
        trigger.event("tick")
        assert trigger.take(0, idle=True)

    @pytest.mark.parametrize("mode, rate", [("timer", 10.0), ("tick", 0.0)])
    def test_bad_settings(self, mode, rate):
        with pytest.raises(ValueError):
            InferenceTrigger(mode, rate)


def test_deadline_start_ends_the_run_a_margin_before_the_next_tick():
    next_tick, now = 1_000 * MS, 900 * MS
    assert start_ahead_ns(next_tick, now, []) == now  # nothing timed yet: start at once
    recent = [0.010] * 19 + [0.030]  # planned for the longest recent run
    assert start_ahead_ns(next_tick, now, recent) == next_tick - int(
        (0.030 + DEADLINE_MARGIN_S) * 1e9)
    assert start_ahead_ns(next_tick, now, [0.010]) == next_tick - 12 * MS
    # slower than what is left of the period: at once, never in the past
    assert start_ahead_ns(next_tick, now, [0.2]) == now


def test_retime_keeps_absolute_targets_and_drops_uncovered_steps():
    actions = np.tile(np.arange(1, 5, dtype=np.float32)[:, None] * 0.01, (1, 7))
    old = Chunk(0, 0.1, np.zeros(6), actions)
    ref = np.full(6, 0.005)
    new = retime(old, 150 * MS, ref)
    # steps at 0.25 s and 0.35 s are covered (old steps at 0.1..0.4 s); 0.45, 0.55 s are not
    assert new.stamp_ns == 150 * MS and new.actions.shape == (2, 7)
    np.testing.assert_allclose(new.actions[:, 0] + ref[0], [0.025, 0.035], atol=1e-7)
    np.testing.assert_allclose(new.actions[:, 6], [0.025, 0.035], atol=1e-7)  # tool: no shift
    assert retime(old, 400 * MS, ref) is None  # nothing ahead of the last step


def test_timing_thread_ticks_on_deadlines_and_survives_an_exception():
    ticks, errors = [], []

    def on_tick(tick):
        ticks.append(tick)
        if len(ticks) == 3:
            raise RuntimeError("boom")
        if len(ticks) == 5:
            time.sleep(0.055)  # a stall of five periods

    before = sys.getswitchinterval()
    thread = TimingThread(0.01, on_tick, errors.append)
    thread.start()
    # While it runs, a thread in Python code hands the GIL over within 0.5 ms, not 5 ms.
    assert sys.getswitchinterval() <= TICK_GIL_SWITCH_INTERVAL_S < before
    time.sleep(0.25)
    thread.stop()
    assert sys.getswitchinterval() == before  # the interpreter's setting is given back
    assert len(errors) == 1 and len(ticks) >= 10
    deadlines = np.diff([t.deadline_ns for t in ticks])
    assert np.all(deadlines % P == 0) and np.all(deadlines > 0)  # on the grid, never repeated
    assert sum(t.skipped for t in ticks) >= 4  # the stall's deadlines were skipped, not fired


# --- the runner: the loop driven by a tick thread and an expert thread --------------------------
def make_loop(freshness: dict, predict):
    """A loop on fake clocks: `freshness` overrides the freshness.* limits; the watchdogs (real
    monotonic time) are off, as nothing here is about an input's silence."""
    from asyncvla_action_node.action_config import ActionNodeConfig
    from asyncvla_action_node.action_loop import ActionLoop
    from asyncvla_common.param_spec import with_values
    from asyncvla_common.safety_ros import WATCHDOG_NAMES, make_watchdogs
    values = {"robot_state_max_age": 10.0, "sensor_max_age": 10.0, "max_vl_age": 10.0,
              "sensor_max_gap": 1.0, **freshness}
    cfg = with_values(ActionNodeConfig(), {
        "safety.enabled_at_start": True, "watchdog.vl_timeout": 0.0,
        "watchdog.sensor_timeout": 0.0,
        **{f"freshness.{name}": value for name, value in values.items()}})
    rec = Recorder()
    loop = ActionLoop(cfg, SHAPE, predict, rec.log, rec.hold, rec.report_now)
    loop.watchdogs = make_watchdogs({name: 0.0 for name in WATCHDOG_NAMES})
    return loop


def test_loop_retimed_publishes_one_inference_many_times_then_refuses_when_stale():
    loop = make_loop({"max_inference_age": 0.05},
                     lambda vl, w, s, a: np.full((4, 7), 1e-3, np.float32))
    now = 10_000 * MS
    feed(loop, now)
    assert loop.tick(now, retimed=True).category is Refusal.NO_INFERENCE
    inputs = loop.inference_inputs(now)
    loop.inference_done(inputs, loop.core.run_policy(inputs))
    outs = [loop.tick(now + k * 10 * MS, retimed=True) for k in range(1, 4)]
    provs = [o.provenance for o in outs]
    assert [p.inference_sequence for p in provs] == [1, 1, 1]
    assert [p.reuse_count for p in provs] == [0, 1, 2]
    assert all(p.inference_stamp_ns == now for p in provs)
    assert [o.chunk.stamp_ns for o in outs] == [now + k * 10 * MS for k in range(1, 4)]
    assert provs[0].sensor_stamp_ns == now - MS  # the newest sample feed() sent
    stale = loop.tick(now + 60 * MS, retimed=True)
    assert stale.chunk is None and stale.category is Refusal.INFERENCE_STALE
    # it stays refused (no old plan comes back) until a new inference is accepted
    assert loop.tick(now + 70 * MS, retimed=True).chunk is None


def test_an_inference_running_across_a_refusal_is_discarded():
    loop = make_loop({}, lambda vl, w, s, a: np.zeros((4, 7), np.float32))
    now = 10_000 * MS
    feed(loop, now)
    inputs = loop.inference_inputs(now)
    loop.control("estop", True, GRAPH)  # while the expert runs
    loop.control("estop", False, GRAPH)
    loop.control("enable", True, GRAPH)
    assert loop.inference_done(inputs, loop.core.run_policy(inputs)) is None
    assert loop.counters.get("inferences_discarded") == 1
    assert loop.tick(now + 10 * MS, retimed=True).chunk is None


@pytest.mark.parametrize("trigger", ["deadline", "tick", "sensor"])
def test_runner_publishes_at_rate_while_a_slow_expert_runs(trigger):
    """100 Hz ticks with a 35 ms expert: every tick publishes (re-timed), none bursts, and the
    expert runs back to back, never concurrently, at most inference_max_rate_hz."""
    running = threading.Semaphore(1)

    def slow(vl, window, state, age):
        assert running.acquire(blocking=False), "two inferences at once"
        time.sleep(0.035)
        running.release()
        return np.zeros((4, 7), np.float32)

    loop = make_loop({}, slow)
    ticks = []
    record = loop.tick_timing
    loop.tick_timing = lambda tick: (ticks.append(tick), record(tick))
    published: list[tuple[int, object]] = []
    errors: list = []
    base = time.time_ns()
    start = time.monotonic_ns()
    now_ns = lambda: base + time.monotonic_ns() - start  # noqa: E731
    runner = RetimedRunner(loop, 100.0, trigger, 20.0, now_ns,
                           lambda o, deadline: published.append((time.monotonic_ns(), o)),
                           lambda where, exc: errors.append((where, exc)))
    with runner.lock:
        feed(loop, now_ns())
    runner.start()
    stop = time.monotonic() + 0.6
    while time.monotonic() < stop:  # sensor batches every 5 ms, fresh robot state
        with runner.lock:
            t = now_ns()
            loop.sensor_batch(1, [t], [0.0], [0.0] * 3, 3, t)
            loop.pose([0.3, 0.0, 0.2], [1.0, 0.0, 0.0, 0.0], t, t)
            runner.sensor_batch_arrived()
        time.sleep(0.005)
    runner.stop()
    assert not errors
    chunks = [(t, o) for t, o in published if o.chunk is not None]
    assert len(published) >= 45  # ~60 ticks in 0.6 s on a loaded machine
    assert len(chunks) >= len(published) - 10  # all but the ticks before the first inference
    # no burst: one publication per tick, each tick for its own grid deadline (a late wake-up
    # on a loaded machine keeps the grid; deadlines it missed are skipped, not fired)
    deadlines = np.array([t.deadline_ns for t in ticks])
    assert len(deadlines) == len(published)
    assert np.all(np.diff(deadlines) > 0) and np.all(np.diff(deadlines) % (10 * MS) == 0)
    assert np.all(np.array([t for t, _ in published]) >= deadlines)
    seqs = [o.provenance.inference_sequence for _, o in chunks]
    assert seqs == sorted(seqs) and 5 <= seqs[-1] <= 13  # ~35 ms each, at most 20 Hz
    assert any(o.provenance.reuse_count > 0 for _, o in chunks)


def run_runner(trigger: str, rate_hz: float, expert_s: float, seconds: float):
    """A runner at `rate_hz` with an expert of `expert_s` on live inputs: what it published."""
    calls = []

    def expert(vl, window, state, age):
        calls.append(time.monotonic_ns())
        time.sleep(expert_s)
        return np.zeros((4, 7), np.float32)

    loop = make_loop({"max_inference_age": 1.0}, expert)
    published: list = []
    errors: list = []
    base = time.time_ns()
    start = time.monotonic_ns()
    now_ns = lambda: base + time.monotonic_ns() - start  # noqa: E731
    runner = RetimedRunner(loop, rate_hz, trigger, 50.0, now_ns,
                           lambda o, deadline: published.append(o),
                           lambda where, exc: errors.append((where, exc)))
    with runner.lock:
        feed(loop, now_ns())
    runner.start()
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        with runner.lock:
            t = now_ns()
            loop.sensor_batch(1, [t], [0.0], [0.0] * 3, 3, t)
            loop.pose([0.3, 0.0, 0.2], [1.0, 0.0, 0.0, 0.0], t, t)
            runner.sensor_batch_arrived()
        time.sleep(0.005)
    runner.stop()
    assert not errors
    return [o for o in published if o.chunk is not None], calls


def test_deadline_trigger_publishes_inferences_one_inference_time_old_not_one_period():
    """10 Hz, a 20 ms expert: with "tick" an inference started at a tick is published at the
    next one (its inputs 100 ms old); with "deadline" it starts about 22 ms before the next tick
    (its inputs about that old), still at most one run per tick, sensor batches or not."""
    ages = {}
    for trigger in ("tick", "deadline"):
        chunks, calls = run_runner(trigger, 10.0, 0.020, 1.3)
        firsts = [o for o in chunks if o.provenance.reuse_count == 0][1:]  # after the first
        assert len(firsts) >= 6, (trigger, len(firsts))
        ages[trigger] = float(np.median([(o.chunk.stamp_ns - o.provenance.inference_stamp_ns)
                                         / 1e6 for o in firsts]))
        assert len(calls) <= 1.3 * 10 + 2, (trigger, len(calls))  # one run per tick at most
    assert ages["tick"] > 90.0, ages
    assert ages["deadline"] < 60.0, ages


def test_retimed_tick_applies_the_vl_age_rule_at_the_tick():
    """An inference on fresh VL features is not re-published once they pass max_vl_age."""
    loop = make_loop({"max_inference_age": 1.0, "max_vl_age": 0.1},
                     lambda vl, w, s, a: np.zeros((4, 7), np.float32))
    now = 10_000 * MS
    feed(loop, now)  # VL features stamped 50 ms before `now`
    inputs = loop.inference_inputs(now)
    loop.inference_done(inputs, loop.core.run_policy(inputs))
    assert loop.tick(now + 40 * MS, retimed=True).chunk is not None
    late = loop.tick(now + 60 * MS, retimed=True)
    assert late.chunk is None and late.category is Refusal.VL_STALE


def test_a_ticks_own_refusal_keeps_the_running_inference_but_not_the_history():
    """A stale robot state at one tick withholds that tick and forgets the newest inference;
    the inference already running (inputs checked when taken) may still be published after."""
    loop = make_loop({"robot_state_max_age": 0.05},
                     lambda vl, w, s, a: np.zeros((4, 7), np.float32))
    now = 10_000 * MS
    feed(loop, now)  # robot state stamped 1 ms before `now`
    first = loop.inference_inputs(now)
    loop.inference_done(first, loop.core.run_policy(first))
    running = loop.inference_inputs(now + 10 * MS)
    stale = loop.tick(now + 60 * MS, retimed=True)  # the state is 61 ms old
    assert stale.category is Refusal.ROBOT_STATE_STALE
    loop.joints(list(JOINT_NAMES), [0.0] * 6, now + 65 * MS, now + 65 * MS)
    loop.pose([0.3, 0.0, 0.2], [1.0, 0.0, 0.0, 0.0], now + 65 * MS, now + 65 * MS)
    assert loop.tick(now + 70 * MS, retimed=True).chunk is None  # the old one is gone
    assert loop.inference_done(running, loop.core.run_policy(running)) is not None
    out = loop.tick(now + 80 * MS, retimed=True)
    assert out.chunk is not None and out.provenance.inference_sequence == 2


def test_runner_publishes_a_tick_before_it_gathers_the_next_inference():
    """The tick's chunk goes out before the next inference's inputs are gathered (that work is
    not the chunk's and must not delay it), both under the loop's lock."""
    loop = make_loop({"max_inference_age": 1.0}, lambda vl, w, s, a: np.zeros((4, 7), np.float32))
    order: list[str] = []
    base = time.time_ns()
    start = time.monotonic_ns()
    now_ns = lambda: base + time.monotonic_ns() - start  # noqa: E731
    runner = RetimedRunner(loop, 50.0, "tick", 50.0, now_ns,
                           lambda o, deadline: order.append("publish" if o.chunk is not None
                                                       else "refused"),
                           lambda where, exc: order.append(f"error {where}: {exc}"))
    gather = loop.inference_inputs

    def traced(now):
        assert runner.lock._is_owned()  # noqa: SLF001 - the RLock's own check
        order.append("gather")
        return gather(now)

    loop.inference_inputs = traced
    with runner.lock:
        feed(loop, now_ns())
        first = gather(now_ns())
        loop.inference_done(first, loop.core.run_policy(first))
    runner.start()
    time.sleep(0.15)
    runner.stop()
    ticks = [i for i, what in enumerate(order) if what in ("publish", "refused")]
    assert order and not any(what.startswith("error") for what in order), order
    assert order[ticks[0]] == "publish", order
    # every gather a tick starts comes after that tick's publication, never between deadline
    # and chunk (the worker's own restart may gather at any time, outside a tick)
    assert order.index("gather") > ticks[0], order
