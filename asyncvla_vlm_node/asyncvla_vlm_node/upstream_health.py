"""What the node that feeds us says about itself, to explain why our input went silent.

Why: when a view goes silent the VLM node can only say "camera silent", but the camera bridge
often knows why (waiting for the Jetson, dropping every frame for an unknown camera name, a clock
that has not locked). The bridge reports that on /diagnostics; this keeps its newest non-OK
report so the VLM node's own message can point at the cause. ROS-free: the node feeds it the
statuses of /diagnostics and asks `explain()`.
"""
from __future__ import annotations

import threading

from asyncvla_common.report import LEVEL_NAMES


class UpstreamHealth:
    """The newest report of one upstream node (statuses named ``"<node>: ..."``)."""

    def __init__(self, node_name: str, max_age: float = 5.0) -> None:
        self.node_name = node_name
        self.max_age = max_age
        self._lock = threading.Lock()
        self._latest: tuple[float, int, str, str] | None = None  # (time, level, name, message)

    def watches(self, status_name: str) -> bool:
        """True for a status published by the watched node (its name without a namespace)."""
        node = status_name.split(":", 1)[0].strip()
        return bool(self.node_name) and node.rsplit("/", 1)[-1] == self.node_name

    def report(self, status_name: str, level: int, message: str, now: float) -> None:
        if self.watches(status_name):
            with self._lock:
                self._latest = (now, int(level), status_name, message)

    def explain(self, now: float) -> str:
        """" (<node> reports ERROR: <message>)" while its newest recent report is not OK."""
        with self._lock:
            latest = self._latest
        if latest is None:
            return ""
        when, level, name, message = latest
        if level == 0 or now - when > self.max_age:
            return ""
        label = LEVEL_NAMES[level] if 0 <= level < len(LEVEL_NAMES) else str(level)
        return f" ({name} reports {label}: {message})"
