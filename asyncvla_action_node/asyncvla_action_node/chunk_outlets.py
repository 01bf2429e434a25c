"""Where a tick's messages go out (ROS glue): at once from the node, or at the deadline from the
publisher process. A registry keyed by `timing.tick_source`, so the node never branches on the
design.

* `DirectOutlet` (`timing_thread`): the node's own publishers, from the thread that ticked.
* `ProcessOutlet` (`publisher_process`): the messages are serialised here, in the node, and
  handed with their deadline to `publisher_process.PublisherProcess`, whose child publishes
  them at the deadline on the same topics with the same QoS. The node then owns no chunk
  publisher (one writer on the action topic: the child). A hold is published at once by the
  node's trajectory publisher and sent through the child too: that cancels an offer prepared
  before it and is published after it, so the last word on the topic is always the hold.
"""
from __future__ import annotations

import sys
from typing import Callable

from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.serialization import serialize_message

from asyncvla_action_node.publish_handoff import dropped_total, publisher_report
from asyncvla_action_node.publisher_process import PublisherProcess
from asyncvla_common.report import Report

#: Seconds the node waits for its publisher process at start-up (rclpy's import and DDS).
PROCESS_READY_TIMEOUT_S = 60.0


def message_type_name(cls: type) -> str:
    """The `pkg/msg/Type` name of a generated message class."""
    return f"{cls.__module__.split('.')[0]}/msg/{cls.__name__}"


def enclave_args(argv: list[str]) -> list[str]:
    """The `--enclave` of the node's own ROS arguments, for its child (SROS2)."""
    for i, arg in enumerate(argv[:-1]):
        if arg in ("--enclave", "-e") and "--ros-args" in argv[:i]:
            return ["--enclave", argv[i + 1]]
    return []


class DirectOutlet:
    """Publish from the calling thread, now."""

    def __init__(self, node: Node, outlets: list[tuple[type, str]], qos, **_) -> None:
        self.publishers: list[Publisher] = [node.create_publisher(cls, topic, qos)
                                            for cls, topic in outlets]
        self.note = "published by the tick's thread"

    def publish(self, messages: list[tuple[int, object]], deadline_ns: int) -> None:
        for index, msg in messages:
            self.publishers[index].publish(msg)

    def hold(self, messages: list[tuple[int, object]]) -> None:
        self.publish(messages, 0)

    def report(self) -> Report | None:
        return None

    def stop(self) -> None:
        pass


class ProcessOutlet:
    """Hand each tick's serialised messages to the publisher process (see the module doc)."""

    def __init__(self, node: Node, outlets: list[tuple[type, str]], qos, qos_name: str,
                 priority: int, max_late_s: float, hold_outlets: set[int],
                 argv: list[str] | None = None) -> None:
        # The node keeps a publisher only where it publishes itself: the hold's topic.
        self.publishers: dict[int, Publisher] = {
            i: node.create_publisher(cls, topic, qos)
            for i, (cls, topic) in enumerate(outlets) if i in hold_outlets}
        resolved = [(message_type_name(cls), node.resolve_topic_name(topic))
                    for cls, topic in outlets]
        # One above the tick thread (0 stays 0): the publication is the punctual part; the tick
        # has its lead, and must not delay a publication it has already handed over.
        self.process = PublisherProcess(resolved, node.get_name(), node.get_namespace(),
                                        qos_name, min(99, priority + 1) if priority else 0,
                                        max_late_s,
                                        enclave_args(sys.argv if argv is None else argv))
        self.note = "publisher process: " + self.process.wait_ready(PROCESS_READY_TIMEOUT_S)
        self._dropped_reported = 0
        self._logger = node.get_logger()

    def publish(self, messages: list[tuple[int, object]], deadline_ns: int) -> None:
        if not self.process.offer(deadline_ns, [(i, serialize_message(m)) for i, m in messages]):
            self._logger.error(
                "publisher process " + ("exited " + self.process.exit_note()
                                        if not self.process.alive() else "is not keeping up")
                + ": this tick's chunk reaches no topic", throttle_duration_sec=2.0)

    def hold(self, messages: list[tuple[int, object]]) -> None:
        """Publish the hold at once, and send it (or, with none, a bare cancel) to the child."""
        for index, msg in messages:
            self.publishers[index].publish(msg)
        self.process.hold([(i, serialize_message(m)) for i, m in messages])

    def report(self) -> Report | None:
        counts = self.process.poll_stats()
        report = publisher_report(counts, self.process.alive(), self.process.exit_note(),
                                  self._dropped_reported)
        self._dropped_reported = dropped_total(counts)
        return report

    def stop(self) -> None:
        self.process.stop()


#: `timing.tick_source` -> how its messages go out.
OUTLETS: dict[str, Callable[..., DirectOutlet | ProcessOutlet]] = {
    "timing_thread": DirectOutlet, "publisher_process": ProcessOutlet}
