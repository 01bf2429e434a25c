"""QoS profiles, chosen on purpose and in one place so publishers and subscribers always match.

- LATCHED (reliable, transient local, depth 1): VL features. A late-joining or restarted action
  node must get the newest features at once, and only the newest.
- STREAM_PUBLISHER (reliable, volatile, small depth): what the bridges publish. Reliable so that
  every kind of subscriber can match, `ros2 bag record` included.
- SENSOR_SUBSCRIBER (best effort, volatile, small depth): what the nodes subscribe with. Matches
  a reliable publisher and never makes it wait: a late sample is dropped, never queued.
- COMMAND (reliable, volatile, depth 1): action outputs; only the newest chunk matters.
"""
from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

LATCHED = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                     reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


def stream_publisher(depth: int = 10) -> QoSProfile:
    return QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


def sensor_subscriber(depth: int = 10) -> QoSProfile:
    return QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.VOLATILE)


COMMAND = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                     reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.VOLATILE)
