"""ROS glue shared by every AsyncVLA node: the bridges, the VLM node, the action node, the executor.

Kept thin on purpose: QoS profiles, parameter declaration with descriptors (and the specs several
nodes share), time conversion, /diagnostics publishing, the safety gate and watchdogs and their
status message, the operator and robot-state inputs. Everything with logic worth testing is
ROS-free (stats.py, safety.py, publisher_lock.py, ...) and unit-tested. See README.md.
"""
