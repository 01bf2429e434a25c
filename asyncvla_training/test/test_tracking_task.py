"""The moving-target task is honest: no input but the picture says where the target is, no input
at all says how much time has passed, and a stale picture is wrong by exactly what the age and
the velocity say (tools/asyncvla_testing/tracking_task.py, through the real bag writer and reader)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from asyncvla_testing import tracking_task as task
from asyncvla_testing.synthetic_bag import write_synthetic_bag
from asyncvla_training.train.config import TrainConfig
from asyncvla_training.train.data_sources import load_bag_episodes

CFG = TrainConfig(views=["world"], dataset={"aline_length": task.ALINE_LENGTH})


def _write(directory: Path, scenes: list[task.TrackingScene], size=(140, 140)) -> list:
    paths = []
    for n, scene in enumerate(scenes):
        path = directory / f"ep_{n:03d}"
        write_synthetic_bag(path, "mcap", task.episode_spec(
            scene, 3.0, size, 1_700_000_000_000_000_000 + n * 10**11))
        paths.append(str(path))
    return load_bag_episodes(paths, CFG)


def _scenes(count: int, seed: int, dynamic: bool = True) -> list[task.TrackingScene]:
    rng = np.random.default_rng(seed)
    return [task.draw_scene(rng, dynamic) for _ in range(count)]


def _probe_r2(train, test) -> float:
    """Held-out R^2 of a ridge regression (dual form) of elapsed recording time on the sensor
    window and the robot state: how much of the clock those inputs give away."""
    def xy(episodes):
        x = np.concatenate([np.concatenate([np.asarray(ep.sensor_windows[:]).reshape(len(ep), -1),
                                            np.asarray(ep.states) * 1e3], axis=1)
                            for ep in episodes])
        y = np.concatenate([(np.asarray(ep.times_ns) - ep.times_ns[0]) / 1e9 for ep in episodes])
        return x.astype(np.float64), y

    x_train, y_train = xy(train)
    x_test, y_test = xy(test)
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    x_train, x_test = (x_train - mu) / sd, (x_test - mu) / sd
    gram = x_train @ x_train.T
    lam = 1e-2 * np.trace(gram) / len(gram)
    alpha = np.linalg.solve(gram + lam * np.eye(len(gram)), y_train - y_train.mean())
    pred = x_test @ (x_train.T @ alpha) + y_train.mean()
    return float(1.0 - np.mean((pred - y_test) ** 2) / np.var(y_test))


@pytest.fixture(scope="module")
def honest(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tracking")
    scenes = _scenes(10, seed=11)
    return scenes, _write(directory, scenes, size=(56, 56))


def test_no_input_but_the_picture_is_a_clock(honest, tmp_path) -> None:
    """A ridge probe on the sensor window and the state explains under 10 % of the variance of
    elapsed time on held-out episodes. The same probe on a leaky twin, whose episodes share one
    noise sequence (as the earlier task's index-keyed noise did), reads the clock almost
    perfectly: the check can fail."""
    scenes, episodes = honest
    r2 = _probe_r2(episodes[:7], episodes[7:])
    assert r2 < 0.10, r2
    leaky = [dataclasses.replace(s, noise_seed=12345) for s in scenes]
    leaky_episodes = _write(tmp_path, leaky, size=(56, 56))
    assert _probe_r2(leaky_episodes[:7], leaky_episodes[7:]) > 0.5


def test_the_recording_follows_the_servo_law(honest) -> None:
    """The recorded lateral chunk is the analytic one: tip(t + tau) - tip(t), the tip closing on
    the target's current position at the servo gain, from frames that start LEAD_IN earlier."""
    scenes, episodes = honest
    for scene, ep in zip(scenes, episodes):
        t = (np.asarray(ep.times_ns) - 1_700_000_000_000_000_000 - 10**11 * episodes.index(ep)) / 1e9
        tau = ep.step_period * np.arange(1, 9)
        # Offsets from the state at t: the newest pose message (100 Hz) at or before t.
        want = scene.tip(t[:, None] + tau)[..., 1] - np.asarray(ep.states, np.float64)[:, 7:8]
        np.testing.assert_allclose(np.asarray(ep.actions)[..., 1], want, atol=5e-6)
        assert t[0] >= task.LEAD_IN  # the first action time follows the lead-in
        assert ep.frame_set_ready_ns(0) <= ep.times_ns[0] - 600_000_000  # 600+ ms of frames


def test_the_picture_shows_where_the_target_is_and_colour_codes_its_velocity() -> None:
    rng = np.random.default_rng(4)
    for dynamic in (True, False):
        scene = task.draw_scene(rng, dynamic)
        content = task.TrackingContent(scene, task.TrackingMotion(scene))
        import cv2

        for t in (0.2, 1.5, 3.0):
            image = cv2.imdecode(np.frombuffer(content.jpeg(0, 0, t, 140, 140), np.uint8), 1)
            weight = image.astype(np.float64).sum(axis=2) - 180.0
            weight = np.clip(weight, 0, None) ** 2
            vv, uu = np.nonzero(weight >= 0.25 * weight.max())
            u, v = np.average(uu, weights=weight[vv, uu]), np.average(vv, weights=weight[vv, uu])
            tx, ty = scene.target(np.array([t]))[0]
            scale = 140 / task.FIELD_OF_VIEW
            assert abs(u - (70 - (ty - task.NOMINAL_POSITION[1]) * scale)) < 2.0
            assert abs(v - (70 - (tx - task.NOMINAL_POSITION[0]) * scale)) < 2.0
            b, g, r = image[int(round(v)), int(round(u))].astype(int)
            if dynamic:
                assert np.sign(r - b) == np.sign(scene.velocity)  # red to +y, blue to -y
            else:
                assert abs(r - b) < 15  # grey at rest


def test_staleness_costs_on_the_moving_target_only() -> None:
    """A perfect reader of the picture that assumes it is fresh is wrong by v * age * (1 - e^-g tau)
    on the dynamic task; on the static one a stale picture is right."""
    assert task.oracle_lateral_nmse(0.0) == 0.0
    assert task.oracle_lateral_nmse(0.3) > 0.1
    assert task.oracle_lateral_nmse(0.6) > 3 * task.oracle_lateral_nmse(0.3)
    assert task.oracle_lateral_nmse(0.35, trained_mean_age_s=0.35) == 0.0
    static = task.draw_scene(np.random.default_rng(0), dynamic=False)
    t = np.linspace(0.0, 3.0, 8)
    np.testing.assert_allclose(static.target(t), static.target(t - 0.6))
