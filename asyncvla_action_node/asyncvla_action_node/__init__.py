"""AsyncVLA action node: VL features + force/OCT window + robot state to action chunks."""
