"""``expert_runtime: auto``: the fastest installed runtime that stays within a stated error of
float32 on the loaded checkpoint, measured where it will run, and remembered.

Why: which runtime is fastest depends on the CPU (measured: OpenVINO float32 is 3.7x the plain
torch path on an AVX2 EPYC and 2.8x on an AVX-512 one; int8 with run-time activation quantisation
is faster still where the CPU has VNNI, but 2e-2 from float32 on the full-size expert), and how
far a lower precision moves the actions depends on the checkpoint. So the node measures both at
start-up instead of asking the user to read the benchmark tables:

1. Probe inputs at the checkpoint's scale (:func:`probe_inputs`): sensor windows and robot states
   drawn around the checkpoint's normalisation statistics (mean + std * N(0, 1)), VL tokens
   N(0, 1), VL ages uniform in 0-0.7 s. The reference is ``ActionPolicy.predict`` in float32.
2. Each candidate (:data:`AUTO_CANDIDATES`, in that order, those whose package is installed) is
   built with the node's ``expert_threads`` and cache directory, its largest difference from the
   reference over the probes is taken in normalised action units (``|diff| / action_std``), and
   ``predict`` is timed in this process, as the node will call it (the same VL tokens at every
   call, as between VL messages).
3. The choice is the fastest (p50) whose difference is at most ``max_error``. ``torch_float32``
   (the reference's function) is always measured first, so there is always one.

The start-up time is bounded: once ``budget_s`` has passed, no further candidate is started (one
already converting finishes: a conversion cannot be interrupted in-process), and the choice is
made among those measured. The choice and its figures are written to the cache directory under a
key of the CPU (model name and every flag), the checkpoint (``policy_digest``: graph code, config
and every tensor), the runtime libraries' versions, the threads, the error bound and the
candidates; a restart with the same key builds the chosen runtime directly and only re-checks its
difference from float32 on the probes (a failed re-check measures again).

ROS-free: the action node passes its parameters (``expert_setup.build_expert``) and reports
:meth:`AutoChoice.values` on /diagnostics and :meth:`AutoChoice.summary` in its log.
"""
from __future__ import annotations

import gc
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np

from ..cpu_info import cpu_flags, cpu_model
from .base import BackendUnavailable, ExpertRuntime, policy_digest

LOG = logging.getLogger("asyncvla.expert_runtime")

#: The value of the ``expert_runtime`` parameter that asks for this module.
AUTO = "auto"
#: The runtime every other is compared with and falls back to (plain torch, float32).
REFERENCE = "torch_float32"
#: What ``auto`` tries, in this order: the reference, then the likeliest winners first, so that a
#: start-up budget that runs out has measured those. Left out: ``torch_compile`` (it compiles at
#: every start, 76 s cold, and was never the fastest) and ``torch_bf16_autocast`` (slower than
#: float32 on every CPU measured, and ``torch_bf16_weights`` covers bfloat16 in torch).
AUTO_CANDIDATES = (REFERENCE, "openvino_int8_dynamic", "openvino_float32", "openvino_int8",
                   "ort_float32", "torchao_int8", "torch_bf16_weights", "ort_int8")
#: Runtimes that run on the policy's own device (the others run on the CPU only).
ANY_DEVICE = (REFERENCE, "torch_bf16_weights")
#: Packages whose versions are part of the cache key (a new kernel library may change both the
#: speed and the error).
VERSIONED_PACKAGES = ("torch", "openvino", "nncf", "onnxruntime", "onnx", "onnxscript", "torchao")
#: The probe ages (s): the VL features' age the node meets, up to its usual max_vl_age margin.
PROBE_MAX_AGE_S = 0.7

Probe = tuple[np.ndarray, np.ndarray, np.ndarray, float]
Builder = Callable[..., ExpertRuntime]


@dataclass
class Candidate:
    """One runtime's figures in a choice (``status``: chosen, ok, too_inaccurate, unavailable,
    failed, skipped)."""

    name: str
    status: str
    p50_ms: float | None = None
    max_error: float | None = None
    build_s: float | None = None
    note: str = ""


