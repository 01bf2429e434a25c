"""ROS glue shared by every AsyncVLA node (the VLM node and the bridges import it too).

Kept thin on purpose: QoS profiles, parameter declaration with descriptors, time conversion and
/diagnostics publishing. Everything with logic worth testing lives in ROS-free modules.
"""
