"""Build the action expert's runtime from the node's parameters (ROS-free, so unit-testable).

The runtime (``expert_runtime``) decides how the policy's weights are stored and multiplied
(float32, bfloat16, int8; torch, ONNX Runtime or OpenVINO); the checkpoint is the same
safetensors + JSON for all of them. ``auto`` (the default) measures the installed runtimes on the
loaded checkpoint at start-up and takes the fastest within ``max_runtime_error`` of float32
(``expert_runtimes/auto.py``: the decision, its cache and its bound); a named runtime is built
as named. ``expert_dtype`` is the parameter it replaced: a value there stops the node at start
with the one-line migration, never a silent fallback.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from asyncvla_common.report import OK, Report

#: The runtime that does what each old ``expert_dtype`` value did.
LEGACY_EXPERT_DTYPES = {"float32": "torch_float32", "bfloat16": "torch_bf16_autocast"}


def check_legacy_dtype(value: str) -> None:
    """ValueError naming ``expert_runtime`` when the removed ``expert_dtype`` is set."""
    if value:
        hint = LEGACY_EXPERT_DTYPES.get(value)
        fix = f"expert_runtime: {hint}" if hint else "expert_runtime (see its description)"
        raise ValueError(f"expert_dtype was replaced by expert_runtime: remove expert_dtype: "
                         f"{value} and set {fix}")


def cache_dir(params: Mapping[str, Any]) -> str | None:
    """``expert_cache_dir`` with ``~`` expanded; None for '' (no cache)."""
    value = str(params.get("expert_cache_dir", ""))
    return os.path.expanduser(value) if value else None


def build_expert(policy: Any, params: Mapping[str, Any]) -> Any:
    """The ``ExpertRuntime`` the parameters ask for, built over the loaded ``policy``; for
    ``auto``, the chosen one with its ``AutoChoice`` in ``auto_choice``.

    ValueError on an unknown runtime (listing the choices) or a set ``expert_dtype``;
    ``BackendUnavailable`` (one line naming the pip package) when a named runtime's package is
    missing (``auto`` passes over such runtimes and says so).
    """
    check_legacy_dtype(params.get("expert_dtype", ""))
    from asyncvla_policy.expert_runtimes import build_runtime
    from asyncvla_policy.expert_runtimes.auto import AUTO, choose_runtime

    threads = int(params["expert_threads"])
    if params["expert_runtime"] == AUTO:
        runtime, choice = choose_runtime(
            policy, threads=threads, cache_dir=cache_dir(params),
            max_error=float(params["max_runtime_error"]),
            budget_s=float(params["expert_auto_budget_s"]))
        runtime.auto_choice = choice
        return runtime
    return build_runtime(params["expert_runtime"], policy, threads=threads,
                         cache_dir=cache_dir(params))


def expert_report(runtime: Any) -> Report:
    """The "expert runtime" status for /diagnostics: the runtime and, when ``auto`` chose it,
    its p50, its difference from float32 and every candidate's figures."""
    choice = getattr(runtime, "auto_choice", None)
    if choice is None:
        return Report(OK, f"{runtime.name} (named by expert_runtime)",
                      {"expert_runtime": runtime.name, "chosen_by": "parameter"})
    chosen = choice.candidate(choice.name)
    figures = (f": {chosen.p50_ms:.2f} ms p50, {chosen.max_error:.1e} from float32"
               if chosen is not None and chosen.p50_ms is not None else "")
    return Report(OK, f"{choice.name} chosen by auto{' (cached)' if choice.cached else ''}"
                  f"{figures} (max_runtime_error {choice.max_error:g})", choice.values())
