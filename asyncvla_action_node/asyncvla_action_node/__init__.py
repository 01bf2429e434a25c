"""AsyncVLA action node (VL features + force/OCT window + robot state to action chunks) and the robot and force/OCT bridges."""