@dataclass
class AutoChoice:
    """What ``auto`` chose and why: every candidate's figures, whether they came from the cache."""

    name: str
    max_error: float
    candidates: list[Candidate]
    cached: bool
    seconds: float  # start-up time spent choosing (building the chosen runtime included)
    key: str
    cache_file: str = ""
    recheck_error: float | None = None  # a cached choice's difference, measured again now
    probes: int = 0
    notes: list[str] = field(default_factory=list)

    def candidate(self, name: str) -> Candidate | None:
        return next((c for c in self.candidates if c.name == name), None)

    def summary(self) -> str:
        """One log line: the choice with its figures, then every candidate's."""
        chosen = self.candidate(self.name)
        head = (f"expert_runtime auto: {self.name}"
                + (f" ({_ms(chosen.p50_ms)} p50, {_err(chosen.max_error)} from float32"
                   if chosen else " (")
                + f" <= {self.max_error:g})"
                + (f", cached choice re-checked at {_err(self.recheck_error)}" if self.cached
                   else f", measured over {self.probes} probe inputs")
                + f" in {self.seconds:.1f} s")
        others = "; ".join(
            f"{c.name} {c.status}" + (f" {_ms(c.p50_ms)} {_err(c.max_error)}"
                                      if c.p50_ms is not None else "")
            + (f" ({c.note})" if c.note else "")
            for c in self.candidates if c.name != self.name)
        return head + (f"; {others}" if others else "") + "".join(f"; {n}" for n in self.notes)

    def values(self) -> dict[str, object]:
        """Key/values for /diagnostics: the choice, the bound, and per candidate its status,
        p50 and error (``<name>``: "ok 14.2 ms 1.3e-06")."""
        chosen = self.candidate(self.name)
        values: dict[str, object] = {
            "expert_runtime": self.name, "chosen_by": "auto (cached)" if self.cached else "auto",
            "max_runtime_error": self.max_error, "choice_s": round(self.seconds, 2)}
        if chosen is not None:
            values["p50_ms"] = chosen.p50_ms
            values["error_vs_float32"] = chosen.max_error
        if self.recheck_error is not None:
            values["recheck_error"] = self.recheck_error
        for c in self.candidates:
            values[f"candidate {c.name}"] = " ".join(
                [c.status] + ([_ms(c.p50_ms), _err(c.max_error)] if c.p50_ms is not None else [])
                + ([c.note] if c.note else []))
        return values


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def _err(value: float | None) -> str:
    return "-" if value is None else f"{value:.1e}"


def probe_inputs(policy, count: int = 8, seed: int = 0) -> list[Probe]:
    """``count`` inputs at the checkpoint's scale: window and state = mean + std * N(0, 1) of its
    normalisation statistics, VL tokens N(0, 1), VL age uniform in [0, PROBE_MAX_AGE_S] s."""
    cfg = policy.cfg
    rng = np.random.default_rng(seed)
    s_mean, s_std = (getattr(policy, n).detach().cpu().numpy() for n in ("sensor_mean",
                                                                          "sensor_std"))
    r_mean, r_std = (getattr(policy, n).detach().cpu().numpy() for n in ("state_mean",
                                                                          "state_std"))
    probes = []
    for _ in range(count):
        vl = rng.standard_normal((cfg.vl_num_tokens, cfg.vl_dim))
        window = s_mean + s_std * rng.standard_normal((cfg.sensor.window, cfg.sensor.in_channels))
        state = r_mean + r_std * rng.standard_normal(cfg.robot_state_dim)
        probes.append((vl.astype(np.float32), window.astype(np.float32),
                       state.astype(np.float32), float(rng.uniform(0.0, PROBE_MAX_AGE_S))))
    return probes


