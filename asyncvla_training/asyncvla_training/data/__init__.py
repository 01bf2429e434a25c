"""Datasets: rosbag2 recordings -> aligned episodes -> training samples (no ROS needed).

See asyncvla_training/TRAINING_DATA.md. Main entry points:

- ``load_episodes(paths, BagDatasetConfig(...))`` -> list[Episode] (``load_bag`` for one bag + report)
- ``split_episodes(episodes, val_fraction, seed)`` -> (train, val), by recording
- ``compute_normalization(train)`` -> dict for ``ActionPolicy.load_normalization``
- ``VLFeatureCache(directory, extractor, prompt).features_for(episode)`` / ``.lookup(episode, i)``
- ``export_lerobot(episodes, output)`` -> LeRobot v3.0 dataset
- (``asyncvla_testing.synthetic_bag.write_synthetic_bag`` writes a synthetic recording for tests and demos)
"""
from .alignment import AlignmentConfig, AlignmentReport, episode_group
from .bag_dataset import (DEFAULT_PROMPT, BagDatasetConfig, find_bags, iter_episodes, load_bag,
                          load_episodes)
from .bag_reader import BagTopics
from .episode import Episode
from .errors import BagDataError, CacheError, SplitError
from .stats import DEFAULT_STD_FLOORS, compute_normalization, split_episodes
from .vl_cache import EpisodeVLFeatures, VLFeatureCache
from .windows import FrameLoader, SensorWindows

__all__ = [
    "AlignmentConfig", "AlignmentReport", "BagDataError", "BagDatasetConfig", "BagTopics",
    "CacheError", "DEFAULT_PROMPT", "DEFAULT_STD_FLOORS", "Episode", "EpisodeVLFeatures",
    "FrameLoader", "SensorWindows", "SplitError", "VLFeatureCache", "compute_normalization",
    "episode_group", "find_bags", "iter_episodes", "load_bag", "load_episodes", "split_episodes",
]
