"""The operator's enable and e-stop topics: which messages may let a robot move again.

Three nodes take the same two latched std_msgs/Bool topics (the action node, the executor and the
Meca500 driver), so the rule lives here once. A message that stops output (enable False, e-stop
True) is always obeyed, whoever sent it: refusing a stop is never the safe side. A message that
would let output resume (enable True, e-stop released) is obeyed only while a single node
publishes the topic: without DDS security anyone on the domain can publish there, and a second
publisher means the operator is not the only one who can restart the robot
(``publisher_lock.PublisherLock`` without an identity lock: operators publish from changing
shells). While a second publisher is there the topic's status is ERROR, naming the nodes.

ROS-free: the node passes the graph as ``safety_ros.publishers_on`` reads it.
"""
from __future__ import annotations

from typing import Any

from asyncvla_common.publisher_lock import PublisherLock, PublisherVerdict
from asyncvla_common.report import OK, Report
from asyncvla_common.safety_ros import worse

#: The operator topics (their parameters: ``topics.<name>``).
OPERATOR_TOPICS = ("enable", "estop")

_OBEYED = PublisherVerdict(True, OK, "")


def resumes(name: str, data: bool) -> bool:
    """Would this message let output resume (enable True, e-stop released)?"""
    if name not in OPERATOR_TOPICS:
        raise ValueError(f"unknown operator topic {name!r}; expected one of {OPERATOR_TOPICS}")
    return bool(data) if name == "enable" else not data


class OperatorInputs:
    """The publisher rule of the enable and e-stop topics of one node."""

    def __init__(self, topics: dict[str, str]) -> None:
        self.locks = {name: PublisherLock(topics[name], lock_identity=False)
                      for name in OPERATOR_TOPICS}

    def admit(self, name: str, data: bool, graph: dict[str, Any]) -> PublisherVerdict:
        """May this message be applied to the safety gate? Stops always; resumes only from a
        topic with a single publisher (a refusal is counted by the lock and says why)."""
        if not resumes(name, data):
            return _OBEYED
        return self.locks[name].check(**graph)

    def refused(self, name: str) -> int:
        return self.locks[name].refused

    def report(self, report: Report, graphs: dict[str, dict[str, Any]]) -> Report:
        """`report` made worse by a second publisher on either topic (ERROR naming the nodes)."""
        for name, graph in graphs.items():
            report = worse(report, self.locks[name].evaluate(**graph))
        return report