def float32_reference(policy, probe: Probe) -> np.ndarray:
    """``ActionPolicy.infer`` in float32 on one probe (whatever ``inference_dtype`` says)."""
    import torch

    vl, window, state = policy.validated_inputs(*probe[:3])
    with torch.no_grad():
        out = policy.infer(vl, window, state, policy.validated_age(probe[3]))
    return out[0].float().cpu().numpy().astype(np.float64)


def largest_error(predict: Callable[..., np.ndarray], references: list[np.ndarray],
                  probes: list[Probe], action_std: np.ndarray) -> float:
    """The largest |predict - reference| / action_std over the probes (normalised units)."""
    return max(float(np.max(np.abs(np.asarray(predict(*p), dtype=np.float64) - ref) / action_std))
               for p, ref in zip(probes, references))


def time_predict(runtime: ExpertRuntime, probe: Probe, calls: int, warmup: int = 3,
                 clock: Callable[[], float] = time.perf_counter) -> float:
    """p50 of ``predict`` on the same inputs (ms), after ``warmup`` calls."""
    for _ in range(warmup):
        runtime.predict(*probe)
    times = []
    for _ in range(calls):
        t0 = clock()
        runtime.predict(*probe)
        times.append(clock() - t0)
    return float(np.median(times) * 1e3)


def library_versions() -> dict[str, str]:
    """Installed versions of the runtime libraries ("" for one not installed)."""
    out = {}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = ""
    return out


def cache_key_fields(policy, threads: int, max_error: float,
                     candidates: tuple[str, ...]) -> dict[str, object]:
    """What a cached choice depends on (the key is their hash)."""
    return {"cpu_model": cpu_model(), "cpu_flags": cpu_flags(), "checkpoint": policy_digest(policy),
            "libraries": library_versions(), "threads": threads, "max_error": max_error,
            "candidates": list(candidates), "device": str(policy.device)}


def cache_key(fields: dict[str, object]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:24]


def candidates_for(policy, candidates: tuple[str, ...]) -> tuple[str, ...]:
    """The candidates that can run on the policy's device (all on a CPU; torch ones elsewhere),
    the reference first."""
    names = [REFERENCE] + [n for n in candidates if n != REFERENCE]
    if policy.device.type != "cpu":
        names = [n for n in names if n in ANY_DEVICE]
    return tuple(names)


