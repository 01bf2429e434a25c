"""Clock offset estimator (wire/clock_offset.py) and stamping (wire/stamping.py) on simulated links.

A simulated sender stamps messages with its clock, sender = true_time - offset(true_time); the
receiver sees them at true_time + delay. The estimate should follow offset + delay floor.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from asyncvla_bridges.wire.clock_offset import ClockConfig, ClockOffsetEstimator
from asyncvla_bridges.wire.errors import WireError
from asyncvla_bridges.wire.stamping import Stamper

T0 = 1_700_000_000.0
FLOOR = 0.0005  # smallest one-way delay, s


class Link:
    """Messages at `rate` Hz over a link with exponential jitter above a floor."""

    def __init__(self, offset=lambda t: 0.5, rate=100.0, seed=0, jitter=0.001):
        self.offset = offset
        self.rate = rate
        self.rng = np.random.default_rng(seed)
        self.jitter = jitter
        self.k = 0

    def next(self, extra_delay: float = 0.0) -> tuple[float, float, float]:
        """(sender_time, local_receive_time, true offset) of the next message."""
        t = T0 + self.k / self.rate
        self.k += 1
        delay = FLOOR + self.rng.exponential(self.jitter) + extra_delay
        return t - self.offset(t), t + delay, self.offset(t)


def run(est, link, seconds, extra=lambda k: 0.0):
    """Feed `seconds` of messages in arrival order; return (verdicts, errors of the estimate vs
    offset + floor). A delayed message is processed after those that overtook it, as a real
    receiver would."""
    messages = [link.next(extra(link.k)) for _ in range(int(seconds * link.rate))]
    messages.sort(key=lambda m: m[1])
    verdicts, errors = [], []
    for sender, local, offset in messages:
        verdicts.append(est.update(sender, local))
        if est.offset is not None:
            errors.append((local, est.offset - (offset + FLOOR)))
    return verdicts, errors


def settled(errors, after: float):
    return np.array([e for t, e in errors if t > T0 + after])


def test_constant_offset_converges_to_offset_plus_floor():
    cfg = ClockConfig()
    est = ClockOffsetEstimator(cfg)
    verdicts, errors = run(est, Link(), 10)
    err = settled(errors, 2.0)
    assert np.abs(err).max() < 1e-4
    assert est.jumps == 0 and est.suspects == 0 and est.locks == 1
    # Nothing is trusted before the estimate is confirmed: jump_confirm_duration at 100 Hz.
    refused = [v for v in verdicts if not v.accepted]
    assert {v.reason for v in refused} == {"clock_settling"}
    assert round(cfg.jump_confirm_duration * 100) <= len(refused) <= round(cfg.jump_confirm_duration * 100) + 1
    assert all(v.accepted for v in verdicts[len(refused):])


def test_delay_spikes_and_a_stall_are_ignored():
    est = ClockOffsetEstimator()
    rng = np.random.default_rng(5)
    link = Link(rate=200.0)

    def extra(k):
        if 1200 <= k < 1320:          # a 0.6 s stall: messages queue, then arrive in a burst
            return (1320 - k) / link.rate
        return float(rng.uniform(0.02, 0.3)) if rng.random() < 0.1 else 0.0

    verdicts, errors = run(est, link, 20, extra)
    # Past the first 0.2 s, only messages later than max_delay (stale) are refused.
    late = [v for v in verdicts[60:] if not v.accepted]
    assert late and all(v.reason == "late" and v.deviation > 0.25 for v in late)
    assert est.jumps == 0 and est.suspects == 0
    assert np.abs(settled(errors, 1.0)).max() < 2e-4


@pytest.mark.parametrize("ppm", [300.0, -300.0])
def test_drift_is_followed_without_window_lag(ppm):
    drift = ppm * 1e-6
    est = ClockOffsetEstimator(ClockConfig(window=5.0))
    _, errors = run(est, Link(offset=lambda t: 0.5 + drift * (t - T0)), 60)
    err = settled(errors, 8.0)
    # A plain windowed minimum trails a rising offset by drift x window = 1.5 ms.
    assert np.abs(err).max() < 2.5e-4, np.abs(err).max()
    assert abs(est.drift - drift) < 30e-6
    assert est.jumps == 0


def test_drift_and_spikes_together():
    drift = 200e-6
    rng = np.random.default_rng(9)
    est = ClockOffsetEstimator()
    _, errors = run(est, Link(offset=lambda t: -3.0 + drift * (t - T0), rate=650.0), 30,
                    lambda k: float(rng.uniform(0.01, 0.2)) if rng.random() < 0.05 else 0.0)
    assert np.abs(settled(errors, 8.0)).max() < 2.5e-4
    assert est.jumps == 0


@pytest.mark.parametrize("sender_step", [-0.3, 0.3, -5.0, 2.0, -2.0, 3600.0])
def test_sender_clock_step_is_detected_reported_and_followed(sender_step):
    """The sender's clock steps by `sender_step` (local - sender moves the other way)."""
    cfg = ClockConfig()
    est = ClockOffsetEstimator(cfg)
    jump_at = T0 + 10.0
    link = Link(offset=lambda t: 0.5 - (sender_step if t >= jump_at else 0.0))
    verdicts, errors = run(est, link, 20)
    assert est.jumps == 1
    # Reported with the sign of the sender's clock step (a forward step is positive).
    assert abs(est.last_step - sender_step) < 2e-3
    confirmed = [t for (t, _), v in zip(errors, verdicts[-len(errors):])
                 if v.jumped and t > T0 + 1.0]
    assert len(confirmed) == 1
    # Confirmed after the configured persistence, not before and not much later.
    assert cfg.jump_confirm_duration <= confirmed[0] - jump_at < cfg.jump_confirm_duration + 0.05
    assert np.abs(settled(errors, 10.0 + cfg.jump_confirm_duration + 0.05)).max() < 2e-4
    after = verdicts[1000:]
    refused = [v for v in after if not v.accepted]
    # Forward: the samples claim to arrive before they were sent (suspect). Backward by more
    # than max_delay: late. Backward by less: published as delayed, stamped early (never late).
    expected = ("clock_suspect" if sender_step > 0 else
                "late" if -sender_step > cfg.max_delay else None)
    if expected is None:
        assert not refused
    else:
        assert {v.reason for v in refused} == {expected} and 15 <= len(refused) <= 25


