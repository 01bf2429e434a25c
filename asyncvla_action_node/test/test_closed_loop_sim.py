"""The closed loop of the suite's own cores on the moving target, in simulated time
(tools/asyncvla_testing/closed_loop_sim.py; tools/bench/bench_closed_loop.py is the full size).

The simulator is checked against a scripted expert first (so a failure below is the policy's,
not the harness's), then a CI-sized trained policy: at 1.5 s of VLM latency the suite, acting at
10 Hz on stale features with their age, reaches the target more often than the synchronous loop
that waits for fresh features before every action.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))

from asyncvla_testing import closed_loop_sim as sim  # noqa: E402
from asyncvla_testing import tracking_task as task  # noqa: E402


class Oracle:
    """An expert that reads the truth instead of the features: the recorded servo law applied
    to where the target is now (a perfect, age-aware policy)."""

    def __init__(self, scene: task.TrackingScene) -> None:
        self.scene = scene

    def __call__(self, vl, window, state, age) -> np.ndarray:
        now = self.now
        tau = 0.1 * np.arange(1, 9)
        target = self.scene.target(np.array([now]))[0]
        tip = np.asarray(state[6:8], dtype=np.float64)
        e = target - tip
        moves = e[None, :] * (1 - np.exp(-task.SERVO_GAIN * tau))[:, None] \
            + np.array([0.0, self.scene.velocity])[None, :] * tau[:, None]
        out = np.zeros((8, 7), np.float32)
        out[:, :2] = moves
        out[:, 6] = 1.0
        return out


class ZeroFeatures:
    def __call__(self, scene, frame_time_ns):
        return np.zeros((4, 8), np.float32)


def _oracle_run(scene, mode, latency=0.3):
    oracle = Oracle(scene)

    def predict(vl, window, state, age):
        return oracle(vl, window, state, age)

    # The simulator calls predict at the tick time: give the oracle the clock it would read.
    original = sim.ActionCore.tick

    def tick(core, now_ns):
        oracle.now = now_ns / 1e9
        return original(core, now_ns)

    sim.ActionCore.tick = tick
    try:
        return sim.run_episode(scene, predict, ZeroFeatures(), "m", sim.LatencyModel(latency), mode)
    finally:
        sim.ActionCore.tick = original


def test_the_harness_lets_a_perfect_policy_succeed_and_a_silent_one_fail() -> None:
    rng = np.random.default_rng(3)
    scenes = [task.draw_scene(rng, True, feedforward=True) for _ in range(4)]
    suite = sim.Mode("suite", max_vl_age=3.5)
    results = [_oracle_run(s, suite) for s in scenes]
    assert all(r.success for r in results), [r.as_dict() for r in results]
    assert all(r.chunks >= 20 for r in results)
    # Synchronous at 1.5 s: one action per update (two in the 2.5 s): the target escapes.
    sync = sim.Mode("sync", synchronous=True, one_action_per_update=True, max_vl_age=3.5)
    slow = [_oracle_run(s, sync, latency=1.5) for s in scenes]
    assert not any(r.success for r in slow) and all(r.chunks <= 2 for r in slow)
    # The suite at 1.5 s: the first features are there at the start (the VLM ran before), then
    # one update per 1.5 s, acted on at every 100 ms tick: the perfect policy still succeeds.
    late = [_oracle_run(s, suite, latency=1.5) for s in scenes]
    assert all(r.success for r in late) and all(r.chunks >= 20 for r in late)
    # Features older than max_vl_age are refused: nothing moves.
    refused = _oracle_run(scenes[0], sim.Mode("shipped", max_vl_age=1.0), latency=1.5)
    assert not refused.success and refused.refusals.get("vl_stale", 0) > 10


def test_handover_smoothness_sees_a_jump() -> None:
    settings = sim.LoopSettings()
    smooth = [(i * 10_000_000, np.array([i * 1e-4, 0.0, 0.0])) for i in range(50)]
    jumpy = [(t, p + (np.array([2e-3, 0, 0]) if t >= 250_000_000 else 0)) for t, p in smooth]
    n, jump, jerk = sim.handover_smoothness(smooth, [250_000_000], settings)
    assert n == 1 and jump < 1e-12 and jerk < 1e-6  # constant speed: no kink, however fast
    _, jump, jerk = sim.handover_smoothness(jumpy, [250_000_000], settings)
    assert jump == pytest.approx(2e-3) and jerk > 1e3


def test_wilson_interval() -> None:
    lo, hi = sim.wilson_interval(10, 20)
    assert lo == pytest.approx(0.299, abs=1e-3) and hi == pytest.approx(0.701, abs=1e-3)
    assert sim.wilson_interval(0, 20)[0] == 0.0 and sim.wilson_interval(20, 20)[1] == 1.0


# ------------------------------------------------------------------ a CI-sized trained policy
CI_SETTINGS = dict(train_episodes=64, test_episodes=16, steps=800, warmup_steps=25, batch_size=16,
                   seeds=(0,))


@pytest.mark.timeout(900)
def test_a_ci_sized_policy_beats_the_synchronous_loop_at_1_5_s(tmp_path) -> None:
    """At 1.5 s of VLM latency (the original system's 5-view figure) the suite, acting at 10 Hz
    on features with their age (ages 0-3.5 s in training, temporal ensemble), ends at most half
    as far from the moving target as the synchronous loop (one action per VL update, as the
    original's synchronous mode) and succeeds at least as often; at 0.6 s it succeeds at least
    twice as often. A CI-sized policy (64 recordings, 800 steps) rarely reaches the 1 mm
    tolerance at 1.5 s (the full-size run, tools/bench/bench_closed_loop.py, does in a third of
    the episodes: docs/benchmarks/closed_loop.json), so its 1.5 s claim is the final error."""
    import torch

    from asyncvla_policy.expert_runtimes import build_runtime
    from asyncvla_testing.staleness_experiment import StalenessSettings, prepare_task, train_policy

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        settings = StalenessSettings(**CI_SETTINGS)
        data = prepare_task("dynamic", settings, tmp_path, feedforward=True)
        policy = train_policy(data, "A", settings, 0, tmp_path / "runs" / "A", lambda line: None,
                              vl_age_ms=[0.0, 3500.0])[0]
        predict = build_runtime("torch_float32", policy, threads=2).predict
        features = sim.FeatureSource(data.extractor, settings.image_size)
        sync = sim.Mode("synchronous, one action per update", synchronous=True,
                        one_action_per_update=True, max_vl_age=3.5)
        suite = sim.Mode("suite + age input, temporal_ensemble", blending="temporal_ensemble",
                         max_vl_age=3.5)
        runs = {(latency, mode.name): [sim.run_episode(scene, predict, features, data.model_id,
                                                       sim.LatencyModel(latency), mode)
                                       for scene in data.test_scenes]
                for latency in (0.6, 1.5) for mode in (sync, suite)}
    finally:
        torch.set_num_threads(threads)
    wins = {k: sum(r.success for r in rows) for k, rows in runs.items()}
    final = {k: round(float(np.median([r.final_error_m for r in rows])) * 1e3, 2)
             for k, rows in runs.items()}
    print("CLOSED LOOP CI", wins, final)
    assert all(len(rows) == CI_SETTINGS["test_episodes"] for rows in runs.values())
    fast_suite, fast_sync = (0.6, suite.name), (0.6, sync.name)
    slow_suite, slow_sync = (1.5, suite.name), (1.5, sync.name)
    assert final[slow_suite] <= 0.5 * final[slow_sync], (wins, final)
    assert wins[slow_suite] >= wins[slow_sync], (wins, final)
    # Measured (seeded, 2 cores): 0.6 s suite 3/16 successes, final 3.3 mm; synchronous 0/16,
    # 9.2 mm; 1.5 s suite 0/16, 3.9 mm; synchronous 0/16, 12.7 mm.
    assert wins[fast_suite] >= max(2 * wins[fast_sync], 2), (wins, final)
    # the suite acted at 10 Hz on stale features, the synchronous loop twice in 2.5 s
    assert min(r.chunks for r in runs[slow_suite]) >= 20
    assert max(r.chunks for r in runs[slow_sync]) <= 2
