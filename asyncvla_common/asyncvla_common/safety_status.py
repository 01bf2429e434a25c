"""A node's safety state as asyncvla_msgs/SafetyStatus and as its "safety" /diagnostics status.

Shared by the action node (gate + input watchdogs) and the VLM node (camera watchdogs, no gate):
the decisions live in ``safety.py``; this only reports them.
"""
from __future__ import annotations

from typing import Any

from asyncvla_common.report import ERROR, OK, WARN, Report
from asyncvla_common.safety import SafetyGate, SafetyState, WatchdogSet
from asyncvla_common.timeconv import ns_to_stamp


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
                  extra: dict[str, object], notes: dict[str, str] | None = None) -> Report:
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
        return Report(ERROR, "input silent: " + dogs.describe(silent, now, notes), values)
    if gate is not None and gate.state == SafetyState.DISABLED:
        return Report(WARN, f"disabled: {gate.last_change_reason}", values)
    return Report(OK, "enabled, all inputs alive" if gate is not None else "all inputs alive",
                  values)
