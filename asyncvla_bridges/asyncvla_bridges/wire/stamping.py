"""Turn a sender timestamp into a trusted local stamp: clock verdict, range, then ordering.

Why one class for the three bridges: each stream needs the same three checks in the same order,
and the order matters. The clock estimator sees every sample first (a backwards clock jump can
only be confirmed by samples that the ordering check would otherwise drop); a stamp outside what
builtin_interfaces/Time can hold is dropped before it can advance the ordering gate; and the gate
is reset when the estimator confirms a new estimate, or a sender clock stepped backwards would
have every later sample dropped as "reordered" until its clock caught up. Ordering is per key
(per camera view): views of one trigger may carry the same time and arrive in any order.
"""
from __future__ import annotations

import math
from typing import Hashable

from .clock_offset import LATE, SETTLING, SUSPECT, ClockOffsetEstimator, Verdict
from .errors import WireError

MAX_STAMP_S = 2.0**31  # builtin_interfaces/Time.sec is an int32


class Stamper:
    """Per-stream sender-to-local stamping with drop reasons as WireError."""

    def __init__(self, estimator: ClockOffsetEstimator) -> None:
        self.estimator = estimator
        self._last: dict[Hashable, float] = {}

    def reset_order(self) -> None:
        self._last.clear()

    def observe(self, clock_time: float, local_now: float, queued_for: float = 0.0) -> Verdict:
        """Feed one clock sample to the estimator; reset the ordering gate on a new estimate.

        Call it for every sample of a batch before `map` of any of them, so that the first
        samples of a batch are stamped with what the whole batch says about the clock.
        """
        if not math.isfinite(clock_time):
            raise WireError("nonfinite", "sender timestamp is NaN or infinite")
        verdict = self.estimator.update(clock_time, local_now, queued_for)
        if verdict.jumped:
            self.reset_order()
        return verdict

    def map(self, sender_time: float, verdict: Verdict, key: Hashable = None) -> float:
        """Local time (s) for `sender_time` given its clock verdict; raise WireError(reason)."""
        if not math.isfinite(sender_time):
            raise WireError("nonfinite", "sender timestamp is NaN or infinite")
        if not verdict.accepted:
            raise WireError(verdict.reason, _REFUSALS[verdict.reason](sender_time, verdict))
        local = self.estimator.to_local(sender_time)
        if not 0.0 <= local < MAX_STAMP_S:
            raise WireError("bad_stamp", f"sender time {sender_time!r} maps to {local!r} s")
        last = self._last.get(key)
        if last is not None and sender_time <= last:
            raise WireError("reordered", f"sender time {sender_time!r} <= last {last!r}")
        self._last[key] = sender_time
        return local

    def stamp(self, sender_time: float, clock_time: float, local_now: float,
              key: Hashable = None, queued_for: float = 0.0) -> float:
        """Local time (s) for `sender_time`; raise WireError(reason) if the sample must be dropped.

        `clock_time` is the sender time fed to the offset estimator (the capture time itself, or
        the send time when the bridge is configured so); `local_now` is the receive time;
        `queued_for` bounds the wait in the receiver's own queue (ClockOffsetEstimator.update).
        """
        if not math.isfinite(sender_time):
            raise WireError("nonfinite", "sender timestamp is NaN or infinite")
        return self.map(sender_time, self.observe(clock_time, local_now, queued_for), key)


_REFUSALS = {
    SETTLING: lambda t, v: "no confirmed sender clock offset yet (start-up, a backlog being "
                           "dropped, or a sender clock step being confirmed)",
    SUSPECT: lambda t, v: f"sender time {t!r} is {-v.deviation:.3f} s ahead of the clock "
                          "estimate",
    LATE: lambda t, v: f"sample arrived {v.deviation:.3f} s later than the delay floor (stale, "
                       "or the sender clock stepped back)",
}
