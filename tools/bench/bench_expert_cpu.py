#!/usr/bin/env python3
"""Benchmark: the original-system-size action expert on CPU, every runtime side by side in one run.

Prints one JSON object. For each candidate: p50/p99 latency of ``predict`` (input checks included,
as the action node calls it) at batch 1, max |output - float32| in normalised action units (the
reference is plain torch float32 on the same weights and inputs): ``max_abs_diff_normalised`` on
the timed input and ``probe_error`` over ``--probes`` inputs drawn as ``expert_runtime: auto``
draws them (the checkpoint's normalisation scale, VL ages 0-0.7 s), build/conversion time, the bytes
of weights it streams per tick and ``limit_ms`` = those bytes / the machine's streaming bandwidth.
The bandwidth is measured in the same run: a float32 GEMV (8192 x 8192, 268 MB, read once per
call) with torch on the same threads. At batch 1 the expert reads every weight once per tick, so
``limit_ms`` is the floor a runtime can approach and ``p50_ms / limit_ms`` says how far it is.
The arithmetic floor is reported beside it (``arithmetic``: the tick's FLOPs from torch's flop
counter over the float32 GEMM rate of a 2048^3 matmul): the decoder multiplies each weight by 8
queries, so on a CPU without AVX-512 a float32-compute runtime can be bound by arithmetic, not
by bytes, once its weights are int8.

Every runtime runs the inference plan (``models.inference_plan``): the VL context once per VL
message, then the tick. ``predict`` is timed with the same VL tokens at every call, as the node
calls it between VL messages (the steady state); what a new VL message adds once is
``vl_context_ms``. ``policy_predict_unsplit`` is the plain path before the plan (the whole
``ActionPolicy.infer`` at every tick, eager float32), with its FLOPs in ``arithmetic.flops``.

Candidates are the registered runtimes (``asyncvla_policy.expert_runtimes.RUNTIMES``)
plus the variants below that were measured but not registered (``BENCH_ONLY``). Weights are
random with PyTorch's default initialisation; normalisation statistics and inputs are random at
realistic scale (normalised inputs ~ N(0, 1)). Conversions run first; the timed part (bandwidth
and every candidate, in interleaved rounds so background load hits all alike) runs under
``--lock`` (an flock file shared by everyone who benchmarks on the machine).

``auto_choice`` is what ``expert_runtime: auto`` would take from these figures (its candidates,
the fastest p50 with ``probe_error`` <= ``--max-error``), and ``cpu`` names the CPU (model, kind,
SIMD flags): on a CPU with VNNI or AMX, ``openvino_int8_dynamic`` multiplies in int8, elsewhere it
computes as ``openvino_int8``, and its ``probe_error`` says which happened.

Usage: python tools/bench/bench_expert_cpu.py [--threads 2] [--rounds 6] [--iters 10]
       [--only name,name] [--config full|tiny] [--lock /work/bench.lock] [--cache-dir DIR]
       [--probes 8] [--max-error 0.01]
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from asyncvla_policy.config import PolicyConfig, tiny_policy_config
from asyncvla_policy.cpu_info import cpu_record
from asyncvla_policy.expert_runtimes import RUNTIMES, ExpertRuntime
from asyncvla_policy.expert_runtimes.auto import (AUTO_CANDIDATES, largest_error,
                                                  probe_inputs)
from asyncvla_policy.expert_runtimes.base import tensor_bytes
from asyncvla_policy.expert_runtimes.onnx_runtime import OrtInt8, float32_onnx
from asyncvla_policy.expert_runtimes.openvino_runtime import OvFloat32
from asyncvla_policy.expert_runtimes.torch_runtimes import (TorchaoInt8, TorchCompile,
                                                            bf16_copy)
from asyncvla_policy.inference_plan import InferencePlan
from asyncvla_policy.policy import ActionPolicy


class OrtDynamicInt8(OrtInt8):
    """ORT's dynamic quantisation: int8 weights and activations quantised per call (MatMulInteger)."""

    name = "ort_dynamic_int8"

    def convert(self, path: Path) -> None:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with tempfile.TemporaryDirectory() as tmp:
            quantize_dynamic(str(float32_onnx(self, tmp)), str(path), weight_type=QuantType.QInt8,
                             per_channel=True, use_external_data_format=True)


class OvBf16Hint(OvFloat32):
    name = "openvino_bf16_hint"
    precision = "bf16"


class OvF16Hint(OvFloat32):
    name = "openvino_f16_hint"
    precision = "f16"