def test_future_garbage_is_rejected_without_moving_the_estimate():
    est = ClockOffsetEstimator()
    link = Link()
    run(est, link, 3)
    before = est.offset
    sender, local, _ = link.next()
    verdict = est.update(sender + 100.0, local)
    assert not verdict.accepted and verdict.reason == "clock_suspect" and est.suspects == 1
    assert est.offset == before
    _, errors = run(est, link, 1)
    assert np.abs(settled(errors, 0)).max() < 1e-4 and est.jumps == 0


def test_frozen_or_random_sender_times_are_not_a_jump():
    est = ClockOffsetEstimator()
    link = Link()
    run(est, link, 3)
    rng = np.random.default_rng(3)
    for k in range(300):  # 3 s of a sender stuck at one time, then of random times near zero
        _, local, _ = link.next()
        est.update(T0 if k < 150 else float(rng.uniform(-0.03, 0.03)), local)
    assert est.jumps == 0
    _, errors = run(est, link, 1)
    assert np.abs(settled(errors, 0)).max() < 1e-4


def test_late_first_message_is_never_trusted():
    est = ClockOffsetEstimator()
    link = Link()
    sender, local, _ = link.next(extra_delay=2.0)  # the very first message was 2 s late
    assert est.update(sender, local).reason == "clock_settling"
    verdicts, errors = run(est, link, 5)
    assert est.jumps == 0 and est.locks == 1
    # Held back only until the estimate is confirmed (0.2 s at 100 Hz).
    assert sum(not v.accepted for v in verdicts) <= 21
    assert np.abs(np.array([e for _, e in errors])).max() < 1e-4


def backlog_then_live(est, link, queued: int, read_rate: float = 1e5):
    """`queued` messages that waited on the sender while nobody listened, read back to back
    (the first one clean, the others queued behind it), then the live stream.
    Returns the verdicts of the backlog and the live stream's (verdict, error) pairs."""
    backlog = [link.next() for _ in range(queued)]
    start = backlog[-1][1]
    verdicts = [est.update(sender, start + i / read_rate, queued_for=i / read_rate)
                for i, (sender, _, _) in enumerate(backlog)]
    live = []
    for _ in range(300):
        sender, local, offset = link.next()
        verdict = est.update(sender, local)
        live.append((verdict, None if est.offset is None else est.offset - (offset + FLOOR)))
    return verdicts, live


