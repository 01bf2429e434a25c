"""The ROS side of the safety inputs of the nodes that move a robot (the action node, the
executor, the Meca500 driver): the operator subscriptions, the topic's publishers as the graph
shows them, the watchdog set.

Their parameters (topics, timeouts, guard limits) are `node_config`'s groups. The decisions live
in ``asyncvla_common.safety`` (gate, watchdogs), ``operator_inputs.py`` (who may resume) and
``asyncvla_core.output_guard`` (limits); ``asyncvla_common.safety_status`` turns their state into
``asyncvla_msgs/SafetyStatus`` and a /diagnostics report.
"""
from __future__ import annotations

from typing import Any, Protocol

from asyncvla_common.report import Report
from asyncvla_common.safety import WatchdogSet

#: Input watchdogs, in SafetyStatus order (their timeouts: the node's config).
WATCHDOG_NAMES = ("vl_features", "sensor", "joint_states", "ee_pose")


def subscribe_operator(node: Any, topics: dict[str, str], on_enable: Any, on_estop: Any,
                       callback_group: Any = None) -> dict[str, Any]:
    """The latched enable and e-stop std_msgs/Bool subscriptions ({"enable": topic, "estop":
    topic}), by name: the node reads each one's publishers (`publishers_on`) for
    `OperatorInputs.admit`."""
    from std_msgs.msg import Bool

    from asyncvla_common import qos

    return {name: node.create_subscription(Bool, topics[name], callback, qos.LATCHED,
                                           callback_group=callback_group)
            for name, callback in (("enable", on_enable), ("estop", on_estop))}


def make_watchdogs(timeouts: dict[str, float]) -> WatchdogSet:
    """A WatchdogSet with one watchdog per {name: timeout (s, 0 = off)}, in that order."""
    dogs = WatchdogSet()
    for name, timeout in timeouts.items():
        dogs.add(name, timeout)
    return dogs


#: The node name and namespace the ROS graph (rmw_dds_common) gives a writer whose participant's
#: node list has not been discovered yet. Such a writer is unnamed, not a node of that name: a
#: lock taken on it would refuse the real node, once named, as "another publisher" for good.
UNKNOWN_NODE_NAME = "_NODE_NAME_UNKNOWN_"
UNKNOWN_NODE_NAMESPACE = "_NODE_NAMESPACE_UNKNOWN_"


def publishers_on(node: Any, subscription: Any) -> dict[str, Any]:
    """The topic's publishers as PublisherLock takes them: node names and graph ids of the
    writers (from the graph), and the DDS writers matched to `subscription`. A writer the graph
    cannot name yet is left out of the names (PublisherLock counts it as unnamed) but keeps its
    graph id."""
    infos = node.get_publishers_info_by_topic(subscription.topic_name)
    named = [i for i in infos
             if i.node_name != UNKNOWN_NODE_NAME and i.node_namespace != UNKNOWN_NODE_NAMESPACE]
    return {"publishers": [f"{i.node_namespace.rstrip('/')}/{i.node_name}" for i in named],
            "writer_ids": tuple(bytes(i.endpoint_gid) for i in infos),
            "matched": subscription.get_publisher_count(),
            "now_ns": node.get_clock().now().nanoseconds}


def operator_graphs(node: Any, subscriptions: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`publishers_on` for each operator subscription (as `subscribe_operator` returns them)."""
    return {name: publishers_on(node, sub) for name, sub in subscriptions.items()}


class Refusals(Protocol):
    """What `worse` reads of a refusals status (RejectionStatus, PublisherVerdict)."""

    level: int
    message: str


def worse(report: Report, refusals: Refusals | None) -> Report:
    """`report` at the worse of its level and the refusals' (repeated refusals: WARN, then
    ERROR; a second publisher: ERROR), its message naming the refusals too: "VL features stale"
    alone hides the cause when features arrive and are refused."""
    if refusals is None or refusals.level == 0:
        return report
    if refusals.level > report.level:
        return Report(refusals.level, refusals.message, report.values)
    return Report(report.level, f"{report.message}; {refusals.message}", report.values)
