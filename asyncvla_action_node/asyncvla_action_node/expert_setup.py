"""Build the action expert's runtime from the node's parameters (ROS-free, so unit-testable).

The runtime (``expert.runtime``) decides how the policy's weights are stored and multiplied
(float32, bfloat16, int8; torch, ONNX Runtime or OpenVINO); the checkpoint is the same
safetensors + JSON for all of them. ``auto`` (the default) measures the installed runtimes on the
loaded checkpoint at start-up and takes the fastest within ``expert.max_runtime_error`` of
float32 (``expert_runtimes/auto.py``: the decision, its cache and its bound); a named runtime is
built as named. ``expert_dtype``, the parameter it replaced, stops the node at start like every
replaced name (``action_config.OLD_NAMES``), never a silent fallback.
"""
from __future__ import annotations

import os
from typing import Any

from asyncvla_action_node.action_config import ExpertConfig
from asyncvla_common.report import OK, Report

def cache_dir(expert: ExpertConfig) -> str | None:
    """``expert.cache_dir`` with ``~`` expanded; None for '' (no cache)."""
    return os.path.expanduser(expert.cache_dir) if expert.cache_dir else None


def build_expert(policy: Any, expert: ExpertConfig) -> Any:
    """The ``ExpertRuntime`` the ``expert`` parameters ask for, built over the loaded
    ``policy``; for ``auto``, the chosen one with its ``AutoChoice`` in ``auto_choice``.

    ValueError on an unknown runtime (listing the choices); ``BackendUnavailable`` (one line
    naming the pip package) when a named runtime's package is missing (``auto`` passes over
    such runtimes and says so).
    """
    from asyncvla_policy.expert_runtimes import build_runtime
    from asyncvla_policy.expert_runtimes.auto import AUTO, choose_runtime

    if expert.runtime == AUTO:
        runtime, choice = choose_runtime(
            policy, threads=expert.threads, cache_dir=cache_dir(expert),
            max_error=expert.max_runtime_error, budget_s=expert.auto_budget_s)
        runtime.auto_choice = choice
        return runtime
    return build_runtime(expert.runtime, policy, threads=expert.threads,
                         cache_dir=cache_dir(expert))


def expert_report(runtime: Any) -> Report:
    """The "expert runtime" status for /diagnostics: the runtime and, when ``auto`` chose it,
    its p50, its difference from float32 and every candidate's figures."""
    choice = getattr(runtime, "auto_choice", None)
    if choice is None:
        return Report(OK, f"{runtime.name} (named by expert.runtime)",
                      {"expert_runtime": runtime.name, "chosen_by": "parameter"})
    chosen = choice.candidate(choice.name)
    figures = (f": {chosen.p50_ms:.2f} ms p50, {chosen.max_error:.1e} from float32"
               if chosen is not None and chosen.p50_ms is not None else "")
    return Report(OK, f"{choice.name} chosen by auto{' (cached)' if choice.cached else ''}"
                  f"{figures} (expert.max_runtime_error {choice.max_error:g})", choice.values())
