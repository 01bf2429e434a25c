"""``expert_runtime: auto`` (models/expert_runtimes/auto.py): the fastest candidate within the
error bound wins, a too-inaccurate one never does however fast, the start-up budget stops the
measuring, and the choice is cached under a key of the CPU, the checkpoint, the libraries, the
threads and the bound. Fake runtimes (a known error, a known time per call on a fake timer) make
the decisions exact; one test runs the real runtimes on a tiny policy."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from asyncvla_policy.config import tiny_policy_config
from asyncvla_policy.expert_runtimes import BackendUnavailable
from asyncvla_policy.expert_runtimes import auto
from asyncvla_policy.policy import ActionPolicy


@pytest.fixture
def policy():
    torch.manual_seed(3)
    cfg = tiny_policy_config(vl_dim=16, vl_num_tokens=4)
    policy = ActionPolicy(cfg).eval()
    rng = np.random.default_rng(3)
    c, s = cfg.sensor.in_channels, cfg.robot_state_dim
    policy.set_normalization(
        sensor_mean=rng.normal(0, 5, c).astype(np.float32),
        sensor_std=rng.uniform(0.5, 20, c).astype(np.float32),
        state_mean=rng.normal(0, 1, s).astype(np.float32),
        state_std=rng.uniform(0.05, 1, s).astype(np.float32),
        action_mean=rng.normal(0, 0.01, 7).astype(np.float32),
        action_std=rng.uniform(0.001, 0.05, 7).astype(np.float32))
    return policy


class FakeTimer:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Fake:
    """A runtime whose output is float32's plus ``error`` action_std, and whose predict takes
    ``ms`` on the fake timer."""

    def __init__(self, name, policy, error, ms, timer) -> None:
        self.name, self.policy, self.error, self.ms, self.timer = name, policy, error, ms, timer

    def predict(self, *args):
        self.timer.now += self.ms / 1e3
        return self.policy.predict(*args) + self.error * self.policy.action_std.numpy()


def fake_builder(spec, timer, clock=None, build_s=0.0, log=None):
    """``build`` for choose_runtime: name -> (error, ms) from ``spec``; a missing name is
    unavailable; a spec of an exception raises it. Each build advances ``clock`` by build_s."""
    def build(name, policy, threads=0, cache_dir=None):
        if log is not None:
            log.append(name)
        if clock is not None:
            clock.now += build_s
        if name not in spec:
            raise BackendUnavailable(f"expert_runtime {name!r} needs pkg: pip install pkg")
        if isinstance(spec[name], Exception):
            raise spec[name]
        error, ms = spec[name]
        return Fake(name, policy, error, ms, timer)
    return build


SPEC = {"torch_float32": (0.0, 40.0), "openvino_int8_dynamic": (2e-2, 8.0),
        "openvino_float32": (1e-6, 14.0), "openvino_int8": (9e-3, 15.0),
        "ort_float32": (1e-6, 20.0), "torchao_int8": (8e-3, 50.0),
        "torch_bf16_weights": (1.1e-2, 12.0)}


def choose(policy, spec, tmp_path=None, **kwargs):
    timer = kwargs.pop("timer", None) or FakeTimer()
    kwargs.setdefault("build", fake_builder(spec, timer))
    return auto.choose_runtime(policy, cache_dir=tmp_path, probes=3, calls=5, timer=timer,
                               **kwargs)


def test_the_fastest_within_the_bound_wins_and_a_faster_inaccurate_one_never_does(policy):
    runtime, choice = choose(policy, SPEC)
    assert runtime.name == choice.name == "openvino_float32"
    status = {c.name: c.status for c in choice.candidates}
    assert status["openvino_int8_dynamic"] == "too_inaccurate"  # 8 ms, but 2e-2 > 1e-2
    assert status["torch_bf16_weights"] == "too_inaccurate"  # 12 ms, but 1.1e-2
    assert status["openvino_float32"] == "chosen" and status["ort_float32"] == "ok"
    assert status["ort_int8"] == "unavailable"  # not in SPEC: its package is "missing"
    figures = choice.candidate("openvino_float32")
    assert figures.p50_ms == pytest.approx(14.0) and figures.max_error < 1e-5
    assert choice.candidate("openvino_int8_dynamic").max_error == pytest.approx(2e-2, rel=1e-3)
    # a looser bound lets the int8 one win: the bound is what decides
    assert choose(policy, SPEC, max_error=3e-2)[0].name == "openvino_int8_dynamic"


def test_the_reference_comes_first_and_is_the_fallback(policy):
    spec = {"torch_float32": (0.0, 40.0), "openvino_int8_dynamic": (0.5, 1.0),
            "openvino_float32": RuntimeError("conversion failed")}
    runtime, choice = choose(policy, spec)
    assert choice.candidates[0].name == "torch_float32"
    assert runtime.name == "torch_float32"
    failed = choice.candidate("openvino_float32")
    assert failed.status == "failed" and "conversion failed" in failed.note
    assert "openvino_float32 failed" in choice.summary()


def test_the_start_up_budget_stops_the_measuring(policy):
    timer, clock, built = FakeTimer(), FakeTimer(), []
    build = fake_builder(SPEC, timer, clock, build_s=10.0, log=built)
    runtime, choice = choose(policy, SPEC, build=build, clock=clock, timer=timer, budget_s=25.0)
    # reference (t=0 -> 10), int8_dynamic (10 -> 20), openvino_float32 (20 -> 30), then stop
    assert built == ["torch_float32", "openvino_int8_dynamic", "openvino_float32"]
    assert runtime.name == "openvino_float32"
    skipped = [c.name for c in choice.candidates if c.status == "skipped"]
    assert skipped == ["openvino_int8", "ort_float32", "torchao_int8", "torch_bf16_weights",
                       "ort_int8"]
    assert all("budget 25 s" in c.note for c in choice.candidates if c.status == "skipped")
    # a zero budget still measures the reference: there is always a choice
    clock.now, built[:] = 0.0, []
    assert choose(policy, SPEC, build=build, clock=clock, timer=timer,
                  budget_s=0.0)[0].name == "torch_float32"
    assert built == ["torch_float32"]


def test_the_choice_is_cached_and_a_restart_builds_only_the_chosen(policy, tmp_path):
    runtime, first = choose(policy, SPEC, tmp_path)
    assert not first.cached and first.cache_file.startswith(str(tmp_path))
    saved = json.loads((tmp_path / f"auto-{first.key}.json").read_text())
    assert saved["choice"]["name"] == "openvino_float32"
    assert saved["key"]["cpu_flags"] == auto.cpu_flags()  # the CPU is part of the key
    assert saved["key"]["libraries"]["torch"] and saved["key"]["cpu_model"]
    assert saved["key"]["checkpoint"] == auto.policy_digest(policy)
    built = []
    timer = FakeTimer()
    again_runtime, again = choose(policy, SPEC, tmp_path, timer=timer,
                                  build=fake_builder(SPEC, timer, log=built))
    assert built == ["openvino_float32"] and again.cached and again.key == first.key
    assert again_runtime.name == "openvino_float32" and again.recheck_error < 1e-5
    assert [c.name for c in again.candidates] == [c.name for c in first.candidates]
    assert again.values()["chosen_by"] == "auto (cached)"


@pytest.mark.parametrize("change", ["max_error", "threads", "weights", "cpu_flags", "library"])
def test_the_cache_key_changes_with_what_the_choice_depends_on(policy, tmp_path, monkeypatch,
                                                               change):
    _, first = choose(policy, SPEC, tmp_path)
    kwargs = {}
    if change == "max_error":
        kwargs["max_error"] = 2e-2
    elif change == "threads":
        kwargs["threads"] = 3
    elif change == "weights":
        with torch.no_grad():
            policy.action_expert.head.weight.add_(1e-3)
    elif change == "cpu_flags":
        monkeypatch.setattr(auto, "cpu_flags", lambda: ["avx2", "fma"])
    else:
        versions = auto.library_versions()
        monkeypatch.setattr(auto, "library_versions", lambda: {**versions, "openvino": "0.0"})
    _, second = choose(policy, SPEC, tmp_path, **kwargs)
    assert second.key != first.key and not second.cached


def test_a_cached_choice_that_no_longer_meets_the_bound_is_measured_again(policy, tmp_path):
    _, first = choose(policy, SPEC, tmp_path)
    worse = {**SPEC, "openvino_float32": (5e-2, 14.0)}  # e.g. a kernel library changed
    runtime, again = choose(policy, worse, tmp_path)
    assert not again.cached and runtime.name == "openvino_int8"  # 15 ms, 9e-3
    saved = json.loads((tmp_path / f"auto-{again.key}.json").read_text())
    assert saved["choice"]["name"] == "openvino_int8"


def test_without_a_cache_directory_it_says_so(policy):
    _, choice = choose(policy, SPEC)
    assert not choice.cache_file and "not cached" in choice.summary()


def test_probe_inputs_are_at_the_checkpoints_scale(policy):
    probes = auto.probe_inputs(policy, count=64, seed=1)
    again = auto.probe_inputs(policy, count=64, seed=1)  # the same probes at every start
    assert all(np.array_equal(a[1], b[1]) and a[3] == b[3] for a, b in zip(probes, again))
    windows = np.stack([p[1] for p in probes])  # (64, T, C)
    mean, std = policy.sensor_mean.numpy(), policy.sensor_std.numpy()
    z = (windows - mean) / std
    assert abs(float(z.mean())) < 0.05 and abs(float(z.std()) - 1.0) < 0.05
    states = np.stack([p[2] for p in probes])
    zs = (states - policy.state_mean.numpy()) / policy.state_std.numpy()
    assert abs(float(zs.std()) - 1.0) < 0.15
    ages = [p[3] for p in probes]
    assert min(ages) >= 0.0 and max(ages) <= auto.PROBE_MAX_AGE_S and max(ages) > 0.5
    for vl, window, state, _ in probes:  # every probe passes the policy's own input checks
        policy.validated_inputs(vl, window, state)


def test_a_bad_bound_or_candidate_is_refused(policy):
    with pytest.raises(ValueError, match="max_runtime_error must be positive"):
        choose(policy, SPEC, max_error=0.0)
    with pytest.raises(ValueError, match="unknown candidate"):
        choose(policy, SPEC, candidates=("torch_float32", "tensorrt"))


def test_real_runtimes_on_a_tiny_policy(policy, tmp_path):
    """The real runtimes: the choice is within the bound on fresh inputs too, and its figures
    are what /diagnostics gets."""
    pytest.importorskip("openvino")
    runtime, choice = auto.choose_runtime(
        policy, threads=1, cache_dir=tmp_path, max_error=1e-2, probes=4, calls=5,
        candidates=("torch_float32", "openvino_float32", "openvino_int8_dynamic"))
    chosen = choice.candidate(choice.name)
    assert chosen.status == "chosen" and chosen.max_error <= 1e-2 and chosen.p50_ms > 0
    fresh = auto.probe_inputs(policy, count=3, seed=99)
    error = auto.largest_error(runtime.predict, [policy.predict(*p) for p in fresh], fresh,
                               policy.action_std.numpy())
    assert error <= 1e-2
    values = choice.values()
    assert values["expert_runtime"] == choice.name and values["max_runtime_error"] == 1e-2
    assert {f"candidate {n}" for n in ("torch_float32", "openvino_float32",
                                       "openvino_int8_dynamic")} <= set(values)
    _, again = auto.choose_runtime(
        policy, threads=1, cache_dir=tmp_path, max_error=1e-2, probes=4, calls=5,
        candidates=("torch_float32", "openvino_float32", "openvino_int8_dynamic"))
    assert again.cached and again.name == choice.name
