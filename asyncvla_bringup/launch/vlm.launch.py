"""VLM node only, for a GPU server; the action node runs on the robot PC (action.launch.py)
and both machines share a ROS_DOMAIN_ID on the lab network.

    ros2 launch asyncvla_bringup vlm.launch.py model_path:=/path/to/model device:=cuda:0

`ros2 launch asyncvla_bringup vlm.launch.py --show-args` lists every argument. Parameters:
config/*.yaml of this package, then params_file:=, then the arguments given.
"""
import os

from asyncvla_bringup.launch_support import describe


def generate_launch_description():
    return describe("vlm", os.path.join(os.path.dirname(__file__), "..", "config"))
