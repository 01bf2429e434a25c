"""Publish /diagnostics (diagnostic_msgs/DiagnosticArray) without diagnostic_updater.

diagnostic_updater is not installable from the registries this project builds on, and what the
nodes need is small: each node reports a few named statuses, each with a level, a message and
key/value pairs, at a fixed period (1 Hz by default) and at once when a level gets worse.
"""
from __future__ import annotations

from typing import Callable

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

from .report import ERROR, OK, Report


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class DiagnosticsPublisher:
    """Calls each registered status function and publishes the results as one DiagnosticArray."""

    def __init__(self, node: Node, hardware_id: str = "", period: float = 1.0) -> None:
        self._node = node
        self._hardware_id = hardware_id or node.get_fully_qualified_name()
        self._pub = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._tasks: list[tuple[str, Callable[[], Report]]] = []
        self._last_levels: dict[str, int] = {}
        self._timer = node.create_timer(period, self.publish)

    def add(self, name: str, task: Callable[[], Report]) -> None:
        self._tasks.append((name, task))

    def publish(self) -> list[DiagnosticStatus]:
        array = DiagnosticArray()
        array.header.stamp = self._node.get_clock().now().to_msg()
        prefix = self._node.get_name()
        for name, task in self._tasks:
            try:
                report = task()
            except Exception as exc:  # a broken status function must not stop diagnostics
                report = Report(ERROR, f"status function failed: {exc!r}")
            status = DiagnosticStatus(level=bytes([report.level]), name=f"{prefix}: {name}",
                                      message=report.message, hardware_id=self._hardware_id)
            status.values = [KeyValue(key=k, value=_format(v)) for k, v in report.values.items()]
            array.status.append(status)
            self._last_levels[name] = report.level
        self._pub.publish(array)
        return array.status

    def publish_now_if_worse(self, name: str, level: int) -> None:
        """Publish immediately when `name` gets worse than last published (e.g. OK -> ERROR)."""
        if level > self._last_levels.get(name, OK):
            self.publish()
