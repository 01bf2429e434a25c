"""AsyncVLA launch files and parameter sets for the robot PC, bag replay and split machines."""
