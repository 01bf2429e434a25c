"""Test support shared by the packages' tests, the demo and the benchmarks. Not installed.

Process management and DDS peers (processes, pipeline, ros_listener, ...), lab sender and robot
stand-ins, and the data stand-ins: ``tiny_vlm`` (an offline tiny random Qwen2.5-VL and the 3B
architecture's config), ``synthetic_bag`` (rosbag2 recordings of the bridge topics),
``tracking_task`` (the moving-target task) and ``staleness_experiment`` (the staleness
benchmark's training and evaluation).
"""
