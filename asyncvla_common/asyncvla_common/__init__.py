"""ROS glue shared by every AsyncVLA node: the VLM node, the action node and the bridges.

Kept thin on purpose: QoS profiles, parameter declaration with descriptors, time conversion,
/diagnostics publishing, the safety gate and watchdogs and their status message. Everything with
logic worth testing is ROS-free (stats.py, safety.py) and unit-tested.
"""
