"""AsyncVLA policy runtime (ROS-free PyTorch): the models, their checkpoints and runtimes.

Importing the package imports nothing; each module loads torch (and transformers/peft where it
needs them) itself. The module table is in README.md.
"""
