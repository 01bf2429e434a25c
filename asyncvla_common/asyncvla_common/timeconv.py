"""Conversions between builtin_interfaces/Time and integer nanoseconds / float seconds."""
from __future__ import annotations

from builtin_interfaces.msg import Time

NS_PER_S = 1_000_000_000


def stamp_to_ns(stamp: Time) -> int:
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    sec, nanosec = divmod(int(ns), NS_PER_S)
    return Time(sec=sec, nanosec=nanosec)


def seconds_to_stamp(seconds: float) -> Time:
    return ns_to_stamp(round(seconds * NS_PER_S))
