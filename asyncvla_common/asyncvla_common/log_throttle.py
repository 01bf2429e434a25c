"""At most one status line per period: a 100 Hz loop must not flood the log with the same line."""
from __future__ import annotations

import time
from typing import Any


class LogThrottle:
    """Call with a line; it reaches `logger` at most every `period` s (monotonic), unless forced
    (a state change worth a line of its own)."""

    def __init__(self, logger: Any, period: float) -> None:
        self._logger, self.period = logger, period
        self._last = -float("inf")

    def __call__(self, text: str, warn: bool = False, force: bool = False) -> bool:
        now = time.monotonic()
        if not force and now - self._last < self.period:
            return False
        self._last = now
        # rclpy requires one severity per call site, hence two calls.
        if warn:
            self._logger.warning(text)
        else:
            self._logger.info(text)
        return True
