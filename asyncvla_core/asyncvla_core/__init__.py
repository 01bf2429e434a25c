"""What every AsyncVLA package agrees on, with numpy alone: no ROS, no torch (README.md)."""