class OvF16Weights(OvFloat32):
    """Weights stored as float16 (``compress_to_fp16``), float32 compute."""

    name = "openvino_f16_weights"

    def compress(self, model: Any) -> Any:
        import openvino as ov

        self._dir = tempfile.TemporaryDirectory()  # the .bin stays mapped while the model lives
        path = f"{self._dir.name}/m.xml"
        ov.save_model(model, path, compress_to_fp16=True)
        return ov.Core().read_model(path)


class OvPtqInt8(OvFloat32):
    """NNCF post-training quantisation (``nncf.quantize``, transformer preset): int8 weights and
    int8 activations, calibrated on 24 random inputs at the benchmark's scale."""

    name = "openvino_ptq_int8"

    def compress(self, model: Any) -> Any:
        import nncf

        cfg, policy = self.policy.cfg, self.policy
        rng = np.random.default_rng(1)
        samples = []
        for _ in range(24):
            vl = torch.from_numpy(rng.standard_normal((1, cfg.vl_num_tokens, cfg.vl_dim))
                                  .astype(np.float32))
            window = policy.sensor_mean.numpy() + policy.sensor_std.numpy() * rng.standard_normal(
                (1, cfg.sensor.window, cfg.sensor.in_channels))
            state = policy.state_mean.numpy() + policy.state_std.numpy() * rng.standard_normal(
                (1, cfg.robot_state_dim))
            age = [np.float32([rng.uniform(0.0, 0.8)])] if self.plan.takes_age else []
            samples.append([self.vl_context(vl).numpy(), window.astype(np.float32),
                            state.astype(np.float32), *age])
        return nncf.quantize(model, nncf.Dataset(samples), model_type=nncf.ModelType.TRANSFORMER,
                             subset_size=len(samples))


class TorchCompileBf16(TorchCompile):
    name = "torch_compile_bf16_weights"

    def convert(self, plan: InferencePlan) -> InferencePlan:
        return bf16_copy(plan)


class TorchaoInt8Compile(TorchCompile):
    name = "torchao_int8_compile"
    requires = TorchaoInt8.requires
    convert = TorchaoInt8.convert
    weight_bytes = TorchaoInt8.weight_bytes


BENCH_ONLY: dict[str, type[ExpertRuntime]] = {cls.name: cls for cls in (
    TorchCompileBf16, TorchaoInt8Compile, OrtDynamicInt8, OvBf16Hint, OvF16Hint, OvF16Weights,
    OvPtqInt8)}


def build_policy(config: str, seed: int) -> tuple[ActionPolicy, dict[str, np.ndarray]]:
    """Random policy (default init) with random normalisation and matching physical inputs."""
    torch.manual_seed(seed)
    cfg = PolicyConfig() if config == "full" else tiny_policy_config(vl_dim=64, vl_num_tokens=16)
    policy = ActionPolicy(cfg).eval()
    rng = np.random.default_rng(seed)
    c, s, a = cfg.sensor.in_channels, cfg.robot_state_dim, cfg.action_dim
    stats = {"sensor_mean": rng.normal(0, 5, c), "sensor_std": rng.uniform(0.5, 20, c),
             "state_mean": rng.normal(0, 1, s), "state_std": rng.uniform(0.05, 1, s),
             "action_mean": rng.normal(0, 0.01, a), "action_std": rng.uniform(0.001, 0.05, a)}
    policy.set_normalization(**{k: v.astype(np.float32) for k, v in stats.items()})
    inputs = {
        "vl_tokens": rng.standard_normal((cfg.vl_num_tokens, cfg.vl_dim)).astype(np.float32),
        "sensor_window": (stats["sensor_mean"] + stats["sensor_std"] * rng.standard_normal(
            (cfg.sensor.window, c))).astype(np.float32),
        "robot_state": (stats["state_mean"] + stats["state_std"] * rng.standard_normal(s)
                        ).astype(np.float32),
        "vl_age": 0.4,  # s, the middle of what the action node meets
    }
    return policy, inputs


def tick_tensors(policy: ActionPolicy, inputs: dict[str, Any]) -> tuple[torch.Tensor, ...]:
    """Validated (1,K,D), (1,T,C), (1,S) tensors and, when the policy takes it, the (1,) age."""
    vl, window, state = policy.validated_inputs(inputs["vl_tokens"], inputs["sensor_window"],
                                                inputs["robot_state"])
    age = policy.validated_age(inputs["vl_age"])
    return (vl, window, state) + (() if age is None else (age,))


