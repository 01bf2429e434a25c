"""Datasets: rosbag2 recordings -> aligned episodes -> training samples (no ROS needed)."""
from .episode import Episode

__all__ = ["Episode"]
