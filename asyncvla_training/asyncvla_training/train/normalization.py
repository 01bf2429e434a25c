"""Normalisation statistics from training episodes (kept in one function so it can be swapped).

The statistics are set on the policy before training and saved inside its weights file, so the
action node normalises exactly as training did. Computed from the *training* episodes only.

Std floor: a dimension that never varies in the data (the constant ``tool`` value, a quaternion
component, a dead A-line pixel) would otherwise get std 0 and blow up any small deviation at run
time. Each std is raised to ``max(abs_floor, rel_floor * |mean|)``: 1 % of the value's own size,
or ``abs_floor`` (1e-6 by default: sub-micrometre / sub-microradian) for values near zero.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..data.episode import Episode


def _floored(mean: np.ndarray, std: np.ndarray, abs_floor: float, rel_floor: float) -> np.ndarray:
    floor = np.maximum(abs_floor, rel_floor * np.abs(mean))
    return np.maximum(std, floor)


def compute_normalization(
    episodes: Sequence[Episode],
    max_samples: int = 4096,
    seed: int = 0,
    abs_floor: float = 1e-6,
    rel_floor: float = 1e-2,
) -> dict[str, np.ndarray]:
    """Per-dimension mean/std of state (S,), sensor channels (C,) and action dims (A,).

    Sensor statistics pool every time step of up to ``max_samples`` windows (chosen at random
    with ``seed`` when there are more); state and action statistics use every sample.
    Returns float32 arrays under the keys ``ActionPolicy.load_normalization`` takes.
    """
    if not episodes:
        raise ValueError("compute_normalization needs at least one episode")
    states = np.concatenate([np.asarray(ep.states, dtype=np.float64) for ep in episodes], axis=0)
    actions = np.concatenate(
        [np.asarray(ep.actions, dtype=np.float64).reshape(-1, ep.actions.shape[-1]) for ep in episodes],
        axis=0,
    )
    pairs = [(e, i) for e, ep in enumerate(episodes) for i in range(len(ep))]
    if len(pairs) > max_samples:
        rng = np.random.default_rng(seed)
        chosen = rng.choice(len(pairs), size=max_samples, replace=False)
        pairs = [pairs[j] for j in sorted(chosen)]
    total = 0
    s1 = s2 = None
    for e, i in pairs:
        window = np.asarray(episodes[e].sensor_windows[i], dtype=np.float64)
        if s1 is None:
            s1 = np.zeros(window.shape[-1])
            s2 = np.zeros(window.shape[-1])
        s1 += window.sum(axis=0)
        s2 += np.square(window).sum(axis=0)
        total += window.shape[0]
    sensor_mean = s1 / total
    sensor_std = np.sqrt(np.maximum(s2 / total - np.square(sensor_mean), 0.0))
    stats = {
        "state_mean": states.mean(axis=0),
        "state_std": _floored(states.mean(axis=0), states.std(axis=0), abs_floor, rel_floor),
        "sensor_mean": sensor_mean,
        "sensor_std": _floored(sensor_mean, sensor_std, abs_floor, rel_floor),
        "action_mean": actions.mean(axis=0),
        "action_std": _floored(actions.mean(axis=0), actions.std(axis=0), abs_floor, rel_floor),
    }
    for key, value in stats.items():
        if not np.all(np.isfinite(value)):
            raise ValueError(f"normalisation statistic {key} is not finite (NaN/inf in the episodes?)")
    return {k: v.astype(np.float32) for k, v in stats.items()}
