"""The insertion task family and the ablation feature providers (fast), and the CI-sized learning
experiment (slow: trains three tiny policies on CPU).

The task tests read the recordings back through the project's bag reader and check the scene's
promises from what the reader returns: the prompt is the bag's recorded prompt, the lateral
direction of the recorded motion is the prompt's side, the picture shows the named marker moving
to the centre, the force/OCT window responds to contact, and the start state does not give the
side away by construction (mirrored scenes share their absolute target placement).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
if getattr(sys.modules.get("asyncvla_training"), "__file__", "") is None:
    del sys.modules["asyncvla_training"]

from asyncvla_training.data.bag_dataset import BagDatasetConfig, load_episodes  # noqa: E402
from asyncvla_training.testing import insertion_task as task  # noqa: E402
from asyncvla_training.train.features import (  # noqa: E402
    CachedFeatureProvider, ShuffledFeatureProvider, ZeroFeatureProvider)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory):
    written = task.write_insertion_bags(tmp_path_factory.mktemp("insertion"), 2, seed=3,
                                        duration=4.0, image_size=(112, 112))
    episodes = load_episodes([str(p) for p, _ in written], BagDatasetConfig.from_dict({"views": ["tool"]}))
    return written, episodes


def test_prompt_is_recorded_per_episode_and_sets_the_lateral_direction(recorded) -> None:
    written, episodes = recorded
    assert [sc.side for _, sc in written] == [1, -1]  # balanced: sides alternate
    for ep, (_, scene) in zip(episodes, written):
        assert ep.prompt == task.PROMPTS[scene.side]
        lateral = np.asarray(ep.actions)[:, -1, 1]
        assert np.all(np.sign(lateral) == scene.side), ep.name
        # The remaining offset shrinks by exp(-g dt) per period: the expert's servo.
        ratio = lateral[1:] / lateral[:-1]
        np.testing.assert_allclose(ratio, np.exp(-task.SERVO_GAIN * ep.step_period), rtol=0.02)


def test_force_and_oct_respond_to_contact(recorded) -> None:
    written, episodes = recorded
    for ep, (_, scene) in zip(episodes, written):
        t = (np.asarray(ep.times_ns) - ep.times_ns[0]) / 1e9 + 0.1  # ~ seconds since the start
        force = np.asarray(ep.sensor_windows[:])[:, -1, 0]
        contact = scene.surface_distance / task.FREE_SPEED
        before, after = force[t < contact - 0.2], force[t > contact + 0.5]
        assert before.size and after.size
        assert np.all(np.abs(before) < 0.02) and np.all(after > 0.05)  # 0.3 mm/s x 0.5 N/mm
        aline = np.asarray(ep.sensor_windows[0])[-1, 1:]
        expected = task._SURFACE_INDEX0 + task._SURFACE_INDEX_PER_M * (scene.surface_distance - 0.1e-3)
        assert abs(int(np.argmax(aline)) - expected) < 15  # surface peak at its distance


def test_camera_shows_the_named_marker_closing_in(recorded) -> None:
    _, episodes = recorded
    for ep in episodes:
        first = ep.load_frames(int(ep.sample_frame_sets[0]))[0]
        last = ep.load_frames(int(ep.sample_frame_sets[-1]))[0]
        green = lambda im: (im[..., 1] > 150) & (im[..., 0] < 100)  # noqa: E731
        centre = first.shape[0] // 2
        def nearest(im):
            ys, xs = np.nonzero(green(im))
            return np.min(np.hypot(xs - centre, ys - centre))
        assert nearest(last) < nearest(first) - 5


def test_mirrored_scene_keeps_the_target_placement() -> None:
    scene = task.draw_episode(np.random.default_rng(0))
    other = task.mirrored(scene)
    assert other.side == -scene.side and other.prompt != scene.prompt
    a = np.add(scene.start[:2], scene.target_offset)
    b = np.add(other.start[:2], other.target_offset)
    np.testing.assert_allclose(a, b)


class _Indexed:
    model_id, adapter_id = "m", ""

    def __call__(self, episode, index):
        return np.full((2, 3), 100 * int(episode.name[-1]) + index, dtype=np.float32)


class _Ep:
    def __init__(self, name, n):
        self.name, self.n = name, n

    def __len__(self):
        return self.n


def test_zero_and_shuffled_providers() -> None:
    base = _Indexed()
    eps = [_Ep("e1", 4), _Ep("e2", 3)]
    zero = ZeroFeatureProvider(base)
    assert zero.model_id == "m" and not np.any(zero(eps[0], 2)) and zero(eps[1], 0).shape == (2, 3)
    shuffled = ShuffledFeatureProvider(base, eps, seed=1)
    got = {(e.name, i): float(shuffled(e, i)[0, 0]) for e in eps for i in range(len(e))}
    own = {(e.name, i): float(base(e, i)[0, 0]) for e in eps for i in range(len(e))}
    assert sorted(got.values()) == sorted(own.values())  # a permutation of the pool
    assert all(got[k] != own[k] for k in got)  # nobody keeps its own features
    assert got == {(e.name, i): float(ShuffledFeatureProvider(base, eps, seed=1)(e, i)[0, 0])
                   for e in eps for i in range(len(e))}  # seeded
    with pytest.raises(KeyError, match="shuffled pool"):
        shuffled(_Ep("e3", 1), 0)
    assert isinstance(CachedFeatureProvider(base, "m"), CachedFeatureProvider)


# CI-sized experiment. It asserts only what the default benchmark and this size both showed with
# a wide margin: the lateral error of the full policy far below the VL-ablated twin's (0.14x at
# the default size, 0.15x here) and below the shuffled-features error. Not asserted: the prompt
# swap's flip rate (76 % default, 21 % here; 100 % only with 96 scenes) and the reuse-4 advantage
# at 300 ms (0.9 % default, 4.6 % with 96 scenes), which small runs do not show.
# 150 steps on 6 scenes learnt nothing (lateral 2.03 vs 1.91 ablated): the lateral sign needs a
# few hundred steps. Reuse 4 is left out here.
CI_SETTINGS = dict(train_episodes=8, test_episodes=2, duration=4.0, steps=500, batch_size=16,
                   warmup_steps=25, reuses=(1,))


@pytest.mark.timeout(900)  # 106 s alone on 2 shared cores, 273 s beside other jobs (measured)
def test_ci_learning_experiment(tmp_path: Path) -> None:
    import torch

    from asyncvla_training.testing.learning_experiment import ExperimentSettings, run_experiment

    torch.set_num_threads(1)  # 2 threads on 2 shared cores oversubscribe: measured slower
    started = time.perf_counter()
    result = run_experiment(ExperimentSettings(**CI_SETTINGS), tmp_path)
    elapsed = time.perf_counter() - started
    lateral = result["error"]["lateral"]
    print(f"CI learning experiment: {elapsed:.0f} s; lateral {lateral}; "
          f"flips {result['prompt_swap']['flip_fraction']:.2f}; vl_age {result['vl_age']}")
    assert lateral["full"] < 0.5 * lateral["ablated_twin"], lateral
    assert lateral["full"] < lateral["shuffled_features"], lateral
