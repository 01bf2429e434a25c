"""Why a tick published nothing: one enum, each reason with the severity it deserves.

A string category plus a separate list of "error" categories drifted apart; here each reason
carries its diagnostic level. `Refusal` is a `str` so counters, logs and tests read its value.
"""
from __future__ import annotations

import enum

from asyncvla_common.report import ERROR, OK, WARN


class Refusal(str, enum.Enum):
    """Tick outcome categories ("ok" is the published case)."""

    def __new__(cls, value: str, level: int) -> "Refusal":
        member = str.__new__(cls, value)
        member._value_ = value
        member.level = level
        return member

    OK = ("ok", OK)
    DISABLED = ("disabled", WARN)           # waiting for the operator's enable
    ESTOP = ("estop", ERROR)
    WATCHDOG = ("watchdog", ERROR)          # an input went silent
    VL_MISSING = ("vl_missing", ERROR)
    VL_STALE = ("vl_stale", ERROR)
    VL_FUTURE = ("vl_future", ERROR)
    SENSOR = ("sensor", WARN)               # the window is filling, has a gap, or is old
    ROBOT_STATE = ("robot_state", WARN)     # no state yet
    ROBOT_STATE_FUTURE = ("robot_state_future", ERROR)
    ROBOT_STATE_STALE = ("robot_state_stale", ERROR)
    POLICY_ERROR = ("policy_error", ERROR)
    POLICY_OUTPUT = ("policy_output", ERROR)
    GUARD = ("guard", ERROR)
    NO_INFERENCE = ("no_inference", WARN)   # timing thread: the first inference is still running
    INFERENCE_STALE = ("inference_stale", ERROR)  # the newest inference is too old to re-time

    def __str__(self) -> str:
        return self.value
