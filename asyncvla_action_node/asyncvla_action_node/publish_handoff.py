"""The hand-off between the action node and its publisher process, without ROS: frames and rules.

Why: measured on 2 cores, a tick thread that shares one interpreter with the executor's callbacks
and the expert thread publishes 3.6-6.1 ms p99 off its grid, while a process that only publishes
holds 0.3-1.5 ms beside the same loaded node (TIMING.md). In the `publisher_process` design the
node prepares each tick's messages `publish_lead_ms` ahead of the deadline and hands them, already
serialised, to a child process that does nothing but sleep to the deadline and publish them.

What the single lock guaranteed in-process must still hold across the two processes; these rules
say how, and are unit-tested here:

* **Only the deadline it was prepared for.** An offer names its deadline. The child publishes it
  at that deadline, or up to `max_late` after it (a wake-up that was late, an offer that arrived
  late); later than that it is dropped and counted, never published in a burst beside the next.
  A newer offer replaces one still pending (counted `superseded`): one chunk per deadline.
* **A hold cancels.** A hold (the node left ENABLED, an e-stop press) drops the pending offer and
  is published at once, in the order the node sent it: a chunk prepared before the e-stop never
  reaches the topic after the hold.
* **Nothing once the parent is gone.** The socket's end of file stops the child (publisher_process).

Frames travel over an AF_UNIX SOCK_SEQPACKET socket pair: one frame per packet, whole or not at
all, and a full socket is a counted drop for the sender instead of a blocked tick thread.
"""
from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field

from asyncvla_common.report import ERROR, OK, WARN, Report
from asyncvla_common.stats import RollingStats

#: Frame kinds, parent -> child.
OFFER, HOLD = 1, 2
#: Frame kinds, child -> parent.
READY, STATS = 10, 11

_HEAD = struct.Struct("<Bq B")  # kind, deadline (monotonic ns; 0 for a hold), payload count
_PART = struct.Struct("<BI")  # outlet index, payload length

#: The child wakes this long before a deadline from its socket wait (whose resolution is a
#: millisecond) and sleeps the rest absolutely; a hold arriving meanwhile waits at most this long.
PRECISE_SLEEP_NS = 1_500_000


class FrameError(ValueError):
    """A frame that cannot be decoded (a peer that is not ours, or a truncated packet)."""


def encode(kind: int, deadline_ns: int, payloads: list[tuple[int, bytes]]) -> bytes:
    """One frame: the kind, the deadline and (outlet index, serialised message) pairs."""
    if len(payloads) > 255:
        raise ValueError("at most 255 payloads per frame")
    parts = [_HEAD.pack(kind, int(deadline_ns), len(payloads))]
    for outlet, data in payloads:
        parts += [_PART.pack(outlet, len(data)), bytes(data)]
    return b"".join(parts)


def decode(frame: bytes) -> tuple[int, int, list[tuple[int, bytes]]]:
    """The inverse of `encode`; FrameError for anything else."""
    if len(frame) < _HEAD.size:
        raise FrameError(f"frame of {len(frame)} bytes is shorter than its header")
    kind, deadline_ns, count = _HEAD.unpack_from(frame)
    offset, payloads = _HEAD.size, []
    for _ in range(count):
        if offset + _PART.size > len(frame):
            raise FrameError("frame ends inside a payload header")
        outlet, length = _PART.unpack_from(frame, offset)
        offset += _PART.size
        if offset + length > len(frame):
            raise FrameError(f"payload of {length} bytes runs past the frame's end")
        payloads.append((outlet, frame[offset:offset + length]))
        offset += length
    if offset != len(frame):
        raise FrameError(f"{len(frame) - offset} bytes after the last payload")
    return kind, deadline_ns, payloads


def encode_json(kind: int, values: dict) -> bytes:
    """A READY or STATS frame: one payload of JSON."""
    return encode(kind, 0, [(0, json.dumps(values).encode())])


