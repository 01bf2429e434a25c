"""Normalisation statistics (train episodes only, floored std) and the split by recording."""
from __future__ import annotations

import os
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

# Run from a plain checkout: put the package dir first; pytest's importlib mode may have registered
# the ROS package *directory* as a namespace package "asyncvla_training" - drop it for the real one.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
if getattr(sys.modules.get("asyncvla_training"), "__file__", "") is None:
    del sys.modules["asyncvla_training"]

from asyncvla_policy.config import tiny_policy_config  # noqa: E402
from asyncvla_policy.policy import ActionPolicy  # noqa: E402
from asyncvla_testing.synthetic_bag import SyntheticBagSpec, write_synthetic_bag  # noqa: E402
from asyncvla_training.data import (  # noqa: E402
    DEFAULT_STD_FLOORS,
    Episode,
    SplitError,
    compute_normalization,
    load_episodes,
    split_episodes,
)
from asyncvla_training.data.windows import SensorWindows  # noqa: E402

KEYS = {"state_mean", "state_std", "sensor_mean", "sensor_std", "action_mean", "action_std"}


@pytest.fixture(scope="module")
def episodes(tmp_path_factory: pytest.TempPathFactory) -> list[Episode]:
    root = tmp_path_factory.mktemp("stats")
    write_synthetic_bag(root / "a", "mcap", SyntheticBagSpec(duration=2.0))
    write_synthetic_bag(root / "b", "sqlite3",
                        SyntheticBagSpec(duration=2.4, start_ns=1_700_000_100_000_000_000))
    return load_episodes(root)


def test_statistics_equal_brute_force(episodes: list[Episode]) -> None:
    stats = compute_normalization(episodes)
    assert set(stats) == KEYS
    states = np.concatenate([e.states for e in episodes]).astype(np.float64)
    actions = np.concatenate([e.actions for e in episodes]).reshape(-1, 7).astype(np.float64)
    windows = np.concatenate([np.asarray(e.sensor_windows) for e in episodes])
    windows = windows.reshape(-1, 1026).astype(np.float64)
    for name, values, floor in (("state", states, DEFAULT_STD_FLOORS["state"]),
                                ("sensor", windows, DEFAULT_STD_FLOORS["sensor"]),
                                ("action", actions, DEFAULT_STD_FLOORS["action"])):
        assert stats[f"{name}_mean"].dtype == np.float32
        np.testing.assert_allclose(stats[f"{name}_mean"], values.mean(axis=0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(stats[f"{name}_std"], np.maximum(values.std(axis=0), floor),
                                   rtol=1e-4, atol=1e-6)
    assert stats["state_std"].shape == (13,) and stats["sensor_std"].shape == (1026,)
    assert stats["action_std"].shape == (7,)


def test_constant_dimensions_get_the_floor(episodes: list[Episode]) -> None:
    stats = compute_normalization(episodes)
    assert stats["action_std"][6] == np.float32(DEFAULT_STD_FLOORS["action"])  # tool is always 1.0
    assert stats["action_mean"][6] == 1.0
    assert np.all(stats["state_std"] >= DEFAULT_STD_FLOORS["state"])
    custom = compute_normalization(episodes, {"action": 0.5})
    assert custom["action_std"][6] == 0.5 and np.all(custom["action_std"] >= 0.5)


def test_statistics_load_into_the_policy(episodes: list[Episode]) -> None:
    stats = compute_normalization(episodes)
    policy = ActionPolicy(tiny_policy_config(vl_dim=16, vl_num_tokens=2))
    policy.load_normalization(stats)
    got = policy.normalization_dict()
    for key in KEYS:
        np.testing.assert_array_equal(got[key], stats[key])
    actions = torch.from_numpy(episodes[0].actions)
    normalized = policy.normalize_actions(actions)
    assert float(normalized[..., :6].abs().max()) < 10.0  # no exploding dimension


def test_overlapping_windows_are_weighted() -> None:
    rows = np.arange(12, dtype=np.float32).reshape(6, 2)
    windows = SensorWindows(rows, np.array([3, 4, 4]), 3)
    np.testing.assert_array_equal(windows.row_weights(), [1, 3, 3, 2, 0, 0])
    ep = _episode("w", 3)
    ep = replace(ep, sensor_windows=windows)
    stats = compute_normalization([ep], {"sensor": 1e-9})
    brute = np.asarray(windows).reshape(-1, 2)
    np.testing.assert_allclose(stats["sensor_mean"], brute.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(stats["sensor_std"], brute.std(axis=0), rtol=1e-5)


def _episode(name: str, n: int = 2) -> Episode:
    return Episode(name=name, step_period=0.1, times_ns=np.arange(n, dtype=np.int64) * 100_000_000,
                   views=("view1",), frame_stamps_ns=np.zeros((n, 1), dtype=np.int64),
                   sensor_windows=np.ones((n, 3, 2), dtype=np.float32),
                   states=np.full((n, 13), float(len(name)), dtype=np.float32),
                   actions=np.zeros((n, 4, 7), dtype=np.float32), action_space="ee_delta",
                   prompt="p", load_frames=lambda i: [])


def test_split_is_by_recording_and_deterministic() -> None:
    names = [f"run{i:02d}" for i in range(10)] + ["run03#0", "run03#1"]
    names.remove("run03")
    eps = [_episode(n) for n in names]
    train, val = split_episodes(eps, val_fraction=0.2, seed=7)
    assert len({e.name.split("#")[0] for e in val}) == 2
    assert {e.name for e in train}.isdisjoint({e.name for e in val})
    assert len(train) + len(val) == len(eps)
    segments = [e for e in train + val if e.name.startswith("run03")]
    assert all((e in val) == (segments[0] in val) for e in segments)  # never split across sides
    again_train, again_val = split_episodes(list(reversed(eps)), val_fraction=0.2, seed=7)
    assert sorted(e.name for e in again_val) == sorted(e.name for e in val)
    others = {tuple(sorted(e.name for e in split_episodes(eps, 0.2, seed=s)[1])) for s in range(8)}
    assert len(others) > 1  # the original system matters


def test_split_rules_for_small_sets() -> None:
    one, two = [_episode("a")], [_episode("a"), _episode("b")]
    with pytest.raises(SplitError, match="1 recording"):
        split_episodes(one, val_fraction=0.1)
    train, val = split_episodes(two, val_fraction=0.1)  # rounds to 0 but val needs >= 1
    assert len(train) == 1 and len(val) == 1
    with pytest.raises(SplitError):
        split_episodes(two, val_fraction=0.1, min_val_episodes=2)
    train, val = split_episodes(one, val_fraction=0.0)
    assert [e.name for e in train] == ["a"] and val == []
    with pytest.raises(SplitError):
        split_episodes(two, val_fraction=1.0)


def test_statistics_need_samples() -> None:
    with pytest.raises(ValueError):
        compute_normalization([])
