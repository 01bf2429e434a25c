"""AsyncVLA models and training: VL feature extractor, sensor encoder, action expert, rosbag2 datasets, stage 1/2 training. Runs without ROS."""
