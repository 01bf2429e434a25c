"""Monitoring for a running AsyncVLA pipeline: diagnostic_aggregator and rqt with the AsyncVLA
perspective (plots of VL age, latencies and rates, the diagnostics viewer, topic rates).

    ros2 launch asyncvla_bringup monitor.launch.py [aggregator:=true] [rqt:=true]

Needs the ROS packages diagnostic_aggregator, rqt_gui, rqt_plot, rqt_robot_monitor and
rqt_topic (apt: ros-jazzy-diagnostic-aggregator ros-jazzy-rqt-common-plugins
ros-jazzy-rqt-robot-monitor). The plotted topics assume the nodes run without a namespace.
"""
import os

from asyncvla_bringup.launch_support import describe_monitor


def generate_launch_description():
    return describe_monitor(os.path.join(os.path.dirname(__file__), ".."))
