"""Estimate the offset between a sender's clock and the local clock from one-way messages.

Why: every lab sender stamps its data with its own clock (a Jetson, the robot PC, the sensor PC).
To stamp ROS messages in local time the bridges need offset = local - sender. The original receiver
averaged (receive time - capture time) over the first 50 datagrams and never looked again, so
network delay biased it, drift accumulated and a clock step (NTP, a sender restart) broke every
stamp until restart.

Model: each message gives d = local_receive_time - sender_time = offset + delay, with delay >= 0
and spiky (queueing, GC pauses, Wi-Fi). So:

- Minimum filter: the estimate is the lower envelope of d over a sliding window (`window`
  seconds of local time). A delay spike only raises d, so it never moves a minimum. The estimate
  is offset + the smallest delay seen (for the bridges: the floor of capture-to-receive latency).
- Drift: d is kept as per-bucket minima (`bucket` seconds each). A Theil-Sen slope (the median of
  the slopes between bucket minima at least half a window apart; robust to outlier buckets) of
  those minima estimates the clock rate difference,
  clamped to +-`max_drift`; every bucket minimum is projected to "now" along that slope before
  taking the minimum, so a drifting clock is followed without the lag of a plain windowed minimum
  (which would trail a rising offset by drift x window).
- Jumps: a sample whose d differs from the estimate by more than `jump_threshold` is a deviant.
  A jump is confirmed when at least `jump_confirm_samples` consecutive deviants on the same side,
  with strictly increasing sender times and d values within `jump_threshold` of each other (i.e.
  the sender clock keeps running at the local rate, just shifted), span at least
  `jump_confirm_duration` seconds of local time. Then the estimator resets onto those samples
  (the drift estimate is kept: a step does not change a clock's rate), counts the jump and
  records its size. A burst of delayed messages after a network stall arrives within
  milliseconds with d falling steeply, and frozen or random garbage sender times do not advance
  with local time, so neither is taken for a jump; that is why `jump_confirm_duration` must
  exceed `jump_threshold`.
- Verdicts: a positive deviant is accepted (most likely a delayed message whose sender time is
  right). A negative deviant is impossible from delay alone (it claims the data arrived before
  it was sent), so it is rejected as a suspect until a jump confirms it: one corrupt timestamp in
  the future would otherwise drag the minimum down and poison the stamps for a whole window.
- Backlog: the receive time is taken when the bridge dequeues a message, so a bridge that
  falls behind (CPU overload) sees d rise steadily, which looks like a backwards clock step
  and, after a whole window, would even be adopted by the minimum; when the queue drains, the
  true (lower) d would then be rejected as suspect. So the receiver flags messages it found
  already queued behind another one (`backlog=True`): they are judged (a negative deviant is
  still a suspect) but never enter the minimum and never count as jump evidence. A lagging
  bridge then keeps stamping with the offset measured while it kept up.
- Warm-up: the first sample's delay is unknown, so the first estimate may be off by more than
  the threshold. A jump confirmed within `warmup` seconds of the first sample resets the
  estimate like any other but is not counted or reported as a clock jump. It needs the same
  evidence: accepting everything during warm-up instead would let one corrupt early timestamp
  poison the estimate. (A backlog queued before the receiver started needs no special case:
  its messages arrive together with d falling in steps of one sender period, which the minimum
  follows sample by sample.)

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
    warmup: float = 1.0
    max_drift: float = 5e-4

    def __post_init__(self) -> None:
        if not (self.window > 0 and self.bucket > 0 and self.bucket <= self.window):
            raise ValueError("clock window and bucket must be > 0 and bucket <= window")
        if not self.jump_threshold > 0 or self.jump_confirm_samples < 1:
            raise ValueError("clock jump_threshold must be > 0 and jump_confirm_samples >= 1")
        if not self.jump_confirm_duration > self.jump_threshold:
            raise ValueError("clock jump_confirm_duration must exceed jump_threshold, or frozen "
                             "sender timestamps could be taken for a jump")
        if self.warmup < 0 or self.max_drift < 0:
            raise ValueError("clock warmup and max_drift must be >= 0")


@dataclass(frozen=True)
class Verdict:
    """What the estimator made of one sample."""

    accepted: bool      # False: a suspect (sender time ahead of what any delay allows); drop it
    jumped: bool        # this sample confirmed a clock jump; the estimator was reset onto it
    deviation: float    # d - estimate before this sample, seconds (>= 0 is delay above floor)


@dataclass
class _Bucket:
    start: float        # local time the bucket opened
    t_min: float        # local time of the bucket's smallest d
    d_min: float


@dataclass(frozen=True)
class _Candidate:
    local: float
    sender: float
    d: float


class ClockOffsetEstimator:
    """Sliding-window minimum of (local - sender) with drift following and jump detection."""

    def __init__(self, config: ClockConfig | None = None) -> None:
        self.config = config or ClockConfig()
        self.jumps = 0
        self.last_jump = 0.0          # new estimate - old estimate at the last jump, seconds
        self.suspects = 0
        self.settles = 0              # resets during warm-up (not clock jumps)
        self.backlog_late = 0         # late samples ignored because they waited in our queue
        self.samples = 0
        self.drift = 0.0              # d(offset)/dt, seconds per second
        self.reset()

    def reset(self) -> None:
        """Forget all samples (not the counters or the drift estimate)."""
        self._buckets: deque[_Bucket] = deque()
        self._candidates: list[_Candidate] = []
        self._candidate_sign = 0
        self._first_local: float | None = None
        self._offset: float | None = None

    @property
    def offset(self) -> float | None:
        """Current estimate of local - sender, seconds; None before the first sample."""
        return self._offset

    def to_local(self, sender_time: float) -> float:
        """Map a sender time to local time with the current estimate (call update() first)."""
        if self._offset is None:
            raise RuntimeError("no clock offset estimate yet")
        return sender_time + self._offset

    def snapshot(self) -> dict[str, float | int | None]:
        return {"offset": self._offset, "drift_ppm": self.drift * 1e6, "jumps": self.jumps,
                "last_jump": self.last_jump, "suspects": self.suspects, "settles": self.settles,
                "backlog_late": self.backlog_late, "samples": self.samples}

    def update(self, sender_time: float, local_time: float, backlog: bool = False) -> Verdict:
        """Feed one (sender, local receive) time pair and say whether to trust the sample.

        `backlog`: the receiver found this message already queued behind another one, so its
        local time includes the receiver's own processing delay (see module docstring).
        """
        d = local_time - sender_time
        if not math.isfinite(d):
            raise ValueError("clock samples must be finite")
        self.samples += 1
        if self._offset is None:
            self._first_local = local_time
            self._add(local_time, d)
            return Verdict(True, False, 0.0)
        estimate = self._estimate_at(local_time)
        deviation = d - estimate
        cfg = self.config
        assert self._first_local is not None
        if abs(deviation) <= cfg.jump_threshold:
            self._candidates.clear()
            if not backlog:
                self._add(local_time, d)
            return Verdict(True, False, deviation)
        if backlog and deviation > 0:
            self.backlog_late += 1
            return Verdict(True, False, deviation)
        if self._track_candidate(_Candidate(local_time, sender_time, d), deviation):
            self._jump(estimate, settling=local_time - self._first_local < cfg.warmup)
            return Verdict(True, True, deviation)
        if deviation > 0:
            return Verdict(True, False, deviation)
        self.suspects += 1
        return Verdict(False, False, deviation)

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

    def _track_candidate(self, cand: _Candidate, deviation: float) -> bool:
        """Add a deviant to the run of consistent deviants; True when it confirms a jump."""
        cfg = self.config
        sign = 1 if deviation > 0 else -1
        run = self._candidates
        if sign != self._candidate_sign or (run and cand.sender <= run[-1].sender):
            run.clear()
            self._candidate_sign = sign
        run.append(cand)
        # Keep the longest suffix whose d values agree within the threshold.
        while max(c.d for c in run) - min(c.d for c in run) > cfg.jump_threshold:
            run.pop(0)
        if len(run) > 100_000:  # bounded memory whatever the input rate
            del run[:-50_000]
        return (len(run) >= cfg.jump_confirm_samples
                and run[-1].local - run[0].local >= cfg.jump_confirm_duration)

    def _jump(self, old_estimate: float, settling: bool) -> None:
        run = self._candidates
        self._candidates = []
        self._candidate_sign = 0
        self._buckets = deque()
        for cand in run:
            self._add(cand.local, cand.d)
        assert self._offset is not None
        if settling:
            self.settles += 1
        else:
            self.jumps += 1
            self.last_jump = self._offset - old_estimate
