"""Declare ROS parameters with descriptors, from module-level tables.

Every node parameter carries a description (what `ros2 param describe` shows), a type and, where
it makes sense, a range; read-only ones cannot be changed after start-up.

Each node module holds its parameters as a tuple of `ParamSpec` (e.g. `ACTION_NODE_PARAMETERS`),
so tools and tests (launch files, parameter YAML checks) can read names, defaults, types and
ranges without starting a node; the node declares them with `declare_all`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter


@dataclass(frozen=True)
class ParamSpec:
    """One node parameter: what `declare` gets, as data."""

    name: str
    default: Any
    description: str
    read_only: bool = False
    min_value: float | int | None = None
    max_value: float | int | None = None
    #: Typed declaration without a value (an empty list, whose type rclpy cannot infer).
    param_type: Parameter.Type | None = None
    #: Default computed from the values declared before this one (by name); `default` is what
    #: it gives when those keep their own defaults.
    default_from: Callable[[dict[str, Any]], Any] | None = None

    @property
    def type(self) -> Parameter.Type:
        """The ROS parameter type (from `param_type`, else inferred from the default)."""
        if self.param_type is not None:
            return self.param_type
        return Parameter.Type.from_parameter_value(self.default)


def declare_all(node: Node, specs: Iterable[ParamSpec]) -> dict[str, Any]:
    """Declare every spec in order; return {name: value (possibly overridden)}."""
    values: dict[str, Any] = {}
    for spec in specs:
        default = spec.default if spec.default_from is None else spec.default_from(values)
        values[spec.name] = declare(node, spec.name, default, spec.description,
                                    read_only=spec.read_only, min_value=spec.min_value,
                                    max_value=spec.max_value, param_type=spec.param_type)
    return values


def spec_table(specs: Iterable[ParamSpec]) -> dict[str, ParamSpec]:
    """{name: spec}; raise ValueError on a duplicate name."""
    table: dict[str, ParamSpec] = {}
    for spec in specs:
        if spec.name in table:
            raise ValueError(f"parameter {spec.name!r} is declared twice")
        table[spec.name] = spec
    return table


def select_specs(table: Iterable[ParamSpec], names: Iterable[str]) -> tuple[ParamSpec, ...]:
    """The specs named `names` from another node's table: one definition of a shared knob
    (KeyError names a missing one)."""
    by_name = {s.name: s for s in table}
    return tuple(by_name[n] for n in names)


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
