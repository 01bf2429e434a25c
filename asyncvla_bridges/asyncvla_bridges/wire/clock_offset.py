"""Estimate the offset between a sender's clock and the local clock from one-way messages.

Why: every lab sender stamps its data with its own clock (a Jetson, the robot PC, the sensor PC).
To stamp ROS messages in local time the bridges need offset = local - sender. The original
receiver (Najongs/Insertion_VLA) averaged (receive time - capture time) over the first 50
datagrams and never looked again, so network delay biased it, drift accumulated and a clock step
(NTP, a sender reboot) broke every stamp until restart.

Model: each message gives d = local_receive_time - sender_time = offset + delay, with delay >= 0
and spiky (queueing, GC pauses, Wi-Fi). The estimator is one rule applied everywhere, at start-up
as after a clock step, with no special case per sender:

- **Nothing is trusted until it is confirmed.** An estimate is *confirmed* by a run of
  `jump_confirm_samples` clean samples whose d values agree within `jump_threshold` and that span
  at least `jump_confirm_duration` seconds of local time. Agreeing d over that long means the
  sender's clock advanced at the local rate: the messages are live. Until then every sample is
  refused (`Verdict.reason == "clock_settling"`). This is what drops a sender's backlog: a sender
  that queued frames while the bridge was down delivers them in a burst whose d falls steeply
  (seconds of sender time read in milliseconds of local time), so no run of them agrees for long
  enough, and the live frames behind the burst confirm the estimate 0.2 s later.
- **Minimum filter.** Once confirmed, the estimate is the lower envelope of d over a sliding window
  (`window` seconds of local time): a delay spike only raises d, so it never moves a minimum. The
  estimate is offset + the smallest delay seen (for the bridges: the floor of capture-to-receive
  latency), so stamps are late by that floor and never early.
- **Drift.** d is kept as per-bucket minima (`bucket` seconds each). A Theil-Sen slope (the median
  of the slopes between bucket minima at least half a window apart) estimates the clock rate
  difference, clamped to +-`max_drift`; every bucket minimum is projected to "now" along that
  slope before taking the minimum, so a drifting clock is followed without window lag.
- **Deviants.** A sample whose d differs from the estimate by more than `jump_threshold` is a
  deviant. Negative (the data claims to have arrived before it was sent): refused as
  `clock_suspect`; one corrupt future timestamp must not drag the minimum down. Positive by at most
  `max_delay`: a delayed message, accepted (its stamp, sender time + offset, is right if it was
  delayed, and too *early*, i.e. conservative, if the sender clock stepped back). Positive by more
  (beyond what the message's wait in our own queue explains): refused as `late` (either stale or
  a clock step; in both cases not to be published as live).
- **Jumps.** Every clean deviant also joins the candidate run, and every sample that agrees with
  the estimate clears it (the estimate in force still holds, so a stream of garbage times
  interleaved with good ones never confirms). When the run confirms (the rule above), the
  estimator resets onto it: a clock step is adopted 0.2 s after it happened, whatever
  its size or sign, and it is counted and reported as the *sender's* clock step (positive = the
  sender's clock jumped forward, which lowers local - sender). The drift estimate is kept: a step
  does not change a clock's rate. Frozen or random garbage sender times never form an agreeing
  run (frozen times make d grow with local time), so they are never taken for a jump. No
  ordering of sender times is required: the five views of one camera trigger carry the same or
  nearly the same time and arrive in any order.
- **Own queueing.** The receive time is taken when the bridge dequeues a message. A bridge that
  falls behind (CPU overload) sees d rise steadily, which looks like a backwards clock step. So
  the receiver passes `queued_for`, an upper bound of how long the message may have waited in the
  bridge's own queue (0 when it was read right after the queue was seen empty; exact when the
  kernel timestamps datagrams). A sample with `queued_for` above `jump_threshold / 4` is judged
  but never enters the minimum and never counts as evidence for an estimate.

Pure Python, no ROS; times are float seconds. Not thread-safe: one receive thread updates it.
"""
from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class ClockConfig:
    """Estimator settings; the bridges expose each one as a parameter (see module docstring)."""

    window: float = 5.0
    bucket: float = 0.25
    jump_threshold: float = 0.05
    jump_confirm_samples: int = 5
    jump_confirm_duration: float = 0.2
    max_delay: float = 0.25
    max_drift: float = 5e-4

    def __post_init__(self) -> None:
        if not (self.window > 0 and self.bucket > 0 and self.bucket <= self.window):
            raise ValueError("clock window and bucket must be > 0 and bucket <= window")
        if not self.jump_threshold > 0 or self.jump_confirm_samples < 1:
            raise ValueError("clock jump_threshold must be > 0 and jump_confirm_samples >= 1")
        if not self.jump_confirm_duration > self.jump_threshold:
            raise ValueError("clock jump_confirm_duration must exceed jump_threshold, or frozen "
                             "sender timestamps could be taken for a jump")
        if not self.jump_confirm_duration < self.window:
            raise ValueError("clock jump_confirm_duration must be shorter than the window")
        if self.max_delay < self.jump_threshold:
            raise ValueError("clock max_delay must be >= jump_threshold")
        if self.max_drift < 0:
            raise ValueError("clock max_drift must be >= 0")

    @property
    def queue_tolerance(self) -> float:
        """Own-queue wait (s) above which a sample is not used as clock evidence."""
        return self.jump_threshold / 4.0


