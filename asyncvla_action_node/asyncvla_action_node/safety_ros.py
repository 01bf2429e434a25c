"""ROS side of the action node's safety layer: parameters, enable/e-stop topics, status topic.

The decisions live in ``safety.py`` (gate, watchdogs) and ``output_guard.py`` (limits); this
module declares their parameters and turns their state into ``asyncvla_msgs/SafetyStatus`` and a
/diagnostics report. Defaults are conservative for a needle on a small robot; every robot needs
its own limits in the YAML (``asyncvla_bringup/config``).
"""
from __future__ import annotations

import math
from typing import Any

from asyncvla_action_node.common.diagnostics import ERROR, OK, WARN, Report
from asyncvla_action_node.common.params import ParamSpec
from asyncvla_action_node.common.timeconv import ns_to_stamp
from asyncvla_action_node.output_guard import GUARD_MODES, GuardLimits
from asyncvla_action_node.safety import SafetyGate, SafetyState, WatchdogSet

PI = math.pi

#: Safety parameters of the action node (appended to ACTION_NODE_PARAMETERS).
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
                       callback_group: Any = None) -> None:
    """The latched enable and e-stop std_msgs/Bool subscriptions (topics from `p`)."""
    from std_msgs.msg import Bool

    from asyncvla_action_node.common import qos

    node.create_subscription(Bool, p["enable_topic"], on_enable, qos.LATCHED,
                             callback_group=callback_group)
    node.create_subscription(Bool, p["estop_topic"], on_estop, qos.LATCHED,
                             callback_group=callback_group)


def make_watchdogs(p: dict[str, Any]) -> WatchdogSet:
    dogs = WatchdogSet()
    for name, parameter in WATCHDOGS:
        dogs.add(name, p[parameter])
    return dogs


def fill_status(msg: Any, gate: SafetyGate | None, dogs: WatchdogSet, now: float, now_ns: int,
                output_allowed: bool, reason: str, published: int, withheld: int) -> Any:
    """Fill an asyncvla_msgs/SafetyStatus (``gate`` None: a node without an output gate)."""
    msg.header.stamp = ns_to_stamp(now_ns)
    if gate is None:
        msg.state, msg.state_name = msg.STATE_NOT_APPLICABLE, "NOT_APPLICABLE"
    else:
        msg.state, msg.state_name = int(gate.state), gate.state.name
    msg.output_allowed, msg.reason = bool(output_allowed), reason
    snapshot = dogs.snapshot(now)
    msg.input_names = [d.name for d in snapshot]
    msg.input_ages = [float(d.age(now)) for d in snapshot]
    msg.input_timeouts = [float(d.timeout) for d in snapshot]
    msg.input_ok = [not d.expired(now) for d in snapshot]
    msg.input_trips = [int(d.trips) for d in snapshot]
    msg.input_last_outage = [float(d.last_outage) for d in snapshot]
    msg.published, msg.withheld = int(published), int(withheld)
    return msg


def safety_report(gate: SafetyGate | None, dogs: WatchdogSet, now: float,
                  extra: dict[str, object]) -> Report:
    """The "safety" /diagnostics status: e-stop or a silent input ERROR, disabled WARN."""
    values: dict[str, object] = dict(extra)
    silent = []
    for dog in dogs.snapshot(now):
        values[f"{dog.name}.age_ms"] = round(dog.age(now) * 1e3, 1) if dog.last_seen else -1
        values[f"{dog.name}.timeout_ms"] = dog.timeout * 1e3
        values[f"{dog.name}.trips"] = dog.trips
        values[f"{dog.name}.last_outage_ms"] = round(dog.last_outage * 1e3, 1)
        if dog.expired(now):
            silent.append(dog.name)
    if gate is not None:
        values["state"] = gate.state.name
        values["last_change"] = gate.last_change_reason
        values["refused_enables"] = gate.refused_enables
    if gate is not None and gate.state == SafetyState.ESTOP:
        return Report(ERROR, f"E-STOP: {gate.last_change_reason}", values)
    if silent:
        return Report(ERROR, "input silent: " + dogs.describe(silent, now), values)
    if gate is not None and gate.state == SafetyState.DISABLED:
        return Report(WARN, f"disabled: {gate.last_change_reason}", values)
    return Report(OK, "enabled, all inputs alive" if gate is not None else "all inputs alive",
                  values)
