"""Declare ROS parameters with descriptors, from specs (the rclpy side of `param_spec`).

Every node parameter carries a description (what `ros2 param describe` shows), a type and, where
it makes sense, a range; read-only ones cannot be changed after start-up.

The specs are ROS-free data (`param_spec.ParamSpec`; a node's typed config dataclass lists
them), so tools and tests (launch files, parameter YAML checks) read names, defaults, types and
ranges without starting a node; the node declares them with `declare_config` (a typed config)
or `declare_all` (a flat table).
"""
from __future__ import annotations

from typing import Any, Iterable, TypeVar

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from asyncvla_common.param_spec import (ParamSpec, build_config, flat_specs, old_name_problems,
                                        old_names, select_specs, spec_table)

__all__ = ["ParamSpec", "declare", "declare_all", "declare_config", "refuse_old_names",
           "select_specs", "spec_table"]

C = TypeVar("C")


def declare_all(node: Node, specs: Iterable[ParamSpec]) -> dict[str, Any]:
    """Declare every spec in order; return {name: value (possibly overridden)}."""
    values: dict[str, Any] = {}
    for spec in specs:
        default = spec.default if spec.default_from is None else spec.default_from(values)
        values[spec.name] = declare(node, spec.name, default, spec.description,
                                    read_only=spec.read_only, min_value=spec.min_value,
                                    max_value=spec.max_value,
                                    param_type=(Parameter.Type[spec.param_type]
                                                if spec.param_type else None))
    return values


def declare_config(node: Node, cls: type[C], extra_old: dict[str, str] | None = None) -> C:
    """Declare every parameter of config class `cls` (dotted names, descriptors, ranges) and
    return the typed config built from their values. A replaced name given to the node (its
    fields' `was`, or `extra_old`) stops it first: ValueError with the one-line message."""
    refuse_old_names(node, {**old_names(cls), **(extra_old or {})})
    return build_config(cls, declare_all(node, flat_specs(cls)))


def refuse_old_names(node: Node, replaced: dict[str, str]) -> None:
    """ValueError naming the new parameter when an override (YAML, -p, launch) sets a replaced
    one: rclpy keeps overrides nobody declares and ignores them, which would silently run the
    default. rclpy has no public accessor for the overrides, hence `_parameter_overrides`."""
    given = getattr(node, "_parameter_overrides", {}) or {}
    problems = old_name_problems(sorted(given), replaced)
    if problems:
        raise ValueError(problems[0] + (f" (and {len(problems) - 1} more)"
                                        if len(problems) > 1 else ""))


def declare(node: Node, name: str, default: Any, description: str, *, read_only: bool = False,
            min_value: float | int | None = None, max_value: float | int | None = None,
            param_type: Parameter.Type | None = None) -> Any:
    """Declare `name` with a descriptor and return its (possibly overridden) value."""
    descriptor = ParameterDescriptor(description=description, read_only=read_only)
    if min_value is not None or max_value is not None:
        if isinstance(default, bool):
            raise ValueError(f"parameter {name}: a boolean has no range")
        if isinstance(default, int):
            descriptor.integer_range = [IntegerRange(
                from_value=int(min_value if min_value is not None else -2**31),
                to_value=int(max_value if max_value is not None else 2**31 - 1), step=0)]
        else:
            descriptor.floating_point_range = [FloatingPointRange(
                from_value=float(min_value if min_value is not None else -1e300),
                to_value=float(max_value if max_value is not None else 1e300), step=0.0)]
    if param_type is not None:
        # Typed declaration without a value (e.g. an empty list, whose type rclpy cannot infer):
        # the parameter stays uninitialized unless overridden, and reading it raises.
        declared = node.declare_parameter(name, param_type, descriptor)
        try:
            value = declared.value
        except ParameterUninitializedException:
            value = None
        return default if value is None else value
    return node.declare_parameter(name, default, descriptor).value