#: Why a sample was refused (the bridges count drops under these names).
SETTLING, SUSPECT, LATE = "clock_settling", "clock_suspect", "late"


@dataclass(frozen=True)
class Verdict:
    """What the estimator made of one sample."""

    accepted: bool      # False: drop the sample; `reason` says why
    jumped: bool        # this sample confirmed a new estimate (start-up or clock step)
    deviation: float    # d - estimate before this sample, seconds (0.0 while settling)
    reason: str = ""    # SETTLING, SUSPECT or LATE when not accepted


@dataclass
class _Bucket:
    start: float        # local time the bucket opened
    t_min: float        # local time of the bucket's smallest d
    d_min: float


@dataclass(frozen=True)
class _Candidate:
    local: float
    d: float


class ClockOffsetEstimator:
    """Confirmed sliding-window minimum of (local - sender), with drift and step following."""

    def __init__(self, config: ClockConfig | None = None) -> None:
        self.config = config or ClockConfig()
        self.jumps = 0
        self.last_step = 0.0          # the sender clock's last step, seconds (+ = forward)
        self.suspects = 0
        self.late = 0
        self.settling = 0             # samples refused while no estimate was confirmed
        self.locks = 0                # confirmations from the unconfirmed state (start-up)
        self.backlog_late = 0         # late samples that waited in our own queue
        self.samples = 0
        self.drift = 0.0              # d(offset)/dt, seconds per second
        self.reset()

    def reset(self) -> None:
        """Forget all samples and the estimate (not the counters or the drift estimate)."""
        self._buckets: deque[_Bucket] = deque()
        self._run = _AgreeingRun(self.config)
        self._offset: float | None = None

    @property
    def offset(self) -> float | None:
        """Confirmed estimate of local - sender, seconds; None while settling."""
        return self._offset

    @property
    def locked(self) -> bool:
        return self._offset is not None

    def to_local(self, sender_time: float) -> float:
        """Map a sender time to local time with the current estimate (call update() first)."""
        if self._offset is None:
            raise RuntimeError("no confirmed clock offset yet")
        return sender_time + self._offset

    def snapshot(self) -> dict[str, float | int | bool | None]:
        return {"offset": self._offset, "locked": self.locked, "drift_ppm": self.drift * 1e6,
                "jumps": self.jumps, "last_step": self.last_step, "suspects": self.suspects,
                "late": self.late, "settling": self.settling, "locks": self.locks,
                "backlog_late": self.backlog_late, "samples": self.samples}

    def update(self, sender_time: float, local_time: float, queued_for: float = 0.0) -> Verdict:
        """Feed one (sender, local receive) time pair and say whether to trust the sample.

        `queued_for`: an upper bound (s) of how long the message waited in the receiver's own
        queue before `local_time` was taken (see module docstring).
        """
        d = local_time - sender_time
        if not math.isfinite(d):
            raise ValueError("clock samples must be finite")
        self.samples += 1
        cfg = self.config
        clean = queued_for <= cfg.queue_tolerance
        if self._offset is None:
            if clean and self._track_candidate(_Candidate(local_time, d)):
                self._adopt(step=None)
                return Verdict(True, True, 0.0)
            self.settling += 1
            return Verdict(False, False, 0.0, SETTLING)
        estimate = self._estimate_at(local_time)
        deviation = d - estimate
        if abs(deviation) <= cfg.jump_threshold:
            self._run.clear()  # the estimate in force still holds
            if clean:
                self._add(local_time, d)
            return Verdict(True, False, deviation)
        if clean and self._track_candidate(_Candidate(local_time, d)):
            self._adopt(step=estimate)
            return Verdict(True, True, deviation)
        if 0 < deviation <= cfg.max_delay + queued_for:
            if not clean:
                self.backlog_late += 1
            return Verdict(True, False, deviation)
        if deviation > 0:
            self.late += 1
            return Verdict(False, False, deviation, LATE)
        self.suspects += 1
        return Verdict(False, False, deviation, SUSPECT)

    # -- internals ----------------------------------------------------------------------------

    def _estimate_at(self, local_time: float) -> float:
        slope = self.drift
        return min(b.d_min + slope * (local_time - b.t_min) for b in self._buckets)

    def _add(self, local_time: float, d: float) -> None:
        cfg = self.config
        buckets = self._buckets
        last = buckets[-1] if buckets else None
        if last is None or local_time - last.start >= cfg.bucket or local_time < last.start:
            buckets.append(_Bucket(local_time, local_time, d))
            while len(buckets) > 1 and buckets[0].t_min < local_time - cfg.window:
                buckets.popleft()
            self._refit_drift()
        elif d < last.d_min:
            last.d_min, last.t_min = d, local_time
        self._offset = self._estimate_at(local_time)

    def _refit_drift(self) -> None:
        """Theil-Sen slope over the closed buckets' minima, clamped to +-max_drift.

        Only pairs at least half a window apart vote: a bucket minimum carries the jitter of the
        delay floor, and over short spans that noise would dominate the slope.
        """
        closed = list(self._buckets)[:-1]
        if len(closed) < 4:
            return
        min_dt = self.config.window / 2.0
        slopes = [(b.d_min - a.d_min) / (b.t_min - a.t_min)
                  for i, a in enumerate(closed) for b in closed[i + 1:]
                  if b.t_min - a.t_min > min_dt]
        if slopes:
            limit = self.config.max_drift
            self.drift = max(-limit, min(limit, statistics.median(slopes)))

    def _track_candidate(self, cand: _Candidate) -> bool:
        """Add a clean sample to the run of agreeing samples; True when the run confirms."""
        return self._run.add(cand)

    def _adopt(self, step: float | None) -> None:
        """Reset onto the confirmed candidate run; `step` is the old estimate (None at start)."""
        run = self._run.take()
        self._buckets = deque()
        for cand in run:
            self._add(cand.local, cand.d)
        assert self._offset is not None
        if step is None:
            self.locks += 1
        else:
            self.jumps += 1
            self.last_step = step - self._offset


