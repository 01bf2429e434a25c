"""Action node on the robot PC, with the robot and force/OCT bridges (bridges:=true) and
the camera bridge (camera_bridge:=true); the VLM node runs on a GPU server (vlm.launch.py).

    ros2 launch asyncvla_bringup action.launch.py checkpoint:=/path/to/policy

`ros2 launch asyncvla_bringup action.launch.py --show-args` lists every argument. Parameters:
config/*.yaml of this package, then params_file:=, then the arguments given.
"""
import os

from asyncvla_bringup.launch_support import describe


def generate_launch_description():
    return describe("action", os.path.join(os.path.dirname(__file__), "..", "config"))