def choose_runtime(policy, *, threads: int = 0, cache_dir: str | Path | None = None,
                   max_error: float = 1e-2, budget_s: float = 120.0,
                   candidates: tuple[str, ...] = AUTO_CANDIDATES, probes: int = 8,
                   calls: int = 20, build: Builder | None = None,
                   clock: Callable[[], float] = time.monotonic,
                   timer: Callable[[], float] = time.perf_counter
                   ) -> tuple[ExpertRuntime, AutoChoice]:
    """The runtime ``auto`` picks for ``policy`` and the figures behind the choice (see the
    module's docstring). ``build(name, policy, threads=, cache_dir=)`` defaults to
    ``build_runtime``; ``clock`` measures the budget and ``timer`` the calls (tests pass fakes)."""
    from . import RUNTIMES, build_runtime

    build = build or build_runtime
    if not max_error > 0:
        raise ValueError(f"max_runtime_error must be positive, got {max_error}")
    unknown = [n for n in candidates if n not in RUNTIMES]
    if unknown:
        raise ValueError(f"unknown candidate runtime(s) {unknown}; choose from {list(RUNTIMES)}")
    start = clock()
    names = candidates_for(policy, tuple(candidates))
    fields = cache_key_fields(policy, threads, max_error, names)
    key = cache_key(fields)
    cache_file = Path(cache_dir) / f"auto-{key}.json" if cache_dir else None
    probe_list = probe_inputs(policy, probes)
    references = [float32_reference(policy, p) for p in probe_list]
    action_std = policy.action_std.detach().cpu().numpy().astype(np.float64)

    if cache_file is not None and cache_file.exists():
        reused = _reuse(cache_file, policy, threads, cache_dir, max_error, build, probe_list,
                        references, action_std, clock, start, key)
        if reused is not None:
            return reused

    results: list[Candidate] = []
    best: tuple[float, ExpertRuntime] | None = None
    for name in names:
        if name != REFERENCE and clock() - start >= budget_s:
            results.append(Candidate(name, "skipped", note=f"start-up budget {budget_s:g} s spent"))
            continue
        t0 = clock()
        try:
            runtime = build(name, policy, threads=threads, cache_dir=cache_dir)
            built_s = clock() - t0
            error = largest_error(runtime.predict, references, probe_list, action_std)
            p50 = time_predict(runtime, probe_list[0], calls, clock=timer)
        except BackendUnavailable as exc:
            needs = str(exc).split(": pip install")[0].split(" needs ")[-1]
            results.append(Candidate(name, "unavailable", note=f"needs {needs}"))
            continue
        except Exception as exc:  # noqa: BLE001 - a candidate that fails is reported, not fatal
            if name == REFERENCE:
                raise
            LOG.warning("expert_runtime auto: %s failed: %s: %s", name, type(exc).__name__, exc)
            results.append(Candidate(name, "failed", note=f"{type(exc).__name__}: "
                                     f"{str(exc).splitlines()[0][:160] if str(exc) else ''}"))
            continue
        accurate = error <= max_error
        results.append(Candidate(name, "ok" if accurate else "too_inaccurate", round(p50, 3),
                                 float(f"{error:.3g}"), round(built_s, 2)))
        if accurate and (best is None or p50 < best[0]):
            best = (p50, runtime)
        del runtime
        gc.collect()  # a discarded conversion's weights go now, not at the next collection
    assert best is not None, "the reference is always measured and always within its own bound"
    runtime = best[1]
    for c in results:
        if c.name == runtime.name:
            c.status = "chosen"
    choice = AutoChoice(runtime.name, max_error, results, False, clock() - start, key,
                        str(cache_file or ""), probes=len(probe_list))
    if cache_file is not None:
        try:
            _write(cache_file, fields, choice)
        except OSError as exc:  # a read-only cache must not stop the node
            choice.notes.append(f"choice not cached: {exc}")
            choice.cache_file = ""
    else:
        choice.notes.append("not cached (no expert_cache_dir): measured again at every start")
    return runtime, choice


def _reuse(cache_file: Path, policy, threads: int, cache_dir, max_error: float, build: Builder,
           probe_list: list[Probe], references: list[np.ndarray], action_std: np.ndarray,
           clock: Callable[[], float], start: float, key: str
           ) -> tuple[ExpertRuntime, AutoChoice] | None:
    """The cached choice, built and re-checked; None (and the file removed) when it cannot be
    read, built or no longer meets the bound."""
    try:
        data = json.loads(cache_file.read_text())
        name = data["choice"]["name"]
        candidates = [Candidate(**c) for c in data["choice"]["candidates"]]
        runtime = build(name, policy, threads=threads, cache_dir=cache_dir)
        error = largest_error(runtime.predict, references, probe_list, action_std)
    except Exception as exc:  # noqa: BLE001 - a bad cache entry means: measure again
        LOG.warning("expert_runtime auto: cached choice %s unusable (%s: %s); measuring again",
                    cache_file.name, type(exc).__name__, exc)
        cache_file.unlink(missing_ok=True)
        return None
    if error > max_error:
        LOG.warning("expert_runtime auto: cached choice %s is %.2e from float32 now (bound "
                    "%.2e); measuring again", name, error, max_error)
        cache_file.unlink(missing_ok=True)
        return None
    return runtime, AutoChoice(name, max_error, candidates, True, clock() - start, key,
                               str(cache_file), recheck_error=float(f"{error:.3g}"),
                               probes=len(probe_list))


def _write(cache_file: Path, fields: dict[str, object], choice: AutoChoice) -> None:
    """Atomically (two nodes starting at once never read half a file)."""
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"key": fields, "choice": {
        "name": choice.name, "seconds": round(choice.seconds, 2),
        "candidates": [asdict(c) for c in choice.candidates]}}, indent=1))
    os.replace(tmp, cache_file)