@dataclass
class PublishSchedule:
    """The child's rules: what to publish, and when (see the module doc). Times are monotonic ns."""

    max_late_ns: int
    outlet_count: int
    pending_deadline_ns: int | None = None
    pending: list[tuple[int, bytes]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("offered", "published", "superseded", "late_dropped", "cancelled", "holds",
         "bad_frames", "publish_errors"), 0))
    late_s: RollingStats = field(default_factory=lambda: RollingStats(500))  # publication -
    # deadline, the recent publications
    call_s: RollingStats = field(default_factory=lambda: RollingStats(500))  # their publish calls

    def receive(self, frame: bytes) -> list[tuple[int, bytes]]:
        """Take one frame from the node; returns what must be published at once (a hold)."""
        try:
            kind, deadline_ns, payloads = decode(frame)
        except FrameError:
            self.counts["bad_frames"] += 1
            return []
        if any(outlet >= self.outlet_count for outlet, _ in payloads):
            self.counts["bad_frames"] += 1  # names a topic the child does not publish
            return []
        if kind == OFFER:
            self.counts["offered"] += 1
            if self.pending_deadline_ns is not None:
                self.counts["superseded"] += 1
            self.pending_deadline_ns, self.pending = deadline_ns, payloads
            return []
        if kind == HOLD:
            self.counts["holds"] += 1
            if self.pending_deadline_ns is not None:
                self.counts["cancelled"] += 1
            self.pending_deadline_ns, self.pending = None, []
            return payloads
        self.counts["bad_frames"] += 1
        return []

    def wait_ns(self, now_ns: int) -> int | None:
        """How long the child may wait on its socket before the precise sleep (None: no offer)."""
        if self.pending_deadline_ns is None:
            return None
        return max(0, self.pending_deadline_ns - PRECISE_SLEEP_NS - now_ns)

    def due(self, now_ns: int) -> list[tuple[int, bytes]]:
        """The pending offer if its deadline has come and it is not too late ([] otherwise)."""
        deadline = self.pending_deadline_ns
        if deadline is None or now_ns < deadline:
            return []
        payloads, self.pending_deadline_ns, self.pending = self.pending, None, []
        if now_ns - deadline > self.max_late_ns:
            self.counts["late_dropped"] += 1
            return []
        self.counts["published"] += 1
        self.late_s.add((now_ns - deadline) / 1e9)
        return payloads

    def published(self, call_ns: int) -> None:
        """A due offer's publish calls took `call_ns` (the middleware's share of the timing)."""
        self.call_s.add(call_ns / 1e9)

    def stats(self) -> dict:
        """Counts, and the lateness of recent publications and the time their publish calls took
        (p99, ms): what the node's diagnostics show."""
        return {**self.counts, "publish_late_ms_p99": p99_ms(self.late_s),
                "publish_call_ms_p99": p99_ms(self.call_s)}


def p99_ms(stats: RollingStats) -> float | None:
    """The 99th percentile in ms, None when there is none yet (JSON has no NaN)."""
    value = stats.percentile(99)
    return None if math.isnan(value) else value * 1e3


@dataclass
class HandoffCounts:
    """The node's side: what it handed over, what it could not, and the child's newest stats."""

    sent: int = 0
    send_failed: int = 0  # socket full or closed: that tick reached no topic
    child: dict = field(default_factory=dict)


def publisher_report(counts: HandoffCounts, alive: bool, exit_note: str = "",
                     dropped_before: int = 0) -> Report:
    """How the publisher process is doing, for the "action output" diagnostic.

    ERROR when it is gone (the node would be computing chunks that reach no topic), WARN when
    offers were dropped or could not be sent since the last report (`dropped_before` is the total
    then)."""
    state = "running" if alive else f"exited {exit_note}".strip()
    values = {"publisher_process": state,
              "handoff_sent": counts.sent, "handoff_failed": counts.send_failed,
              **{f"publisher_{k}": v for k, v in counts.child.items() if v is not None}}
    if not alive:
        return Report(ERROR, f"publisher process {state}: no action chunk reaches the topic",
                      values)
    dropped = dropped_total(counts)
    if dropped > dropped_before:
        return Report(WARN, f"{dropped - dropped_before} prepared ticks not published since the "
                            "last report (late, superseded or not handed over)", values)
    return Report(OK, "publisher process running", values)


def dropped_total(counts: HandoffCounts) -> int:
    """Prepared ticks that reached no topic: dropped late, replaced, never handed over, or
    refused by the middleware."""
    child = counts.child
    return (counts.send_failed + int(child.get("late_dropped", 0))
            + int(child.get("superseded", 0)) + int(child.get("bad_frames", 0))
            + int(child.get("publish_errors", 0)))
