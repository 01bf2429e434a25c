"""Build the action expert's runtime from the node's parameters (ROS-free, so unit-testable).

The runtime (``expert_runtime``) decides how the policy's weights are stored and multiplied
(float32, bfloat16, int8 weight-only; torch, ONNX Runtime or OpenVINO); the checkpoint is the
same safetensors + JSON for all of them. ``expert_dtype`` is the parameter it replaced: a value
there stops the node at start with the one-line migration, never a silent fallback.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The runtime that does what each old ``expert_dtype`` value did.
LEGACY_EXPERT_DTYPES = {"float32": "torch_float32", "bfloat16": "torch_bf16_autocast"}


def check_legacy_dtype(value: str) -> None:
    """ValueError naming ``expert_runtime`` when the removed ``expert_dtype`` is set."""
    if value:
        hint = LEGACY_EXPERT_DTYPES.get(value)
        fix = f"expert_runtime: {hint}" if hint else "expert_runtime (see its description)"
        raise ValueError(f"expert_dtype was replaced by expert_runtime: remove expert_dtype: "
                         f"{value} and set {fix}")


def build_expert(policy: Any, params: Mapping[str, Any]) -> Any:
    """The ``ExpertRuntime`` the parameters ask for, built over the loaded ``policy``.

    ValueError on an unknown runtime (listing the choices) or a set ``expert_dtype``;
    ``BackendUnavailable`` (one line naming the pip package) when its package is missing.
    """
    check_legacy_dtype(params.get("expert_dtype", ""))
    from asyncvla_training.models.expert_runtimes import build_runtime

    return build_runtime(params["expert_runtime"], policy, threads=int(params["expert_threads"]),
                         cache_dir=params["expert_cache_dir"] or None)
