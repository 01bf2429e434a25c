"""The in-memory form of one recorded episode, aligned to the action clock.

This is the contract between the bag readers (``asyncvla_training.data.bag_dataset``) and the
trainers (``asyncvla_training.train``): the readers turn a rosbag2 recording into ``Episode``
objects, the trainers never see a bag. Everything is in the units of
``asyncvla_core.conventions`` (REP-103), sampled at the policy's ``step_period``.

Why sample index == action tick: at run time the action node ticks every ``step_period`` and
acts on the newest VL features, whose age (tick time minus the stamp of the newest camera frame
behind them) is hundreds of milliseconds: transport, the VLM's compute and the wait for the next
update. Training with staleness therefore pairs sample ``i`` (its fresh sensor window and state)
with the frame set the VLM would have used ``a`` seconds earlier (:meth:`Episode.stale_frame_set`),
and tells the expert the resulting age. So an episode keeps every frame set the VLM could have
used (``frame_sets_ns``, in the order they became complete), not only the one at each sample.
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
            ``times_ns[i]`` (the frame set a VLM without delay would have used).
        sensor_windows: (N, T, C) float32 sensor windows ending at ``times_ns[i]``
            (C = conventions.SENSOR_CHANNELS), or a lazy view with the same indexing.
        states: (N, 13) float32 robot state at ``times_ns[i]`` (conventions.robot_state_vector).
        actions: (N, H, 7) float32 target chunks (offsets from the state's reference components
            at ``times_ns[i]``, per conventions.ACTION_SPACES[action_space]).
        action_space: "ee_delta" or "joint_delta".
        prompt: the task prompt recorded with the episode (or the dataset's default).
        load_frames: callable(s) -> list of V RGB uint8 (H, W, 3) arrays of frame set ``s`` (an
            index into ``frame_sets_ns``; decoded on demand, so stage 1 on cached features never
            touches images).
        frame_sets_ns: (M, V) int64, every frame set the VLM could have used (a set per time a
            frame completed one, older ones first: their ready times, the newest stamp of each
            row, do not decrease); it contains every row of ``frame_stamps_ns``. None: the
            distinct rows of ``frame_stamps_ns``. The VL cache is keyed by these rows.
        recorded_vl_ages_ns: (N,) int64, the age of the VL features a recorded action node would
            have acted on at each sample (the bag's own VLFeatures: tick time minus the stamp of
            the newest message received by then), -1 where none had arrived; None when the
            recording has no VLFeatures. The measured distribution ``vl_age_source: recorded``
            draws from.
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
    frame_sets_ns: np.ndarray | None = field(default=None, repr=False)
    recorded_vl_ages_ns: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        own = np.asarray(self.frame_stamps_ns, dtype=np.int64).reshape(len(self.times_ns), -1)
        sets = own if self.frame_sets_ns is None else np.asarray(self.frame_sets_ns, np.int64)
        sets = np.unique(np.concatenate([sets.reshape(-1, own.shape[1]), own]), axis=0)
        ready = sets.max(axis=1)
        order = np.lexsort(tuple(sets.T[::-1]) + (ready,))  # by ready time, then stamps
        self.frame_sets_ns = sets[order]
        self._ready_ns = ready[order]
        rows = {tuple(int(x) for x in row): n for n, row in enumerate(self.frame_sets_ns)}
        #: (N,) the frame set of each sample (``frame_stamps_ns[i]``) in ``frame_sets_ns``.
        self.sample_frame_sets = np.array([rows[tuple(int(x) for x in row)] for row in own],
                                          dtype=np.int64)
        if self.recorded_vl_ages_ns is not None:
            self.recorded_vl_ages_ns = np.asarray(self.recorded_vl_ages_ns, np.int64).reshape(-1)
            if self.recorded_vl_ages_ns.shape[0] != len(self):
                raise ValueError(f"episode {self.name}: recorded_vl_ages_ns has "
                                 f"{self.recorded_vl_ages_ns.shape[0]} entries for {len(self)} samples")

    def __len__(self) -> int:
        return int(self.times_ns.shape[0])

    @property
    def num_frame_sets(self) -> int:
        return int(self.frame_sets_ns.shape[0])

    def frame_set_ready_ns(self, s: int) -> int:
        """When frame set ``s`` was complete: the stamp of its newest frame (the stamp the VLM
        node gives the features it computes from it)."""
        return int(self._ready_ns[s])

    def frame_set_key(self, s: int) -> tuple[int, ...]:
        """The frame stamps of frame set ``s`` (one per view): identifies its VL features."""
        return tuple(int(x) for x in self.frame_sets_ns[s])

    def stale_frame_set(self, i: int, age_ns: int) -> tuple[int, int]:
        """The frame set the VLM would have used ``age_ns`` before sample ``i``, and the age the
        action node would then compute at sample ``i`` (ns, >= ``age_ns`` by up to one camera
        period, since a set is only complete when its newest frame is).

        Where the episode holds no set that old (its first moments), the oldest set it holds:
        the age returned is then the true, smaller one, never the one asked for."""
        t = int(self.times_ns[i])
        s = int(np.searchsorted(self._ready_ns, t - int(age_ns), side="right")) - 1
        s = min(max(s, 0), int(self.sample_frame_sets[i]))
        return s, t - int(self._ready_ns[s])
