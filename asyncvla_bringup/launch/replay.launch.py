"""Replay: the VLM and action nodes on simulated time, fed by a recorded bag.

    ros2 launch asyncvla_bringup replay.launch.py checkpoint:=/path/to/policy bag:=/path/to/bag
    ros2 launch asyncvla_bringup replay.launch.py checkpoint:=... run_vlm:=false bag:=...

With bag:= the launch file starts `ros2 bag play --clock` on the recorded inputs (and on the
recorded VL features when run_vlm:=false); without it, play the bag yourself (ROBOT_PC.md).
When the player exits with an error (a missing or unreadable bag) the launch shuts down with that
reason (catalog.command_exit_reason) instead of leaving the nodes waiting on /clock.

`ros2 launch asyncvla_bringup replay.launch.py --show-args` lists every argument. Parameters:
config/*.yaml of this package, then params_file:=, then the arguments given.
"""
import os

from asyncvla_bringup.launch_support import describe


def generate_launch_description():
    return describe("replay", os.path.join(os.path.dirname(__file__), "..", "config"))
