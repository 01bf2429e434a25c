"""ROS-free readers of the lab's wire formats (formats in the package README) and the clock logic.

Why a separate package: the bridges' ROS nodes stay thin glue, while everything that can be wrong
about parsing, validation, rotations and clock mapping is unit-tested here without a ROS graph.
Nothing under `wire/` imports rclpy or message packages.
"""
