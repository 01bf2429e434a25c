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
