"""Turn any generated ROS message into plain Python data, so two processes can compare messages."""
from __future__ import annotations

from typing import Any


def to_plain(value: Any) -> Any:
    """Recursively convert a message (or field value) into dicts, lists and scalars."""
    if hasattr(value, "get_fields_and_field_types"):
        return {name: to_plain(getattr(value, name)) for name in value.get_fields_and_field_types()}
    if isinstance(value, (bytes, bytearray)):
        return list(value)
    if hasattr(value, "tolist"):  # numpy arrays and array.array
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value
