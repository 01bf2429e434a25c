"""Keep a node alive through an unexpected exception in one of its callbacks.

An exception escaping a callback stops rclpy's executor, which for the action node would mean
silently stopping the robot's command stream and for a bridge losing every later packet. Instead
the exception is counted (`callback_errors_<name>`), logged at most every few seconds, and the
callback returns: for the action node that means no chunk this tick, which is the safe outcome.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

from asyncvla_common.stats import Counters


def guarded(node: Any, counters: Counters, name: str, callback: Callable) -> Callable:
    @functools.wraps(callback)
    def wrapper(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - reported and counted
            counters.inc(f"callback_errors_{name}")
            node.get_logger().error(f"{name} callback failed: {type(exc).__name__}: {exc}",
                                    throttle_duration_sec=5.0)
            return None
    return wrapper
