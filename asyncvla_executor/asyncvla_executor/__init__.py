"""AsyncVLA chunk executor: action chunks to setpoints at the robot's rate (README.md)."""
