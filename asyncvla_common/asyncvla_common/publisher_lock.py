"""Who may publish on a control input: notice a second publisher and refuse what it could send.

Without DDS security anyone on the domain can publish on any topic: a rogue node copying the model
id off the VL topic once drove every chunk with all diagnostics OK. Jazzy's rclpy does not tell a
callback which publisher sent a message (its message info has no publisher GID), so the node
decides from the ROS graph: the publishers' node names (`get_publishers_info_by_topic`) and the
number of DDS writers matched to the subscription. ROS-free; the node passes both in.

VL features (``lock_identity``): the lock is taken on the first node seen alone on the topic (or
pinned by the operator, the action node's ``vl.publisher`` parameter). While any other node
publishes there, or a writer the graph cannot name yet, every message is refused (which one sent
it cannot be told) and the status is ERROR, naming the topic and the nodes. When the other node leaves the
lock's node is alone again and features are taken again, by themselves. A restarted VLM has the
same node name, so it is taken at once even while DDS still lists its dead predecessor (Fast DDS
forgets a killed participant only after its lease, 20 s measured). When the locked node is gone
and another one publishes, nothing is taken until an operator pins the lock (re-lock).

Enable / e-stop (no identity lock: operators publish from changing shells): more than one node
on the topic is an ERROR, and messages that would let output resume (enable True, e-stop
released) are refused meanwhile; messages that stop output are always obeyed.

The graph lags the data at both edges, so two rules from the DDS sample info close the gaps:
a sample whose writer sequence number goes back while the writers (their count and graph ids)
are unchanged comes from a writer the graph does not show yet (refused); and once another publisher is seen gone,
samples published (source timestamp) before that moment are refused, so that the rogue's last
sample, still queued, is not taken after it left.

A rogue that copies the VLM's node name is indistinguishable here: that is what SROS2 access
control is for (asyncvla_bringup/security).
"""
from __future__ import annotations

from dataclasses import dataclass

from asyncvla_common.report import ERROR, OK, WARN



@dataclass(frozen=True)
class PublisherVerdict:
    allowed: bool  # may a message arriving now be used (a "go" message, for control topics)
    level: int
    message: str  # "" when OK


class PublisherLock:
    """The publisher rule for one topic (see the module docstring)."""

    def __init__(self, topic: str, lock_identity: bool = True, pinned: str = "") -> None:
        self.topic = topic
        self.lock_identity = lock_identity
        self.locked = pinned or None
        self.refused = 0
        self.last = PublisherVerdict(True, OK, "")
        self._episode = False  # another or an unnamed publisher seen, its leaving not yet
        self._quarantine_ns = 0  # samples published before this (ns) are refused
        self._last_sequence: int | None = None  # of the last sample taken
        self._writers: tuple | None = None  # (matched, writer ids) the sequence belongs to

    def pin(self, node: str) -> None:
        """The operator's re-lock: `node` ("" = the next node seen alone on the topic)."""
        self.locked = node or None

    def check(self, publishers: list[str], matched: int, now_ns: int,
              source_ns: int | None = None, sequence: int | None = None,
              writer_ids: tuple = ()) -> PublisherVerdict:
        """Verdict for a message arriving now (counted when refused); `source_ns` and
        `sequence` are its DDS source timestamp and writer sequence number, when known."""
        verdict = self.evaluate(publishers, matched, now_ns, writer_ids)
        if verdict.allowed and source_ns is not None and source_ns < self._quarantine_ns:
            verdict = PublisherVerdict(False, ERROR, f"a sample on {self.topic} published while "
                                       f"another publisher was there; waiting for a newer one")
        elif verdict.allowed and sequence is not None and self._last_sequence is not None \
                and sequence <= self._last_sequence:
            verdict = PublisherVerdict(False, ERROR, f"a writer on {self.topic} that the graph "
                                       f"does not show yet (its sequence number went back)")
        if verdict.allowed:
            self._last_sequence = sequence
        else:
            self.refused += 1
        return verdict

    def evaluate(self, publishers: list[str], matched: int, now_ns: int,
                 writer_ids: tuple = ()) -> PublisherVerdict:
        """The rule applied to the graph now; `publishers` are node names, one per writer, and
        `writer_ids` their graph ids (when the writers change, sequence numbers start anew)."""
        writers = (matched, frozenset(writer_ids))
        if writers != self._writers:
            self._writers, self._last_sequence = writers, None
        self.last = verdict = self._verdict(publishers, matched)
        if not verdict.allowed:
            self._episode = True
        elif self._episode:  # seen gone now: anything published before is suspect
            self._episode = False
            self._quarantine_ns = now_ns
        return verdict

    def _verdict(self, publishers: list[str], matched: int) -> PublisherVerdict:
        nodes = sorted(set(publishers))
        unnamed = max(0, matched - len(publishers))
        named = ", ".join(nodes) or "none named yet"
        if not self.lock_identity:
            if len(nodes) + (1 if unnamed else 0) > 1:
                return PublisherVerdict(False, ERROR, f"{matched} publishers on {self.topic} "
                                        f"({named}): only stop messages are obeyed")
            return PublisherVerdict(True, OK, "")
        if self.locked is None:
            if len(nodes) == 1 and not unnamed:
                self.locked = nodes[0]
            elif not nodes and matched <= 1:
                # one writer the graph does not name yet (it lags discovery by a few ms)
                return PublisherVerdict(True, OK, "")
            else:
                return PublisherVerdict(False, ERROR, f"{matched} publishers on {self.topic} "
                                        f"({named}) and none locked: set vl.publisher")
        others = [n for n in nodes if n != self.locked]
        if others:
            return PublisherVerdict(False, ERROR, f"another publisher on {self.topic}: "
                                    f"{', '.join(others)} (locked on {self.locked}); refusing "
                                    f"its features until it stops or vl.publisher is set")
        if unnamed and matched > 1:
            return PublisherVerdict(False, ERROR, f"{matched} writers on {self.topic}, "
                                    f"{unnamed} not yet named in the graph; refusing")
        if not nodes and matched >= 1 and unnamed:
            return PublisherVerdict(True, OK, "")  # the locked node's writer, not named yet
        if len(publishers) > 1:
            return PublisherVerdict(True, WARN, f"{len(publishers)} writers of {self.locked} on "
                                    f"{self.topic} (a restart whose old entry has not expired)")
        return PublisherVerdict(True, OK, "")
