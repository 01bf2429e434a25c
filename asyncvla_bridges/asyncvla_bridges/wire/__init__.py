"""ROS-free readers of the lab's wire formats (see shared WIRE_FORMATS.md) and the clock logic.

Why a separate package: the bridges' ROS nodes stay thin glue, while everything that can be wrong
about parsing, validation, rotations and clock mapping is unit-tested here without a ROS graph.
Nothing under `wire/` imports rclpy or message packages.
"""
