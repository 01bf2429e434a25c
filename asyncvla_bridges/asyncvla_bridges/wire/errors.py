"""The one exception every wire parser raises, carrying a short reason for drop counters."""
from __future__ import annotations


class WireError(ValueError):
    """Input that does not follow the wire format.

    `reason` is a short stable token (e.g. "size", "json") that the bridges use as the key of their
    drop counters in /diagnostics, so a reason must never contain the offending data itself;
    `detail` is the human-readable explanation for (throttled) logs.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
