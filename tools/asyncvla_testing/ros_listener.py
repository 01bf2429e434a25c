"""An in-process ROS subscriber for integration tests: collect messages, read /diagnostics.

Why in the test process: the test then holds the received message objects themselves and can
check every field against what its wire peer sent, with no JSON round trip. Each listener owns a
private rclpy Context (initialised with the test's domain id, no signal handlers) and spins it in
a background thread, so tests never share or leak global rclpy state.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

import rclpy
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

RELIABLE_DEEP = QoSProfile(depth=10000, history=HistoryPolicy.KEEP_LAST,
                           reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.VOLATILE)


class Inbox:
    """Messages received on one topic, in arrival order, with their receive times (wall clock,
    ``time.time()``), thread-safe."""

    def __init__(self) -> None:
        self._msgs: list[Any] = []
        self._times: list[float] = []
        self._cond = threading.Condition()

    def _put(self, msg: Any) -> None:
        with self._cond:
            self._msgs.append(msg)
            self._times.append(time.time())
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._msgs)

    def snapshot(self) -> list[Any]:
        with self._cond:
            return list(self._msgs)

    def timed(self) -> list[tuple[float, Any]]:
        """(receive time, message) of every message so far."""
        with self._cond:
            return list(zip(self._times, self._msgs))

    def clear(self) -> None:
        with self._cond:
            self._msgs.clear()
            self._times.clear()

    def wait_for(self, count: int, timeout: float) -> list[Any]:
        """All messages once at least `count` arrived; raise TimeoutError otherwise."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._msgs) >= count, timeout):
                raise TimeoutError(f"{len(self._msgs)} of {count} messages within {timeout} s")
            return list(self._msgs)


class RosListener:
    """Subscribe to topics given up front, spin in the background, close cleanly."""

    def __init__(self, domain_id: int, topics: dict[str, type],
                 name: str = "test_listener", qos: QoSProfile = RELIABLE_DEEP) -> None:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id,
                   signal_handler_options=SignalHandlerOptions.NO)
        self.node = Node(name, context=self.context)
        self.inboxes: dict[str, Inbox] = {}
        for topic, msg_type in topics.items():
            inbox = Inbox()
            self.node.create_subscription(msg_type, topic, inbox._put, qos)
            self.inboxes[topic] = inbox
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self._executor.spin_once(timeout_sec=0.05)
            except (ExternalShutdownException, rclpy.executors.ShutdownException):
                return
            except Exception:  # noqa: BLE001 - context torn down under the executor
                if not self.context.ok():
                    return
                raise

    def publisher(self, topic: str, msg_type: type, qos: QoSProfile) -> Any:
        """A publisher on the listener's node (e.g. an operator's enable / e-stop topics)."""
        return self.node.create_publisher(msg_type, topic, qos)

    def __getitem__(self, topic: str) -> Inbox:
        return self.inboxes[topic]

    def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        wait_until(predicate, timeout, what, poll=0.02)

    def close(self) -> None:
        self.context.try_shutdown()
        self._thread.join(5.0)
        self._executor.shutdown()
        self.node.destroy_node()

    def __enter__(self) -> "RosListener":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def diagnostic_values(array_msg: Any, name_suffix: str) -> dict[str, str] | None:
    """Key/values of the status whose name ends with `name_suffix` in a DiagnosticArray."""
    for status in array_msg.status:
        if status.name.endswith(name_suffix):
            values = {kv.key: kv.value for kv in status.values}
            values["_level"] = str(status.level[0] if isinstance(status.level, bytes)
                                   else status.level)
            values["_message"] = status.message
            return values
    return None


def wait_until(predicate: Callable[[], bool], timeout: float, what: str,
               poll: float = 0.02) -> None:
    """Poll `predicate` every `poll` s; TimeoutError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout} s: {what}")
        time.sleep(poll)
