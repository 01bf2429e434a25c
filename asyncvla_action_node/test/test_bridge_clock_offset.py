"""Clock offset estimator (wire/clock_offset.py) and stamping (wire/stamping.py) on simulated links.

A simulated sender stamps messages with its clock, sender = true_time - offset(true_time); the
receiver sees them at true_time + delay. The estimate should follow offset + delay floor.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from asyncvla_action_node.wire.clock_offset import ClockConfig, ClockOffsetEstimator
from asyncvla_action_node.wire.errors import WireError
from asyncvla_action_node.wire.stamping import Stamper

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
        errors.append((local, est.offset - (offset + FLOOR)))
    return verdicts, errors


def settled(errors, after: float):
    return np.array([e for t, e in errors if t > T0 + after])


def test_constant_offset_converges_to_offset_plus_floor():
    est = ClockOffsetEstimator()
    _, errors = run(est, Link(), 10)
    err = settled(errors, 2.0)
    assert np.abs(err).max() < 1e-4
    assert est.jumps == 0 and est.suspects == 0


def test_delay_spikes_and_a_stall_are_ignored():
    est = ClockOffsetEstimator()
    rng = np.random.default_rng(5)
    link = Link(rate=200.0)

    def extra(k):
        if 1200 <= k < 1320:          # a 0.6 s stall: messages queue, then arrive in a burst
            return (1320 - k) / link.rate
        return float(rng.uniform(0.02, 0.3)) if rng.random() < 0.1 else 0.0

    verdicts, errors = run(est, link, 20, extra)
    assert all(v.accepted for v in verdicts)
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


@pytest.mark.parametrize("step", [0.3, -0.3, 5.0, -3600.0])
def test_jump_is_detected_reported_and_followed(step):
    cfg = ClockConfig()
    est = ClockOffsetEstimator(cfg)
    jump_at = T0 + 10.0
    link = Link(offset=lambda t: 0.5 + (step if t >= jump_at else 0.0))
    verdicts, errors = run(est, link, 20)
    assert est.jumps == 1
    assert abs(est.last_jump - step) < 2e-3
    confirmed = [t for (t, _), v in zip(errors, verdicts) if v.jumped]
    assert len(confirmed) == 1
    # Confirmed after the configured persistence, not before and not much later.
    assert cfg.jump_confirm_duration <= confirmed[0] - jump_at < cfg.jump_confirm_duration + 0.05
    assert np.abs(settled(errors, 10.0 + cfg.jump_confirm_duration + 0.05)).max() < 2e-4
    rejected = sum(not v.accepted for v in verdicts)
    # Only a sender clock stepping forward (negative step of local - sender) is held back.
    assert rejected == (0 if step > 0 else est.suspects) and (step > 0 or rejected <= 25)


def test_future_garbage_is_rejected_without_moving_the_estimate():
    est = ClockOffsetEstimator()
    link = Link()
    run(est, link, 3)
    before = est.offset
    sender, local, _ = link.next()
    verdict = est.update(sender + 100.0, local)
    assert not verdict.accepted and est.suspects == 1
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


def test_late_first_message_settles_without_a_jump_report():
    est = ClockOffsetEstimator()
    link = Link()
    sender, local, _ = link.next(extra_delay=2.0)  # the very first message was 2 s late
    est.update(sender, local)
    _, errors = run(est, link, 5)
    assert est.jumps == 0 and est.settles == 1
    # Held back only until the new estimate is confirmed (0.2 s at 100 Hz).
    assert est.suspects <= 22
    assert np.abs(settled(errors, 0.3)).max() < 1e-4


def test_a_backlog_at_start_is_followed_without_any_reset():
    est = ClockOffsetEstimator()
    link = Link()
    # 300 messages queued before the receiver started, all delivered within a few ms.
    backlog = [link.next() for _ in range(300)]
    arrival = backlog[-1][1]
    for i, (sender, _, _) in enumerate(backlog):
        assert est.update(sender, arrival + i * 1e-5).accepted
    _, errors = run(est, link, 3)
    assert est.jumps == 0 and est.settles == 0 and est.suspects == 0
    assert np.abs(settled(errors, 3.2)).max() < 1e-4


def test_garbage_during_warmup_does_not_poison_the_estimate():
    est = ClockOffsetEstimator()
    link = Link()
    run(est, link, 0.1)
    for k in range(20):  # pairs of consecutive far-future samples between good ones
        sender, local, _ = link.next()
        assert not est.update(sender + 1e4, local).accepted
        assert not est.update(sender + 1e4 + 0.001, local + 1e-5).accepted
        assert est.update(*link.next()[:2]).accepted
    _, errors = run(est, link, 1)
    assert est.jumps == 0 and est.settles == 0 and est.suspects == 40
    assert np.abs(settled(errors, 0)).max() < 1e-4


def overload(est: ClockOffsetEstimator, link: Link, seconds: float, flag: bool) -> list:
    """A receiver that needs 1.05 sender periods per message for `seconds`, then catches up at
    ten per period: its queue, and so its read times, grow slowly (a ramp that looks like a
    steady clock offset) and then drain. Every message but the first after an empty queue is
    flagged as backlog when `flag`."""
    verdicts, free_at, queue_empty = [], 0.0, True
    n = int(seconds * link.rate)
    for i in range(int(3.0 * seconds * link.rate)):
        sender, arrival, _ = link.next()
        service = 1.05 / link.rate if i < n else 0.1 / link.rate
        start = max(arrival, free_at)
        backlog = flag and start > arrival and not queue_empty
        queue_empty = start <= arrival
        free_at = start + service
        verdicts.append(est.update(sender, start, backlog=backlog))  # read from the queue
    return verdicts


def test_a_lagging_receiver_is_not_a_clock_jump():
    est = ClockOffsetEstimator()
    link = Link()
    run(est, link, 3)
    verdicts = overload(est, link, 8.0, flag=True)  # lagging for longer than a window
    assert est.jumps == 0 and est.suspects == 0 and all(v.accepted for v in verdicts)
    assert est.backlog_late > 0
    _, errors = run(est, link, 2)
    assert np.abs(settled(errors, 0)).max() < 1e-4


def test_without_the_backlog_flag_a_lagging_receiver_would_corrupt_the_clock():
    """Control for the test above: the flag is what keeps the estimate right."""
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
        ClockOffsetEstimator().update(math.nan, 1.0)


# -- Stamper ------------------------------------------------------------------------------------

def test_stamper_maps_orders_and_rejects():
    stamper = Stamper(ClockOffsetEstimator())
    local = T0
    assert stamper.stamp(T0 - 10.0, T0 - 10.0, local + 0.001) == pytest.approx(local + 0.001)
    with pytest.raises(WireError) as dup:
        stamper.stamp(T0 - 10.0, T0 - 10.0, local + 0.002)
    assert dup.value.reason == "reordered"
    # Ordering is per key (e.g. per camera view).
    stamper.stamp(T0 - 10.0, T0 - 10.0, local + 0.003, key="view2")
    with pytest.raises(WireError) as nan:
        stamper.stamp(math.nan, 1.0, local)
    assert nan.value.reason == "nonfinite"
    with pytest.raises(WireError) as far:
        stamper.stamp(-1e12, -1e12, local + 0.004)  # maps before 1970: not a valid stamp
    assert far.value.reason == "bad_stamp"


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
    # The sender clock went 2 s back: samples are "reordered" only until the jump is confirmed.
    bad = [i for i, r in enumerate(reasons) if r != "ok"]
    assert bad and set(reasons[i] for i in bad) == {"reordered"}
    assert bad[0] == 500 and len(bad) <= 25 and reasons[-400:] == ["ok"] * 400