@pytest.mark.parametrize("read_rate", [1e5, 500.0])
def test_a_backlog_at_start_is_dropped_and_live_data_locks_quickly(read_rate):
    """A sender that queued 3 s of messages before the receiver started (the lab's camera
    sender, SNDHWM 1000): none of the stale backlog is published, live data is within 0.25 s."""
    est = ClockOffsetEstimator()
    backlog, live = backlog_then_live(est, Link(), 300, read_rate)
    assert not any(v.accepted for v in backlog)
    first_ok = next(i for i, (v, _) in enumerate(live) if v.accepted)
    assert first_ok <= 25  # 100 Hz: within 0.25 s of live data
    assert all(v.accepted for v, _ in live[first_ok:])
    assert max(abs(e) for v, e in live[first_ok:]) < 1e-3
    assert est.jumps == 0 and est.locks == 1


def test_a_backlog_with_clean_looking_reads_is_still_dropped():
    """Even if every backlog message looked clean (queue seen empty between TCP segments), the
    burst's d falls far too steeply to confirm: seconds of sender time in milliseconds."""
    est = ClockOffsetEstimator()
    link = Link()
    backlog = [link.next() for _ in range(300)]
    start = backlog[-1][1]
    assert not any(est.update(s, start + i * 1e-3).accepted for i, (s, _, _) in
                   enumerate(backlog))


def test_same_stamps_and_out_of_order_views_lock_and_follow_steps():
    """Five views of one trigger carry the same (or 1 ms apart) sender time and arrive in any
    order: no ordering of sender times is needed to lock or to follow a step."""
    rng = np.random.default_rng(2)
    cfg = ClockConfig()
    est = ClockOffsetEstimator(cfg)
    offset = 0.5
    step_at, step = T0 + 5.0, 2.0  # the sender clock steps forward by 2 s at t = 5 s
    first_ok_after_step = None
    for k in range(10 * 30):  # 30 triggers per second, 10 s
        t = T0 + k / 30.0
        true_offset = offset - (step if t >= step_at else 0.0)
        frames = [(t + rng.uniform(0, 0.001) * (view % 2) - true_offset,
                   t + 0.004 + rng.uniform(0, 0.01)) for view in range(5)]
        rng.shuffle(frames)
        for sender, local in sorted(frames, key=lambda f: f[1] + rng.uniform(0, 0.005)):
            verdict = est.update(sender, local)
            if verdict.accepted:
                assert abs(est.to_local(sender) - (sender + true_offset)) < 0.05
                if t >= step_at and first_ok_after_step is None:
                    first_ok_after_step = t
    assert est.locks == 1 and est.jumps == 1 and abs(est.last_step - step) < 0.02
    assert first_ok_after_step - step_at < cfg.jump_confirm_duration + 0.1


def overload(est: ClockOffsetEstimator, link: Link, seconds: float, flag: bool) -> list:
    """A receiver that needs 1.05 sender periods per message for `seconds`, then catches up at
    ten per period: its queue, and so its read times, grow slowly (a ramp that looks like a
    steady clock offset) and then drain. `queued_for` bounds each message's wait as the bridges
    do (time since the queue was last seen empty) when `flag`, else it is always 0."""
    verdicts, free_at, empty_at = [], 0.0, 0.0
    n = int(seconds * link.rate)
    for i in range(int(3.0 * seconds * link.rate)):
        sender, arrival, _ = link.next()
        service = 1.05 / link.rate if i < n else 0.1 / link.rate
        start = max(arrival, free_at)
        if start <= arrival:
            empty_at = arrival  # found the queue empty: read as it arrived
        free_at = start + service
        queued_for = start - empty_at if flag else 0.0
        verdicts.append(est.update(sender, start, queued_for=queued_for))
    return verdicts


def test_a_lagging_receiver_is_not_a_clock_jump():
    est = ClockOffsetEstimator()
    link = Link()
    run(est, link, 3)
    verdicts = overload(est, link, 8.0, flag=True)  # lagging for longer than a window
    # What waited in our own queue keeps its (right, old) stamp: a recorder loses nothing.
    assert est.jumps == 0 and est.suspects == 0 and all(v.accepted for v in verdicts)
    assert est.backlog_late > 0
    _, errors = run(est, link, 2)
    assert np.abs(settled(errors, 0)).max() < 1e-4


def test_without_the_queue_bound_a_lagging_receiver_would_corrupt_the_clock():
    """Control for the test above: the bound is what keeps the estimate right."""
    est = ClockOffsetEstimator()
    link = Link()
    run(est, link, 3)
    verdicts = overload(est, link, 8.0, flag=False)
    assert est.jumps > 0 or not all(v.accepted for v in verdicts)


