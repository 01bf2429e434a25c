"""The action expert's runtimes on a tiny policy: each agrees with float32 within its documented
tolerance, rejects bad input exactly as ``ActionPolicy.predict`` does, and names the pip package
when its backend is missing. Speed is measured by tools/bench/bench_expert_cpu.py, not here."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from asyncvla_policy.config import tiny_policy_config
from asyncvla_policy.expert_runtimes import (RUNTIMES, ExpertRuntime,
                                             build_runtime)
from asyncvla_policy.policy import ActionPolicy

PACKAGE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


@pytest.fixture(scope="module")
def case():
    torch.manual_seed(5)
    cfg = tiny_policy_config(vl_dim=32, vl_num_tokens=4)
    policy = ActionPolicy(cfg).eval()
    with torch.no_grad():  # the age modulation starts as the identity: make the age matter
        policy.action_expert.age.proj.weight.normal_(0.0, 1.0)
    rng = np.random.default_rng(5)
    policy.set_normalization(action_mean=rng.normal(0, 0.1, 7).astype(np.float32),
                             action_std=rng.uniform(0.01, 0.1, 7).astype(np.float32))
    inputs = (rng.standard_normal((4, 32)).astype(np.float32),
              rng.standard_normal((cfg.sensor.window, cfg.sensor.in_channels)).astype(np.float32),
              rng.standard_normal(cfg.robot_state_dim).astype(np.float32),
              np.float32(0.45))  # the VL features' age, s
    fresh = policy.predict(*inputs[:3], 0.0)
    assert float(np.abs(fresh - policy.predict(*inputs)).max()) > 1e-4  # the age matters
    return policy, inputs, policy.predict(*inputs)


@pytest.mark.parametrize("name", list(RUNTIMES))
def test_runtime_agrees_with_float32_within_its_tolerance(case, name, tmp_path):
    policy, inputs, exact = case
    runtime = build_runtime(name, policy, threads=1, cache_dir=tmp_path)
    out = runtime.predict(*inputs)
    assert out.dtype == np.float32 and out.shape == exact.shape
    diff = np.abs(out - exact) / policy.action_std.numpy()  # normalised units
    assert float(diff.max()) <= max(runtime.tolerance, 1e-5), (name, float(diff.max()))
    if name in ("torch_bf16_weights", "torchao_int8", "ort_int8", "openvino_int8",
                "openvino_int8_dynamic"):
        assert float(diff.max()) > 0, "a lower precision that changes nothing did not run"
    assert runtime.weight_bytes() > 0
    np.testing.assert_array_equal(policy.predict(*inputs), exact)  # the policy is untouched


def test_openvino_int8_is_weight_only_on_every_cpu_and_the_dynamic_one_is_not(case, tmp_path):
    """The CPU plugin quantises activations at run time on VNNI/AMX CPUs unless told not to:
    ``openvino_int8`` compiles with it off (float32 activations everywhere), the dynamic one
    with groups of 32; where the CPU has VNNI or AMX the two compute differently."""
    pytest.importorskip("nncf")
    from asyncvla_policy.cpu_info import cpu_flags

    policy, inputs, _ = case
    weight_only = build_runtime("openvino_int8", policy, threads=1, cache_dir=tmp_path)
    dynamic = build_runtime("openvino_int8_dynamic", policy, threads=1, cache_dir=tmp_path)
    assert weight_only.compiled.get_property("DYNAMIC_QUANTIZATION_GROUP_SIZE") == 0
    assert dynamic.compiled.get_property("DYNAMIC_QUANTIZATION_GROUP_SIZE") == 32
    assert str(weight_only.compiled.get_property("INFERENCE_PRECISION_HINT")) in (
        "<Type: 'float32'>", "f32")
    # one conversion for both (the dynamic runtime compiles openvino_int8's cached model)
    assert len(list(tmp_path.glob("openvino_int8-*.xml"))) == 1
    assert not list(tmp_path.glob("openvino_int8_dynamic-*"))
    if {"avx512_vnni", "avx_vnni", "amx_int8"} & set(cpu_flags()):
        assert not np.array_equal(weight_only.predict(*inputs), dynamic.predict(*inputs))


def test_converted_models_are_cached_by_weight_hash(case, tmp_path):
    policy, inputs, _ = case
    first = build_runtime("openvino_float32", policy, cache_dir=tmp_path)
    cached = sorted(p.name for p in tmp_path.iterdir())
    assert any(n.endswith(".xml") for n in cached), cached
    again = build_runtime("openvino_float32", policy, cache_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == cached  # reused, nothing new
    np.testing.assert_array_equal(again.predict(*inputs), first.predict(*inputs))
    other = ActionPolicy(policy.cfg).eval()  # other weights: another key
    assert other_key(other, tmp_path) != other_key(policy, tmp_path)


def test_conversion_cache_key_changes_with_the_graphs_code(case, tmp_path, monkeypatch):
    """A model converted by other code (another inference plan) is never loaded for this one."""
    from asyncvla_policy.expert_runtimes import base

    before = other_key(case[0], tmp_path)
    monkeypatch.setattr(base, "graph_source_digest", lambda: b"other code")
    assert other_key(case[0], tmp_path) != before


def other_key(policy, tmp_path):
    class Probe(RUNTIMES["openvino_float32"]):
        def prepare(self):
            pass
    return Probe(policy, cache_dir=tmp_path).cache_path("xml").name


BAD_INPUTS = {
    "nan_window": lambda vl, w, s, a: (vl, np.where(np.arange(w.size).reshape(w.shape) == 3,
                                                    np.nan, w), s, a),
    "inf_state": lambda vl, w, s, a: (vl, w, np.full_like(s, np.inf), a),
    "short_window": lambda vl, w, s, a: (vl, w[:-1], s, a),
    "vl_wrong_dim": lambda vl, w, s, a: (vl[:, :-1], w, s, a),
    "state_batched": lambda vl, w, s, a: (vl, w, s[None], a),
    "vl_object": lambda vl, w, s, a: (np.array([object()] * 4), w, s, a),
    "age_missing": lambda vl, w, s, a: (vl, w, s, None),
    "age_nan": lambda vl, w, s, a: (vl, w, s, np.float32("nan")),
    "age_two": lambda vl, w, s, a: (vl, w, s, np.array([a, a])),
}


@pytest.mark.parametrize("bad", list(BAD_INPUTS))
def test_bad_input_fails_as_in_action_policy_predict(case, bad):
    policy, inputs, _ = case
    args = BAD_INPUTS[bad](*inputs)
    with pytest.raises(ValueError) as expected:
        policy.predict(*args)
    runtime = build_runtime("torch_bf16_weights", policy)
    with pytest.raises(ValueError) as got:
        runtime.predict(*args)
    assert str(got.value) == str(expected.value)


def test_every_runtime_validates_through_the_shared_predict():
    """No runtime overrides ``predict``: the checks above hold for all of them."""
    for cls in RUNTIMES.values():
        assert cls.predict is ExpertRuntime.predict, cls.name
        assert cls.name and cls.summary and cls.tolerance >= 0


def test_unknown_runtime_lists_the_choices(case):
    with pytest.raises(ValueError, match="expert_runtime must be one of .*openvino_int8"):
        build_runtime("tensorrt", case[0])


CHILD = textwrap.dedent(r'''
    import json, sys
    for name in sys.argv[2].split(","):
        sys.modules[name] = None  # as if not installed: import fails, find_spec is None
    from asyncvla_policy.config import tiny_policy_config
    from asyncvla_policy.expert_runtimes import build_runtime, BackendUnavailable
    from asyncvla_policy.policy import ActionPolicy
    try:
        build_runtime(sys.argv[1], ActionPolicy(tiny_policy_config(vl_dim=8)))
    except BackendUnavailable as exc:
        print("RESULT " + json.dumps(str(exc)))
''')


@pytest.mark.parametrize("runtime,blocked,package", [
    ("openvino_int8", "nncf", "nncf"),
    ("ort_float32", "onnxruntime", "onnxruntime"),
    ("torchao_int8", "torchao", "torchao"),
])
def test_missing_backend_is_one_line_naming_the_pip_package(runtime, blocked, package):
    env = dict(os.environ, PYTHONPATH=PACKAGE_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", CHILD, runtime, blocked], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    message = json.loads(out.stdout.split("RESULT ", 1)[1])
    assert "\n" not in message and runtime in message and f"pip install {package}" in message


def test_speed_benchmark_prints_one_json_with_the_plain_path_beside(tmp_path):
    """tools/bench/bench_expert_cpu.py on the tiny config: stdout is one JSON object (NNCF's
    progress bar goes to stderr) with the unsplit plain path timed beside the runtimes."""
    script = os.path.join(PACKAGE_DIR, "..", "tools", "bench", "bench_expert_cpu.py")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, script, "--config", "tiny", "--threads", "1",
                          "--rounds", "1", "--iters", "2", "--cache-dir", str(tmp_path),
                          "--only", "torch_float32,openvino_int8,policy_predict_unsplit"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    flops = report["arithmetic"]["flops"]
    assert 0 < flops["plan_tick"] < flops["unsplit_infer"]
    for name in ("torch_float32", "openvino_int8", "policy_predict_unsplit"):
        entry = report["candidates"][name]
        assert entry["p50_ms"] > 0 and entry["max_abs_diff_normalised"] < 0.05, (name, entry)
        # 2 samples: the tail is called max, not p99; the floor is never rounded to 0 (on a
        # fast CPU the tiny config's bytes stream in under 0.01 ms).
        assert entry["samples"] == 2 and "max_ms" in entry and "p99_ms" not in entry, entry
        assert entry["limit_ms"] > 0 and entry["p50_over_limit"] > 0, entry
    assert report["vl_context_ms"]["p50"] > 0
    # the CPU is named (one table per CPU kind), and every candidate's error is also taken over
    # auto's probe inputs; auto_choice is the fastest auto candidate within the bound
    assert report["cpu"]["model"] and report["cpu"]["kind"].endswith(
        ("-amx", "-avx512", "-avx2", "-baseline"))
    for name in ("torch_float32", "openvino_int8"):
        assert 0 <= report["candidates"][name]["probe_error"] < 0.05
    choice = report["auto_choice"]
    assert choice["measured"] == ["torch_float32", "openvino_int8"]
    within = [n for n in choice["measured"]
              if report["candidates"][n]["probe_error"] <= choice["max_error"]]
    assert choice["name"] == min(within, key=lambda n: report["candidates"][n]["p50_ms"])


def test_openvino_conversion_warns_while_telemetry_is_on_and_setup_declines_it(tmp_path,
                                                                             monkeypatch, caplog):
    """NNCF and model conversion send usage data unless the user declined: the runtime says so
    before converting, and the library's own `opt_in_out --opt_out` (what ./dev.sh setup runs
    where no choice was made) is what the check then reads as declined."""
    pytest.importorskip("openvino_telemetry")
    from asyncvla_policy.expert_runtimes import openvino_runtime

    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("CI", "TF_BUILD", "JENKINS_URL"):
        monkeypatch.delenv(var, raising=False)
    assert openvino_runtime.telemetry_consent() == "undecided"
    with caplog.at_level("WARNING", logger="asyncvla.expert_runtime"):
        openvino_runtime.warn_if_telemetry_on()
    assert "opt_in_out --opt_out" in caplog.text
    tool = os.path.join(os.path.dirname(sys.executable), "opt_in_out")
    subprocess.run([tool, "--opt_out"], check=True, capture_output=True,
                   env={**os.environ, "HOME": str(tmp_path)})
    assert openvino_runtime.telemetry_consent() == "declined"
    caplog.clear()
    with caplog.at_level("WARNING", logger="asyncvla.expert_runtime"):
        openvino_runtime.warn_if_telemetry_on()
    assert caplog.text == ""
