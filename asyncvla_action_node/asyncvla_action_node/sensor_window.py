"""A time-ordered ring buffer of force + OCT samples that yields the model's input window.

Why a class of its own: the original receiver appended samples from a UDP thread and sliced the
buffer from the inference thread without a lock, and never checked whether the window had holes.
Here the window handed to the model is always the newest `window_size` samples at or before the
action time, contiguous (no gap above `max_gap`), finite, and fresh enough — or it is refused with
a reason the node reports. Samples stamped further ahead of the caller's clock than
`max_future` are dropped at arrival (input_checks): they would otherwise become the newest sample,
and every correct one after them would be dropped as out of order.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from asyncvla_core import freshness
from asyncvla_core.input_checks import NS_PER_S


@dataclass(frozen=True)
class SensorWindowResult:
    window: np.ndarray | None  # (window_size, 1 + aline_length) float32, or None when refused
    newest_stamp_ns: int
    reason: str  # "" when the window is usable


class SensorWindow:
    """Thread-safe buffer; `add_batch` from a subscription, `window` from the action timer."""

    def __init__(self, window_size: int, aline_length: int, max_gap: float,
                 capacity_factor: int = 4,
                 max_future: float = freshness.MAX_FUTURE_STAMP_S) -> None:
        if window_size < 1 or aline_length < 1:
            raise ValueError("window_size and aline_length must be positive")
        self.window_size = window_size
        self.aline_length = aline_length
        self.max_gap_ns = int(max_gap * 1e9)
        self.max_future_ns = int(max_future * NS_PER_S)
        self._capacity = window_size * capacity_factor
        self._stamps = np.zeros(self._capacity, dtype=np.int64)
        self._rows = np.zeros((self._capacity, 1 + aline_length), dtype=np.float32)
        self._count = 0  # samples stored (<= capacity)
        self._head = 0  # index of the next write
        self._lock = threading.Lock()
        self.dropped: dict[str, int] = {"non_finite": 0, "out_of_order": 0, "bad_shape": 0,
                                        "future": 0}
        self._last_batch: tuple[int, dict[str, int]] = (0, {})

    #: How each drop reason reads in a diagnostic.
    DROP_TEXT = {"non_finite": "NaN or inf", "out_of_order": "not newer than the last sample",
                 "bad_shape": "arrays of the wrong shape", "future": "stamped in the future"}

    def describe_last_drops(self) -> str:
        """Why samples of the last batch were dropped ("" when none were)."""
        n, drops = self._last_batch
        parts = [f"{count} {self.DROP_TEXT[key]}" for key, count in drops.items() if count]
        if not parts:
            return ""
        text = f"{sum(drops.values())} of {n} samples dropped: " + ", ".join(parts)
        if drops.get("future"):
            text += f" (freshness.max_future_stamp {self.max_future_ns / 1e6:.0f} ms)"
        return text

    def clear(self) -> None:
        """Forget everything (e.g. after a clock jump): a window must never span a jump."""
        with self._lock:
            self._count = 0
            self._head = 0

    def add_batch(self, stamps_ns: np.ndarray, force: np.ndarray, alines: np.ndarray,
                  now_ns: int) -> int:
        """Append samples; returns how many were accepted. Bad samples are counted, not raised.

        `now_ns` is the receiver's clock: samples stamped later than `now_ns + max_future` are
        dropped, and a buffer whose newest sample is that far ahead (the clock stepped back) is
        cleared first, so that it cannot block the samples that follow.
        """
        before = dict(self.dropped)
        n = self._add(stamps_ns, force, alines, now_ns)
        self._last_batch = (int(np.size(stamps_ns)),
                            {k: self.dropped[k] - before[k] for k in self.dropped})
        return n

    def _add(self, stamps_ns: np.ndarray, force: np.ndarray, alines: np.ndarray,
             now_ns: int) -> int:
        stamps_ns = np.asarray(stamps_ns, dtype=np.int64).reshape(-1)
        force = np.asarray(force, dtype=np.float32).reshape(-1)
        n = stamps_ns.size
        try:
            alines = np.asarray(alines, dtype=np.float32).reshape(n, self.aline_length)
        except ValueError:
            self.dropped["bad_shape"] += n or 1
            return 0
        if force.size != n:
            self.dropped["bad_shape"] += n or 1
            return 0
        accepted = 0
        latest_ok = now_ns + self.max_future_ns
        with self._lock:
            last = self._stamps[(self._head - 1) % self._capacity] if self._count else None
            if last is not None and last > latest_ok:
                self._count = self._head = 0
                last = None
            for i in range(n):
                if not (np.isfinite(force[i]) and np.all(np.isfinite(alines[i]))):
                    self.dropped["non_finite"] += 1
                    continue
                if stamps_ns[i] > latest_ok:
                    self.dropped["future"] += 1
                    continue
                if last is not None and stamps_ns[i] <= last:
                    self.dropped["out_of_order"] += 1
                    continue
                self._stamps[self._head] = stamps_ns[i]
                self._rows[self._head, 0] = force[i]
                self._rows[self._head, 1:] = alines[i]
                self._head = (self._head + 1) % self._capacity
                self._count = min(self._count + 1, self._capacity)
                last = stamps_ns[i]
                accepted += 1
        return accepted

    @property
    def capacity(self) -> int:
        """Samples the buffer holds; a larger batch could never be used whole."""
        return self._capacity

    @property
    def fill(self) -> int:
        with self._lock:
            return self._count

    def window(self, end_ns: int, max_age: float) -> SensorWindowResult:
        """The newest `window_size` samples stamped at or before `end_ns`.

        Refused when there are too few, when any gap between neighbours exceeds `max_gap`, or when
        the newest usable sample is more than `max_age` seconds older than `end_ns`.
        """
        with self._lock:
            if self._count == 0:
                return SensorWindowResult(None, 0, "no sensor samples yet")
            order = (self._head - self._count + np.arange(self._count)) % self._capacity
            stamps = self._stamps[order]
            usable = int(np.searchsorted(stamps, end_ns, side="right"))
            if usable < self.window_size:
                return SensorWindowResult(None, int(stamps[usable - 1]) if usable else 0,
                                          f"sensor window has {usable}/{self.window_size} samples")
            idx = order[usable - self.window_size:usable]
            win_stamps = self._stamps[idx]
            rows = self._rows[idx].copy()
        newest = int(win_stamps[-1])
        age = (end_ns - newest) / 1e9
        if age > max_age:
            return SensorWindowResult(None, newest, f"sensor data {age * 1e3:.0f} ms old "
                                                    f"(max {max_age * 1e3:.0f} ms)")
        gaps = np.diff(win_stamps)
        if gaps.size and int(gaps.max()) > self.max_gap_ns:
            return SensorWindowResult(None, newest, f"sensor window has a {gaps.max() / 1e6:.1f} ms "
                                                    f"gap (max {self.max_gap_ns / 1e6:.1f} ms)")
        return SensorWindowResult(rows, newest, "")
