"""Normalisation statistics and the train/validation split (both by episode, never by sample).

``compute_normalization(train_episodes)`` returns exactly the keys ``ActionPolicy.load_normalization``
takes: state_mean/std (13), sensor_mean/std (per channel, 1026), action_mean/std (per action dim,
7, over every horizon step). Statistics are over what the model sees: every sample's state, every
row of every sample's window (a stream row inside two windows counts twice), every step of every
chunk. Accumulated in float64.

Std floors (``DEFAULT_STD_FLOORS``): a dimension that (almost) never varies in the training data
(the constant tool value, a quaternion component, a dead A-line pixel) would otherwise get a std
near 0 and turn a tiny run-time deviation into a huge normalised input. Inputs get a floor above
numerical noise and below real variation (1e-3: 1 mm, 1 mrad, 1e-3 N); actions a smaller one (1e-5:
0.01 mm / 0.01 mrad per step offset), because an action std scales the policy's outputs back up, so a
small floor keeps a constant action dimension constant.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .alignment import episode_group
from .episode import Episode
from .errors import SplitError
from .windows import SensorWindows

DEFAULT_STD_FLOORS = {"state": 1e-3, "sensor": 1e-3, "action": 1e-5}
NORMALIZATION_KEYS = ("state_mean", "state_std", "sensor_mean", "sensor_std", "action_mean",
                      "action_std")


class _Moments:
    def __init__(self) -> None:
        self.count = 0.0
        self.total = None
        self.total_sq = None

    def add(self, values: np.ndarray, weights: np.ndarray | None = None) -> None:
        values = np.asarray(values, dtype=np.float64)
        values = values.reshape(-1, values.shape[-1])
        if weights is None:
            s, s2, c = values.sum(axis=0), np.square(values).sum(axis=0), float(values.shape[0])
        else:
            w = np.asarray(weights, dtype=np.float64).reshape(-1)
            s, s2, c = w @ values, w @ np.square(values), float(w.sum())
        if self.total is None:
            self.total, self.total_sq = np.zeros_like(s), np.zeros_like(s2)
        self.total += s
        self.total_sq += s2
        self.count += c

    def mean_std(self, floor: float) -> tuple[np.ndarray, np.ndarray]:
        mean = self.total / self.count
        var = np.maximum(self.total_sq / self.count - np.square(mean), 0.0)
        return mean.astype(np.float32), np.maximum(np.sqrt(var), floor).astype(np.float32)


def compute_normalization(episodes: Sequence[Episode],
                          std_floors: Mapping[str, float] | None = None) -> dict[str, np.ndarray]:
    """Mean/std of states, sensor windows and actions over ``episodes`` (pass TRAIN episodes only).

    Returns float32 arrays keyed state_mean, state_std, sensor_mean, sensor_std, action_mean,
    action_std. Std values are floored per group (``DEFAULT_STD_FLOORS`` unless given).
    """
    if not episodes or not any(len(e) for e in episodes):
        raise ValueError("normalisation statistics need at least one sample")
    floors = dict(DEFAULT_STD_FLOORS)
    floors.update(std_floors or {})
    state, sensor, action = _Moments(), _Moments(), _Moments()
    for episode in episodes:
        if not len(episode):
            continue
        state.add(episode.states)
        action.add(episode.actions)
        windows = episode.sensor_windows
        if isinstance(windows, SensorWindows):  # weight stream rows by windows containing them
            weights = windows.row_weights()
            used = weights > 0
            sensor.add(windows.rows[used], weights[used])
        else:
            for i in range(len(episode)):
                sensor.add(np.asarray(windows[i]))
    out = {}
    for name, moments in (("state", state), ("sensor", sensor), ("action", action)):
        out[f"{name}_mean"], out[f"{name}_std"] = moments.mean_std(floors[name])
    return out


def split_episodes(episodes: Sequence[Episode], val_fraction: float = 0.1, seed: int = 0,
                   min_val_episodes: int = 1) -> tuple[list[Episode], list[Episode]]:
    """Deterministic train/validation split by recording.

    Segments of one bag (``<bag>#<k>``) stay on the same side. The validation set gets
    max(min_val_episodes, round(val_fraction * recordings)) recordings, chosen by a seeded
    permutation of the sorted recording names (independent of the input order). Raises SplitError
    when that leaves no training recording. ``val_fraction=0`` returns (all, []).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise SplitError(f"val_fraction must be in [0, 1), got {val_fraction}")
    groups: dict[str, list[Episode]] = {}
    for episode in episodes:
        groups.setdefault(episode_group(episode), []).append(episode)
    names = sorted(groups)
    if val_fraction == 0.0:
        return list(episodes), []
    n_val = max(int(min_val_episodes), int(round(val_fraction * len(names))))
    if len(names) - n_val < 1:
        raise SplitError(
            f"{len(names)} recording(s) cannot give {n_val} validation and at least 1 training "
            f"recording (val_fraction {val_fraction}, min_val_episodes {min_val_episodes}); "
            f"record more episodes or pass val_fraction=0 to train without validation")
    order = np.random.default_rng(seed).permutation(len(names))
    val_names = {names[i] for i in order[:n_val]}
    train = [e for e in episodes if episode_group(e) not in val_names]
    val = [e for e in episodes if episode_group(e) in val_names]
    return train, val
