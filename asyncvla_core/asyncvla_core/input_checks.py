"""Checks on an incoming message before it may touch any store (ROS-free).

Why before: a store keeps order (VL features and sensor samples must not go back in time), so a
message that passed into it becomes the reference the next ones are compared with. One message
stamped an hour ahead once made every later, correct message "older than the one held" and stopped
the robot for good. Anything stamped further in the future than ``max_future_stamp`` is therefore
refused at arrival, counted, and never becomes a reference.
"""
from __future__ import annotations

NS_PER_S = 1_000_000_000

#: Bytes of a serialized VLFeatures beyond its payload that are accepted: the header, view names
#: and stamps, prompt, ids and CDR padding (a real message has a few hundred).
VL_MESSAGE_SLACK = 64 * 1024
#: The widest payload element (float32).
MAX_ITEM_SIZE = 4


def future_stamp_reason(stamp_ns: int, now_ns: int, max_future_s: float) -> str:
    """"" when `stamp_ns` is at most `max_future_s` ahead of `now_ns`, else why it is refused."""
    ahead_ns = stamp_ns - now_ns
    if ahead_ns <= max_future_s * NS_PER_S:
        return ""
    return (f"stamped {_duration(ahead_ns)} in the future "
            f"(max_future_stamp {max_future_s * 1e3:.0f} ms; a clock step or a bad sender)")


def _duration(ns: int) -> str:
    seconds = ns / NS_PER_S
    return f"{seconds * 1e3:.0f} ms" if seconds < 10 else f"{seconds:.0f} s"


def vl_message_budget(num_tokens: int, feature_dim: int) -> int:
    """Largest serialized VLFeatures (bytes) that can hold the features this node expects."""
    return num_tokens * feature_dim * MAX_ITEM_SIZE + VL_MESSAGE_SLACK


def oversize_reason(size: int, budget: int, what: str) -> str:
    """"" when `size` bytes fit `budget`, else why the message is refused (before any copy)."""
    if size <= budget:
        return ""
    return (f"{what} of {size / 1e6:.1f} MB refused before deserialization: the expected "
            f"features fit in {budget / 1e6:.2f} MB")


def sensor_batch_size_reason(num_samples: int, max_samples: int) -> str:
    """"" when a ForceOctBatch is no larger than the sensor buffer, else why it is refused."""
    if 0 <= num_samples <= max_samples:
        return ""
    return (f"batch of {num_samples} samples refused: more than the sensor buffer holds "
            f"({max_samples})")
