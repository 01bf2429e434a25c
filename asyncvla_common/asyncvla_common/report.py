"""A status report (level, message, key/values): what /diagnostics carries, without ROS.

The decisions that produce reports live in ROS-free modules and are unit-tested; only
`diagnostics.DiagnosticsPublisher` turns reports into diagnostic_msgs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# Levels as ints (the message stores them as a 1-byte `bytes`): ints compare and sort.
OK, WARN, ERROR, STALE = 0, 1, 2, 3
LEVEL_NAMES = ("OK", "WARN", "ERROR", "STALE")  # indexed by level


@dataclass
class Report:
    """What one status says right now."""

    level: int
    message: str
    values: dict[str, object] = field(default_factory=dict)
