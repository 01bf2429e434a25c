"""Declare ROS parameters with descriptors in one line each.

Every node parameter carries a description (what `ros2 param describe` shows), a type and, where
it makes sense, a range; read-only ones cannot be changed after start-up.
"""
from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter


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
