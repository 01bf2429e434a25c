"""Whole AsyncVLA pipeline on one machine (the robot PC): camera, robot and force/OCT
bridges, the VLM node and the action node.

    ros2 launch asyncvla_bringup robot.launch.py checkpoint:=/path/to/policy model_path:=/models/vl

optionally with adapter:=/path/to/lora prompt:="..." vlm_device:=cuda:0 action_rate_hz:=10.0.

`ros2 launch asyncvla_bringup robot.launch.py --show-args` lists every argument. Parameters:
config/*.yaml of this package, then params_file:=, then the arguments given.
"""
import os

from asyncvla_bringup.launch_support import describe


def generate_launch_description():
    return describe("robot", os.path.join(os.path.dirname(__file__), "..", "config"))