def stream_bandwidth(threads: int, reps: int) -> dict[str, float]:
    """Bytes/s of a float32 GEMV over an 8192 x 8192 matrix (each call streams it once)."""
    torch.set_num_threads(threads)
    mat = torch.randn(8192, 8192)
    vec = torch.randn(8192)
    times = time_calls(lambda: torch.mv(mat, vec), reps, warmup=3)
    p50 = float(np.median(times))
    return {"gemv_bytes": mat.numel() * 4, "gemv_p50_ms": round(p50 * 1e3, 2),
            "bytes_per_s": mat.numel() * 4 / p50}


def gemm_rate(threads: int, reps: int) -> dict[str, float]:
    """float32 FLOP/s of a 2048 x 2048 x 2048 matmul: the arithmetic ceiling on these threads."""
    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    p50 = float(np.median(time_calls(lambda: torch.mm(a, b), reps, warmup=2)))
    return {"gemm_p50_ms": round(p50 * 1e3, 2), "flops_per_s": 2 * 2048 ** 3 / p50}


def flops_per_tick(policy: ActionPolicy, plan: InferencePlan,
                   inputs: dict[str, np.ndarray]) -> dict[str, int]:
    """FLOPs of one batch-1 tick (torch's own counter over float32): the unsplit ``infer``, the
    inference plan's tick (what every runtime runs) and its VL context (once per VL message)."""
    from torch.utils.flop_counter import FlopCounterMode

    vl, *rest = tick_tensors(policy, inputs)
    counts = {}
    # (the counter's module tracker needs autograd on)
    for name, call in (("unsplit_infer", lambda: policy.infer(vl, *rest)),
                       ("vl_context", lambda: plan.vl_context(vl)),
                       ("plan_tick", lambda c=plan.vl_context(vl).detach(): plan(c, *rest))):
        with FlopCounterMode(display=False) as counter:
            call()
        counts[name] = int(counter.get_total_flops())
    return counts


class UnsplitPredict:
    """The plain path as a candidate: ``ActionPolicy.predict`` (unsplit ``infer``, eager float32),
    what every tick cost before the inference plan."""

    name = "policy_predict_unsplit"

    def __init__(self, policy: ActionPolicy) -> None:
        self.predict = policy.predict
        self._bytes = tensor_bytes(policy)

    def weight_bytes(self) -> int:
        return self._bytes


def vl_context_times(policy: ActionPolicy, plan: InferencePlan, inputs: dict[str, np.ndarray],
                     threads: int, reps: int) -> dict[str, float]:
    """p50/p99 of the plan's VL context in torch float32: what a new VL message costs once."""
    torch.set_num_threads(threads)
    vl = tick_tensors(policy, inputs)[0]
    with torch.no_grad():
        ms = np.asarray(time_calls(lambda: plan.vl_context(vl), reps, warmup=2)) * 1e3
    return {"p50": round(float(np.percentile(ms, 50)), 2),
            "p99": round(float(np.percentile(ms, 99)), 2)}


def time_calls(fn: Callable[[], object], n: int, warmup: int = 0) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


