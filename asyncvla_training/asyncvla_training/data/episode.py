"""The in-memory form of one recorded episode, aligned to the action clock.

This is the contract between the bag readers (``asyncvla_training.data.bag_dataset``) and the
trainers (``asyncvla_training.train``): the readers turn a rosbag2 recording into ``Episode``
objects, the trainers never see a bag. Everything is in the units of
``asyncvla_training.conventions`` (REP-103), sampled at the policy's ``step_period``.

Why sample index == action tick: at run time the action node ticks every ``step_period`` and the
VLM delivers a new feature set every few ticks. Training with feature reuse ("staleness") then
means: sample ``i`` uses the frame set of sample ``i - k`` (same episode, clipped at 0), which is
exactly what the node sees ``k`` ticks after a VL update.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class Episode:
    """One recording, aligned: N action times with everything the policy needs at each.

    Attributes:
        name: unique, stable id (bag directory name, plus a suffix if a bag is split).
        step_period: seconds between consecutive action times (== the chunk step period).
        times_ns: (N,) int64 action times (ROS time of the recording, ns), strictly increasing.
        views: camera view names, in the order the VLM node is configured with.
        frame_stamps_ns: (N, V) int64; stamp of the newest frame of each view at or before
            ``times_ns[i]`` (the frame set the VLM would have used). Key of the VL cache.
        sensor_windows: (N, T, C) float32 sensor windows ending at ``times_ns[i]``
            (C = conventions.SENSOR_CHANNELS), or a lazy view with the same indexing.
        states: (N, 13) float32 robot state at ``times_ns[i]`` (conventions.robot_state_vector).
        actions: (N, H, 7) float32 target chunks (offsets from the state's reference components
            at ``times_ns[i]``, per conventions.ACTION_SPACES[action_space]).
        action_space: "ee_delta" or "joint_delta".
        prompt: the task prompt recorded with the episode (or the dataset's default).
        load_frames: callable(i) -> list of V RGB uint8 (H, W, 3) arrays (decoded on demand, so
            stage 1 on cached features never touches images).
    """

    name: str
    step_period: float
    times_ns: np.ndarray
    views: tuple[str, ...]
    frame_stamps_ns: np.ndarray
    sensor_windows: np.ndarray
    states: np.ndarray
    actions: np.ndarray
    action_space: str
    prompt: str
    load_frames: Callable[[int], list[np.ndarray]] = field(repr=False)

    def __len__(self) -> int:
        return int(self.times_ns.shape[0])

    def stale_index(self, i: int, k: int) -> int:
        """The sample whose frame set is seen ``k`` action periods late at sample ``i``."""
        return max(0, i - k)

    def frame_key(self, i: int) -> tuple[int, ...]:
        """The frame stamps of sample ``i`` (one per view): identifies its VL feature set."""
        return tuple(int(s) for s in self.frame_stamps_ns[i])
