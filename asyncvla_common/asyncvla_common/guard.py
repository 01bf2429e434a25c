"""Keep a node alive through an unexpected exception in one of its callbacks.

An exception escaping a callback stops rclpy's executor, which for the action node would mean
silently stopping the robot's command stream and for a bridge losing every later packet. Instead
the exception is counted (`callback_errors_<name>`), logged at most every few seconds, and the
callback returns: for the action node that means no chunk this tick, which is the safe outcome.

Reporting must never raise either: rclpy's logger raises ``ValueError`` when one call site is used
with two severities or two throttle settings, so the report counts first and then logs inside its
own ``try``. `run_all` runs the steps of a safety callback independently, so that a failure in
one step (say, logging) cannot skip a later one (say, publishing the hold trajectory).
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Iterable

from asyncvla_common.stats import Counters


def report_error(node: Any, counters: Counters, name: str, exc: BaseException) -> None:
    """Count `callback_errors_<name>` and log it (throttled); never raises."""
    counters.inc(f"callback_errors_{name}")
    try:
        node.get_logger().error(f"{name} callback failed: {type(exc).__name__}: {exc}",
                                throttle_duration_sec=5.0)
    except Exception:  # noqa: BLE001 - the count above is the report that cannot fail
        pass


def guarded(node: Any, counters: Counters, name: str, callback: Callable) -> Callable:
    @functools.wraps(callback)
    def wrapper(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - reported and counted
            report_error(node, counters, name, exc)
            return None
    return wrapper


def run_all(steps: Iterable[tuple[str, Callable[[], object]]],
            on_error: Callable[[str, BaseException], None]) -> list[str]:
    """Run every step in order, even after one raised; return the names of the failed steps.

    ROS-free: `on_error(step_name, exception)` is the caller's report (see `report_error`); an
    exception from `on_error` itself is swallowed, as the remaining steps matter more.
    """
    failed = []
    for name, step in steps:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - each step is independent of the others
            failed.append(name)
            try:
                on_error(name, exc)
            except Exception:  # noqa: BLE001
                pass
    return failed
