"""The lab's senders as ROS 2 topics: camera, robot state and force/OCT bridges (see README.md)."""
