"""Rolling statistics for diagnostics: event rates, latency percentiles, named counters.

Pure Python (no ROS), so the logic is unit-tested without a graph. Times are seconds from any
monotonic clock the caller chooses.
"""
from __future__ import annotations

import collections
import math
import threading


class RateMeter:
    """Events per second over a sliding time window."""

    def __init__(self, window: float = 5.0) -> None:
        self._window = window
        self._times: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def tick(self, now: float) -> None:
        with self._lock:
            self._times.append(now)
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self._window:
            self._times.popleft()

    def rate(self, now: float) -> float:
        with self._lock:
            self._trim(now)
            if len(self._times) < 2:
                return 0.0
            span = max(now - self._times[0], self._times[-1] - self._times[0])
            return (len(self._times) - 1) / span if span > 0 else 0.0


class RollingStats:
    """Percentiles of the last `size` samples (e.g. inference latency)."""

    def __init__(self, size: int = 200) -> None:
        self._values: collections.deque[float] = collections.deque(maxlen=size)
        self._lock = threading.Lock()
        self.count = 0

    def add(self, value: float) -> None:
        with self._lock:
            self._values.append(value)
            self.count += 1

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile, q in [0, 100]; NaN when empty."""
        with self._lock:
            values = sorted(self._values)
        if not values:
            return math.nan
        rank = max(1, math.ceil(q / 100.0 * len(values)))
        return values[min(rank, len(values)) - 1]

    def mean(self) -> float:
        with self._lock:
            return sum(self._values) / len(self._values) if self._values else math.nan

    def last(self) -> float:
        with self._lock:
            return self._values[-1] if self._values else math.nan


class Counters:
    """Named monotonically increasing counters (drops by reason, messages, errors)."""

    def __init__(self) -> None:
        self._counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def inc(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def get(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def total(self, prefix: str = "") -> int:
        with self._lock:
            return sum(v for k, v in self._counts.items() if k.startswith(prefix))


#: Share of a node's input dropped over the window above which its diagnostics WARN / ERROR.
WARN_DROP_FRACTION = 0.10
ERROR_DROP_FRACTION = 0.50


class DropWindow:
    """Share of inputs dropped over a sliding time window, and the main reason.

    Why: cumulative drop counters say nothing about now, and a rate alone hides that a node
    receiving 150 inputs/s and publishing none is broken. The window is kept as per-`slot`
    buckets so a 650 Hz stream costs a dict update per input, not a deque entry.
    """

    def __init__(self, window: float = 5.0, slot: float = 0.25) -> None:
        self._window, self._slot = window, slot
        self._slots: collections.deque[tuple[float, list[int], collections.Counter[str]]] = (
            collections.deque())
        self._lock = threading.Lock()

    def _current(self, now: float) -> tuple[list[int], collections.Counter[str]]:
        slots = self._slots
        if not slots or now - slots[-1][0] >= self._slot or now < slots[-1][0]:
            slots.append((now, [0], collections.Counter()))
        while slots and now - slots[0][0] > self._window:
            slots.popleft()
        return slots[-1][1], slots[-1][2]

    def received(self, now: float, count: int = 1) -> None:
        with self._lock:
            self._current(now)[0][0] += count

    def dropped(self, now: float, reason: str, count: int = 1) -> None:
        with self._lock:
            self._current(now)[1][reason] += count

    def summary(self, now: float) -> tuple[float, int, str]:
        """(dropped / received, received, main reason or "") over the window."""
        with self._lock:
            while self._slots and now - self._slots[0][0] > self._window:
                self._slots.popleft()
            received = sum(s[1][0] for s in self._slots)
            reasons: collections.Counter[str] = collections.Counter()
            for s in self._slots:
                reasons.update(s[2])
        dropped = sum(reasons.values())
        if not received:
            return 0.0, 0, ""
        main = reasons.most_common(1)[0][0] if reasons else ""
        return min(1.0, dropped / received), received, main


def drop_severity(fraction: float) -> int:
    """The report level (OK, WARN or ERROR) for a dropped share."""
    from .report import ERROR, OK, WARN

    if fraction > ERROR_DROP_FRACTION:
        return ERROR
    return WARN if fraction > WARN_DROP_FRACTION else OK