@contextlib.contextmanager
def bench_lock(path: str | None) -> Iterator[float]:
    """Hold ``path`` with flock (exclusive) while timing; yields the seconds spent waiting."""
    if not path:
        yield 0.0
        return
    with open(path, "a") as handle:
        t0 = time.monotonic()
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield time.monotonic() - t0
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=6, help="interleaved timing rounds")
    ap.add_argument("--iters", type=int, default=10, help="calls per candidate per round")
    ap.add_argument("--config", choices=("full", "tiny"), default="full")
    ap.add_argument("--only", default="", help="comma-separated candidate names (default: all)")
    ap.add_argument("--lock", default="", help="flock this file while timing")
    ap.add_argument("--cache-dir", default="", help="keep converted models here between runs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--probes", type=int, default=8, help="inputs of probe_error (as auto)")
    ap.add_argument("--max-error", type=float, default=1e-2,
                    help="auto_choice: the bound (expert_runtime auto's max_runtime_error)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    torch.set_num_threads(args.threads)

    policy, inputs = build_policy(args.config, args.seed)
    plan = InferencePlan(policy)  # the float32 plan: FLOP counts and the VL context's time
    action_std = policy.action_std.numpy()
    candidates: dict[str, Callable[..., Any]] = {
        **RUNTIMES, **BENCH_ONLY, UnsplitPredict.name: lambda p, **_: UnsplitPredict(p)}
    names = [n for n in args.only.split(",") if n] or list(candidates)
    unknown = sorted(set(names) - set(candidates))
    if unknown:
        print(f"unknown candidate(s) {unknown}; choose from {list(candidates)}", file=sys.stderr)
        return 2
    reference = policy.predict(**inputs)
    probes = probe_inputs(policy, args.probes)
    probe_refs = [policy.predict(*p) for p in probes]
    built: dict[str, Any] = {}
    result: dict[str, dict[str, Any]] = {}
    for name in names:
        t0 = time.perf_counter()
        try:
            with contextlib.redirect_stdout(sys.stderr):  # NNCF draws a progress bar: stdout is JSON
                runtime = candidates[name](policy, threads=args.threads,
                                           cache_dir=args.cache_dir or None)
            out = runtime.predict(**inputs)
        except Exception as exc:  # a candidate that fails is reported, not fatal
            result[name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
            continue
        built[name] = runtime
        result[name] = {
            "registered": name in RUNTIMES,
            "build_s": round(time.perf_counter() - t0, 2),
            "weight_bytes": runtime.weight_bytes(),
            "max_abs_diff_normalised": float(np.max(np.abs(out - reference) / action_std)),
            "probe_error": largest_error(runtime.predict, probe_refs, probes, action_std),
        }
    print(f"built {list(built)}; timing", file=sys.stderr, flush=True)

    samples: dict[str, list[float]] = {name: [] for name in built}
    with bench_lock(args.lock) as waited:
        bandwidth = stream_bandwidth(args.threads, reps=20)
        arithmetic = gemm_rate(args.threads, reps=10)
        vl_context_ms = vl_context_times(policy, plan, inputs, args.threads,
                                         reps=args.rounds * 3)
        for round_ in range(args.rounds):
            for name, runtime in built.items():
                torch.set_num_threads(args.threads)
                samples[name] += time_calls(lambda r=runtime: r.predict(**inputs), args.iters,
                                            warmup=2)
                print(f"round {round_ + 1}/{args.rounds} {name}: "
                      f"{np.median(samples[name]) * 1e3:.1f} ms", file=sys.stderr, flush=True)
    bw = bandwidth["bytes_per_s"]
    flop_counts = flops_per_tick(policy, plan, inputs)
    flops = flop_counts["plan_tick"]
    for name, times in samples.items():
        ms = np.asarray(times) * 1e3
        entry = result[name]
        entry["samples"] = int(ms.size)
        entry["p50_ms"] = round(float(np.percentile(ms, 50)), 2)
        # Under 100 samples the 99th percentile is the largest one: say so.
        entry["p99_ms" if ms.size >= 100 else "max_ms"] = round(
            float(np.percentile(ms, 99) if ms.size >= 100 else ms.max()), 2)
        if entry["weight_bytes"]:
            limit_ms = entry["weight_bytes"] / bw * 1e3  # the tiny config's is well under 0.01 ms
            entry["limit_ms"] = float(f"{limit_ms:.3g}")
            entry["p50_over_limit"] = round(float(np.percentile(ms, 50)) / limit_ms, 2)
    ref_scale = float(np.abs((reference - policy.action_mean.numpy()) / action_std).max())
    within = {n: result[n]["p50_ms"] for n in AUTO_CANDIDATES
              if "p50_ms" in result.get(n, {}) and result[n]["probe_error"] <= args.max_error}
    print(json.dumps({
        "benchmark": "expert_cpu",
        "config": args.config,
        "parameters": sum(p.numel() for p in policy.parameters()),
        "threads": args.threads,
        "samples_per_candidate": args.rounds * args.iters,
        "cpu": cpu_record(),
        "command": " ".join(["python", "tools/bench/bench_expert_cpu.py",
                             *(sys.argv[1:] if argv is None else argv)]),
        "torch": torch.__version__,
        "lock_wait_s": round(waited, 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),  # at the end of the run
        "bandwidth": {**bandwidth, "bytes_per_s": round(bw)},
        "arithmetic": {**arithmetic, "flops_per_s": round(arithmetic["flops_per_s"]),
                       "flops": flop_counts,
                       "compute_floor_ms": round(flops / arithmetic["flops_per_s"] * 1e3, 2),
                       "unsplit_compute_floor_ms": round(
                           flop_counts["unsplit_infer"] / arithmetic["flops_per_s"] * 1e3, 2)},
        "vl_context_ms": vl_context_ms,
        "reference_max_abs_normalised": ref_scale,
        "probes": args.probes,
        "auto_choice": {"max_error": args.max_error,
                        "name": min(within, key=within.get) if within else None,
                        "measured": [n for n in AUTO_CANDIDATES if n in result]},
        "candidates": result,
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
