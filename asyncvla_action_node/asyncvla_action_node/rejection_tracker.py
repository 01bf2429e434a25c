"""Repeated refusals of one input turn its diagnostic WARN, then ERROR, while they continue.

Why: a refused message is counted and dropped, and that used to be all. A sender that keeps
sending a wrong payload, another model id or bad batches left /diagnostics at OK while the node
silently ignored it. Each input gets a tracker; the node reports the worst one. ROS-free; times
are monotonic seconds passed in by the caller.

Rules, per input:

* OK when nothing was refused in the last ``window`` seconds;
* WARN from the first refusal;
* ERROR once refusals have continued for ``error_after`` seconds (a streak: no pause of a whole
  ``window`` between two refusals), or when at least half of the last ``window``'s messages
  (and at least ``min_error_count`` of them) were refused;
* back to OK by itself ``window`` seconds after the last refusal.
"""
from __future__ import annotations

import collections
import threading
from dataclasses import dataclass

from asyncvla_common.report import ERROR, OK, WARN

# Same values as common.diagnostics (kept ROS-free here; a test checks they agree).


@dataclass(frozen=True)
class RejectionStatus:
    level: int
    message: str  # "" when OK
    refused: int  # in the window
    received: int  # in the window (accepted + refused)
    total_refused: int  # since start
    last_reason: str


class RejectionTracker:
    """Accepted and refused messages of one input over a sliding time window; thread-safe."""

    def __init__(self, name: str, window: float = 5.0, error_after: float = 2.0,
                 min_error_count: int = 5, max_events: int = 4096) -> None:
        self.name = name
        self.window = window
        self.error_after = error_after
        self.min_error_count = min_error_count
        self._events: collections.deque[tuple[float, bool]] = collections.deque(maxlen=max_events)
        self._lock = threading.Lock()
        self._streak_start: float | None = None
        self._last_refused: float | None = None
        self.total_refused = 0
        self.last_reason = ""

    def accepted(self, now: float) -> None:
        with self._lock:
            self._events.append((now, True))

    def refused(self, now: float, reason: str) -> None:
        with self._lock:
            self._events.append((now, False))
            if self._last_refused is None or now - self._last_refused > self.window:
                self._streak_start = now
            self._last_refused = now
            self.total_refused += 1
            self.last_reason = reason

    def refusing(self, now: float) -> bool:
        """Was anything refused in the last `window` seconds?"""
        with self._lock:
            return self._last_refused is not None and now - self._last_refused <= self.window

    def status(self, now: float) -> RejectionStatus:
        with self._lock:
            while self._events and now - self._events[0][0] > self.window:
                self._events.popleft()
            received = len(self._events)
            refused = sum(1 for _, ok in self._events if not ok)
            recent = self._last_refused is not None and now - self._last_refused <= self.window
            if not recent:
                return RejectionStatus(OK, "", refused, received, self.total_refused,
                                       self.last_reason)
            lasted = now - (self._streak_start if self._streak_start is not None else now)
            error = lasted >= self.error_after or (
                refused >= self.min_error_count and 2 * refused >= received)
            message = (f"{self.name}: {refused} of {received} refused in the last "
                       f"{self.window:.0f} s (refusing for {lasted:.1f} s): {self.last_reason}")
            return RejectionStatus(ERROR if error else WARN, message, refused, received,
                                   self.total_refused, self.last_reason)


class RejectionSet:
    """One tracker per input name; `worst` is what a diagnostic shows."""

    def __init__(self, names: tuple[str, ...], **tracker_args: float) -> None:
        self.trackers = {name: RejectionTracker(name, **tracker_args) for name in names}

    def __getitem__(self, name: str) -> RejectionTracker:
        return self.trackers[name]

    def worst(self, now: float, names: tuple[str, ...] | None = None) -> RejectionStatus | None:
        """The status of highest level among `names` (all when None); None when all are OK."""
        statuses = [self.trackers[n].status(now) for n in (names or tuple(self.trackers))]
        bad = [s for s in statuses if s.level > OK]
        return max(bad, key=lambda s: s.level) if bad else None

    def notes(self, now: float) -> dict[str, str]:
        """{input: last refusal reason} for inputs refusing right now (for watchdog messages)."""
        return {n: t.last_reason for n, t in self.trackers.items() if t.refusing(now)}
