"""The safety parameters of the nodes that move a robot (the action node, the executor, the
Meca500 driver): enable/e-stop topics, watchdog timeouts, guard limits; and the ROS side of their
operator inputs (subscriptions, the topic's publishers as the graph shows them).

The decisions live in ``asyncvla_common.safety`` (gate, watchdogs), ``operator_inputs.py`` (who
may resume) and ``asyncvla_core.output_guard`` (limits); ``asyncvla_common.safety_status`` turns
their state into ``asyncvla_msgs/SafetyStatus`` and a /diagnostics report. Defaults are
conservative for a needle on a small robot; every robot needs its own limits in the YAML
(``asyncvla_bringup/config``).
"""
from __future__ import annotations

import math
from typing import Any, Protocol

from asyncvla_common.params import ParamSpec
from asyncvla_common.report import Report
from asyncvla_common.safety import WatchdogSet
from asyncvla_core.output_guard import GUARD_MODES, GuardLimits

PI = math.pi

#: The safety parameters: the action node declares all of them (after its own), the executor
#: and the Meca500 driver take theirs by name.
SAFETY_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("enabled_at_start", False, "Start ENABLED instead of waiting for True on the "
              "enable topic (tests and bag replay only; a robot should start disabled)",
              read_only=True),
    ParamSpec("enable_topic", "/asyncvla/enable", "std_msgs/Bool enable input (latched: "
              "reliable, transient local)", read_only=True),
    ParamSpec("estop_topic", "/asyncvla/estop", "std_msgs/Bool e-stop input (True = stop; "
              "latched until False, then enable again)", read_only=True),
    ParamSpec("estop_timeout", 0.0, "If > 0, the e-stop topic is a heartbeat: no message for "
              "this long (s) counts as a pressed e-stop", read_only=True, min_value=0.0),
    ParamSpec("safety_status_topic", "~/safety_status", "asyncvla_msgs/SafetyStatus output "
              "(latched; on change and every diagnostics_period)", read_only=True),
    ParamSpec("vl_timeout", 1.5, "Heartbeat: longest silence (s) of accepted VL features "
              "before output stops (0 = off)", read_only=True, min_value=0.0),
    ParamSpec("sensor_timeout", 0.1, "Heartbeat: longest silence (s) of accepted sensor "
              "batches (0 = off)", read_only=True, min_value=0.0),
    ParamSpec("robot_state_timeout", 0.1, "Heartbeat: longest silence (s) of valid joint "
              "states and of valid EE poses (0 = off)", read_only=True, min_value=0.0),
    ParamSpec("guard_mode", "withhold", f"What the output guard does on a violation: "
              f"{GUARD_MODES} (always counted and reported)", read_only=True),
    ParamSpec("joint_position_min", [-PI] * 6, "Lower joint limits (rad), joint_names order",
              read_only=True),
    ParamSpec("joint_position_max", [PI] * 6, "Upper joint limits (rad), joint_names order",
              read_only=True),
    ParamSpec("max_joint_step", 0.05, "Largest joint change (rad) per chunk step (0 = off)",
              read_only=True, min_value=0.0),
    ParamSpec("max_joint_velocity", 0.5, "Largest joint velocity (rad/s) between steps "
              "(0 = off)", read_only=True, min_value=0.0),
    ParamSpec("max_linear_step", 0.005, "Largest EE translation (m) per chunk step (0 = off)",
              read_only=True, min_value=0.0),
    ParamSpec("max_linear_velocity", 0.05, "Largest EE speed (m/s) between steps (0 = off)",
              read_only=True, min_value=0.0),
    ParamSpec("max_angular_step", 0.05, "Largest EE rotation (rad) per chunk step (0 = off)",
              read_only=True, min_value=0.0),
    ParamSpec("max_angular_velocity", 0.5, "Largest EE angular speed (rad/s) between steps "
              "(0 = off)", read_only=True, min_value=0.0),
    ParamSpec("workspace_min", [-1.0, -1.0, -0.2], "Workspace box lower corner (m, base "
              "frame x y z)", read_only=True),
    ParamSpec("workspace_max", [1.0, 1.0, 1.2], "Workspace box upper corner (m, base frame "
              "x y z)", read_only=True),
    ParamSpec("max_jump_joint", 0.05, "Largest difference (rad) from the previous chunk's "
              "target at the same time (0 = off)", read_only=True, min_value=0.0),
    ParamSpec("max_jump_linear", 0.005, "Largest difference (m) from the previous chunk's EE "
              "target at the same time (0 = off)", read_only=True, min_value=0.0),
    ParamSpec("max_jump_angular", 0.05, "Largest rotation (rad) from the previous chunk's EE "
              "target at the same time (0 = off)", read_only=True, min_value=0.0),
)

#: Input watchdogs, in SafetyStatus order: (name, the parameter holding its timeout).
WATCHDOGS = (("vl_features", "vl_timeout"), ("sensor", "sensor_timeout"),
             ("joint_states", "robot_state_timeout"), ("ee_pose", "robot_state_timeout"))


def guard_limits(p: dict[str, Any]) -> GuardLimits:
    """GuardLimits from declared parameter values (ValueError names the bad parameter)."""
    return GuardLimits(
        mode=p["guard_mode"],
        joint_min=tuple(float(v) for v in p["joint_position_min"]),
        joint_max=tuple(float(v) for v in p["joint_position_max"]),
        max_joint_step=p["max_joint_step"], max_joint_velocity=p["max_joint_velocity"],
        max_linear_step=p["max_linear_step"], max_linear_velocity=p["max_linear_velocity"],
        max_angular_step=p["max_angular_step"], max_angular_velocity=p["max_angular_velocity"],
        workspace_min=tuple(float(v) for v in p["workspace_min"]),
        workspace_max=tuple(float(v) for v in p["workspace_max"]),
        max_jump_joint=p["max_jump_joint"], max_jump_linear=p["max_jump_linear"],
        max_jump_angular=p["max_jump_angular"])


def subscribe_operator(node: Any, p: dict[str, Any], on_enable: Any, on_estop: Any,
                       callback_group: Any = None) -> dict[str, Any]:
    """The latched enable and e-stop std_msgs/Bool subscriptions (topics from `p`), by name:
    the node reads each one's publishers (`publishers_on`) for `OperatorInputs.admit`."""
    from std_msgs.msg import Bool

    from asyncvla_common import qos

    return {name: node.create_subscription(Bool, p[f"{name}_topic"], callback, qos.LATCHED,
                                           callback_group=callback_group)
            for name, callback in (("enable", on_enable), ("estop", on_estop))}


def make_watchdogs(p: dict[str, Any]) -> WatchdogSet:
    dogs = WatchdogSet()
    for name, parameter in WATCHDOGS:
        dogs.add(name, p[parameter])
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