def test_config_validation():
    with pytest.raises(ValueError):
        ClockConfig(jump_threshold=0.3, jump_confirm_duration=0.2)
    with pytest.raises(ValueError):
        ClockConfig(window=1.0, bucket=2.0)
    with pytest.raises(ValueError):
        ClockConfig(max_delay=0.01)
    with pytest.raises(ValueError):
        ClockOffsetEstimator().update(math.nan, 1.0)


def test_garbage_during_settling_and_interleaved_garbage_never_poison_the_estimate():
    est = ClockOffsetEstimator()
    link = Link()
    for k in range(20):  # pairs of far-future samples between good ones, from the first one
        sender, local, _ = link.next()
        assert not est.update(sender, local).accepted
        assert not est.update(sender + 1e4, local + 1e-5).accepted
        assert not est.update(sender + 1e4 + 0.001, local + 2e-5).accepted
    run(est, link, 1)
    assert est.locks == 1 and est.offset == pytest.approx(0.5 + FLOOR, abs=2e-3)
    for k in range(50):  # the same garbage, consistent with itself, once locked
        sender, local, _ = link.next()
        assert not est.update(sender + 1e4, local).accepted
        assert not est.update(sender + 1e4 + 0.001, local + 1e-5).accepted
        assert est.update(*link.next()[:2]).accepted
    _, errors = run(est, link, 1)
    assert est.jumps == 0 and est.suspects == 100
    assert np.abs(settled(errors, 0)).max() < 2e-3


# -- Stamper ------------------------------------------------------------------------------------

def locked_stamper(offset: float = 0.0) -> tuple[Stamper, float]:
    """A Stamper whose estimator has confirmed `offset` (0.3 s at 100 Hz); returns it and the
    local time of the last sample."""
    stamper = Stamper(ClockOffsetEstimator())
    for k in range(30):
        local = T0 + k / 100.0
        try:
            stamper.stamp(local - offset, local - offset, local, key="warmup")
        except WireError as error:
            assert error.reason == "clock_settling"
    assert stamper.estimator.locked
    return stamper, local


def test_stamper_maps_orders_and_rejects():
    stamper, local = locked_stamper(offset=10.0)
    assert stamper.stamp(local - 10.0, local - 10.0, local + 0.001) == pytest.approx(local)
    with pytest.raises(WireError) as dup:
        stamper.stamp(local - 10.0, local - 10.0, local + 0.002)
    assert dup.value.reason == "reordered"
    # Ordering is per key (e.g. per camera view): the same sender time in another view is fine.
    stamper.stamp(local - 10.0, local - 10.0, local + 0.003, key="view2")
    with pytest.raises(WireError) as nan:
        stamper.stamp(math.nan, 1.0, local)
    assert nan.value.reason == "nonfinite"
    with pytest.raises(WireError) as far:
        stamper.stamp(-1e12, local - 10.0, local + 0.004)  # maps before 1970: not a valid stamp
    assert far.value.reason == "bad_stamp"
    with pytest.raises(WireError) as ahead:
        stamper.stamp(local + 5.0, local + 5.0, local + 0.005)
    assert ahead.value.reason == "clock_suspect"
    with pytest.raises(WireError) as late:
        stamper.stamp(local - 12.0, local - 12.0, local + 0.006)
    assert late.value.reason == "late"


def test_stamper_refuses_everything_before_the_clock_is_confirmed():
    stamper = Stamper(ClockOffsetEstimator())
    with pytest.raises(WireError) as settling:
        stamper.stamp(T0, T0, T0 + 0.001)
    assert settling.value.reason == "clock_settling"


def test_stamper_resets_order_on_a_backwards_sender_jump():
    stamper = Stamper(ClockOffsetEstimator())
    link = Link(offset=lambda t: 0.5 + (2.0 if t >= T0 + 5 else 0.0))
    reasons = []
    for _ in range(1000):
        sender, local, _ = link.next()
        try:
            stamper.stamp(sender, sender, local)
            reasons.append("ok")
        except WireError as error:
            reasons.append(error.reason)
    assert stamper.estimator.jumps == 1
    # The sender clock went 2 s back: its samples are late until the step is confirmed, and
    # the ordering gate is reset with it, so none is dropped as "reordered".
    bad = [i for i, r in enumerate(reasons[100:], 100) if r != "ok"]
    assert bad and set(reasons[i] for i in bad) == {"late"}
    assert bad[0] == 500 and len(bad) <= 25 and reasons[-400:] == ["ok"] * 400