class _AgreeingRun:
    """Clean samples whose d agree within `jump_threshold`: the evidence for an estimate.

    The run's floor is the smallest d in it. A sample above floor + threshold was delayed
    relative to the run and is set aside, not a contradiction (a delay spike must not restart
    the evidence). A sample below floor - threshold shows the run's samples were stale (a
    backlog) or that the clock moved: the run restarts from it. If `jump_confirm_samples`
    samples in a row are set aside, the floor itself was the odd one out (a corrupt time from
    the future) and the run restarts from them. Entries older than a window are forgotten.
    """

    def __init__(self, config: ClockConfig) -> None:
        self.config = config
        self._samples: deque[_Candidate] = deque()
        self._aside: deque[_Candidate] = deque(maxlen=config.jump_confirm_samples)
        self._floor = math.inf

    def clear(self) -> None:
        self._samples.clear()
        self._aside.clear()
        self._floor = math.inf

    def take(self) -> list[_Candidate]:
        """The run's samples; the run is cleared."""
        samples = list(self._samples)
        self.clear()
        return samples

    def add(self, cand: _Candidate) -> bool:
        """Add one sample; True when the run confirms an estimate (module docstring)."""
        cfg = self.config
        threshold = cfg.jump_threshold
        if cand.d > self._floor + threshold:
            self._aside.append(cand)
            if len(self._aside) < cfg.jump_confirm_samples:
                return False
            aside = list(self._aside)
            self.clear()
            for sample in aside:
                self._insert(sample)
        else:
            self._aside.clear()
            self._insert(cand)
        samples = self._samples
        while samples and cand.local - samples[0].local > cfg.window:
            samples.popleft()
        return (len(samples) >= cfg.jump_confirm_samples
                and samples[-1].local - samples[0].local >= cfg.jump_confirm_duration)

    def _insert(self, cand: _Candidate) -> None:
        threshold = self.config.jump_threshold
        if cand.d < self._floor - threshold:
            self._samples.clear()
        if cand.d < self._floor:
            self._floor = cand.d
            self._samples = deque(c for c in self._samples if c.d <= cand.d + threshold)
        if cand.d <= self._floor + threshold:
            self._samples.append(cand)
