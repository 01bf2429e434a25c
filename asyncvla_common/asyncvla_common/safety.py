"""Enable / e-stop state and heartbeat watchdogs: may anything leave the action node right now?

Why separate from the tick: these are the operator's and the wiring's say, independent of what the
model computes. The rules (fail closed):

* The node starts DISABLED unless ``enabled_at_start``; an ``enable`` message ``True`` enables it,
  ``False`` disables it.
* An e-stop message ``True`` stops output at once (ESTOP). It latches: clearing the e-stop
  (``False``) brings the node back to DISABLED, never straight to ENABLED; a fresh enable
  ``True`` is needed afterwards. An enable received while the e-stop is active is refused.
* With ``estop_timeout > 0`` the e-stop input is a heartbeat: no e-stop message for that long
  counts as an active e-stop (a dead e-stop link must not leave the robot running).
* Every input has a watchdog on message *arrival* (monotonic time, so stamps and clock jumps do
  not fool it). An input silent for longer than its timeout blocks output; when it comes back the
  watchdog recovers by itself and reports how long the outage lasted.

Times are monotonic seconds (``time.monotonic()``), passed in so tests can drive them.
"""
from __future__ import annotations

import dataclasses
import enum
import threading
from dataclasses import dataclass


class SafetyState(enum.IntEnum):
    """Values match asyncvla_msgs/SafetyStatus STATE_* constants."""

    DISABLED = 0
    ENABLED = 1
    ESTOP = 2


@dataclass
class Watchdog:
    name: str
    timeout: float  # s; <= 0 disables the watchdog
    last_seen: float | None = None
    tripped: bool = False
    trips: int = 0
    last_outage: float = 0.0  # s, arrival gap of the last recovered outage

    def age(self, now: float) -> float:
        """Seconds since the last message; -1 before the first one."""
        return -1.0 if self.last_seen is None else now - self.last_seen

    def expired(self, now: float) -> bool:
        if self.timeout <= 0:
            return False
        return self.last_seen is None or now - self.last_seen > self.timeout


class WatchdogSet:
    """One watchdog per input; thread-safe (fed from subscriptions, checked from the tick)."""

    def __init__(self) -> None:
        self._dogs: dict[str, Watchdog] = {}
        self._lock = threading.Lock()

    def add(self, name: str, timeout: float) -> None:
        with self._lock:
            self._dogs[name] = Watchdog(name, timeout)

    def feed(self, name: str, now: float) -> float | None:
        """Record a message; returns the outage length (s) when this ends a trip, else None."""
        with self._lock:
            dog = self._dogs[name]
            recovered = None
            if dog.tripped:
                dog.tripped = False
                dog.last_outage = now - (dog.last_seen if dog.last_seen is not None else now)
                recovered = dog.last_outage
            dog.last_seen = now
            return recovered

    def check(self, now: float) -> list[str]:
        """Names of the inputs silent for longer than their timeout (and count new trips)."""
        silent = []
        with self._lock:
            for dog in self._dogs.values():
                if dog.expired(now):
                    silent.append(dog.name)
                    if not dog.tripped and dog.last_seen is not None:
                        dog.tripped = True
                        dog.trips += 1
                    elif dog.last_seen is None:
                        dog.tripped = True  # never heard from: blocked, but not a "trip"
        return silent

    def snapshot(self, now: float) -> list[Watchdog]:
        with self._lock:
            return [dataclasses.replace(d) for d in self._dogs.values()]

    def describe(self, names: list[str], now: float,
                 notes: dict[str, str] | None = None) -> str:
        """Why these inputs count as silent; `notes` names the refusal when one is arriving but
        refused (so the report says "refused: ...", not just "silent")."""
        parts = []
        notes = notes or {}
        for dog in self.snapshot(now):
            if dog.name in names:
                text = (f"{dog.name} never received" if dog.last_seen is None else
                        f"{dog.name} silent for {dog.age(now) * 1e3:.0f} ms "
                        f"(timeout {dog.timeout * 1e3:.0f} ms)")
                if dog.name in notes:
                    text += f", arriving but refused: {notes[dog.name]}"
                parts.append(text)
        return "; ".join(parts)


def hold_required(before: SafetyState, after: SafetyState, estop_pressed: bool) -> bool:
    """Must the node tell the robot to stop and hold now?

    On every e-stop press, whatever the state was (pressing twice must hold twice: the robot
    side may have missed the first), and whenever the node leaves ENABLED (disable, e-stop
    heartbeat lost). A hold is idempotent, so a redundant one costs nothing.
    """
    return estop_pressed or (before == SafetyState.ENABLED and after != SafetyState.ENABLED)


class SafetyGate:
    """Enable / e-stop state machine (see module docstring for the rules)."""

    def __init__(self, enabled_at_start: bool = False, estop_timeout: float = 0.0,
                 now: float = 0.0) -> None:
        self.state = SafetyState.ENABLED if enabled_at_start else SafetyState.DISABLED
        self.estop_timeout = estop_timeout
        self._estop_active = False
        self._estop_seen = now  # the heartbeat counts from start-up
        self._lock = threading.Lock()
        self.refused_enables = 0
        self.last_change_reason = "enabled at start" if enabled_at_start else \
            "disabled at start (publish True on the enable topic)"

    def _set(self, state: SafetyState, reason: str) -> None:
        self.state = state
        self.last_change_reason = reason

    def on_enable(self, enable: bool, now: float) -> None:
        with self._lock:
            self._update_heartbeat(now)
            if not enable:
                if self.state == SafetyState.ENABLED:
                    self._set(SafetyState.DISABLED, "disabled by the enable topic")
                return
            if self.state == SafetyState.ESTOP or self._estop_active:
                self.refused_enables += 1
                self.last_change_reason = "enable refused: e-stop active"
                return
            self._set(SafetyState.ENABLED, "enabled by the enable topic")

    def disable(self, reason: str) -> bool:
        """ENABLED -> DISABLED for a reason other than the enable topic; False if not ENABLED.

        For an output whose device went away under it (a driver's robot lost its link, faulted,
        was reconnected): the operator's enable applied to that session, so a fresh enable is
        needed once the device is back. ESTOP and DISABLED are left as they are.
        """
        with self._lock:
            if self.state != SafetyState.ENABLED:
                return False
            self._set(SafetyState.DISABLED, reason)
            return True

    def on_estop(self, active: bool, now: float) -> None:
        with self._lock:
            self._estop_seen = now
            if active:
                self._estop_active = True
                self._set(SafetyState.ESTOP, "e-stop pressed")
            elif self._estop_active or self.state == SafetyState.ESTOP:
                self._estop_active = False
                self._set(SafetyState.DISABLED, "e-stop released: enable again to resume")

    def _update_heartbeat(self, now: float) -> None:
        if self.estop_timeout > 0 and now - self._estop_seen > self.estop_timeout \
                and self.state != SafetyState.ESTOP:
            self._estop_active = True
            self._set(SafetyState.ESTOP, f"e-stop heartbeat lost (no message for "
                                         f"{now - self._estop_seen:.2f} s)")

    def allows_output(self, now: float) -> tuple[bool, str]:
        """(True, "") when output may leave the node, else (False, why)."""
        with self._lock:
            self._update_heartbeat(now)
            if self.state == SafetyState.ENABLED:
                return True, ""
            if self.state == SafetyState.ESTOP:
                return False, f"e-stop: {self.last_change_reason}"
            return False, f"disabled: {self.last_change_reason}"
