"""The action expert's runtimes, one class per strategy; this table is the only list.

``RUNTIMES[name](policy, threads, cache_dir)`` builds one from a loaded ``ActionPolicy``; its
``predict`` matches ``ActionPolicy.predict`` (same input checks, physical units). Runtimes that
need an optional package import it only when built, so this module imports with torch alone.
"""
from __future__ import annotations

from .base import BackendUnavailable, ExpertRuntime
from .onnx_runtime import OrtFloat32, OrtInt8
from .openvino_runtime import OvFloat32, OvInt8, OvInt8Dynamic
from .torch_runtimes import (TorchaoInt8, TorchBf16Autocast, TorchBf16Weights, TorchCompile,
                             TorchRuntime)

RUNTIMES: dict[str, type[ExpertRuntime]] = {cls.name: cls for cls in (
    TorchRuntime,
    TorchBf16Autocast,
    TorchBf16Weights,
    TorchCompile,
    TorchaoInt8,
    OrtFloat32,
    OrtInt8,
    OvFloat32,
    OvInt8,
    OvInt8Dynamic,
)}


def build_runtime(name: str, policy, threads: int = 0, cache_dir=None) -> ExpertRuntime:
    """The runtime ``name`` for ``policy``; ValueError on an unknown name (listing the choices),
    :class:`BackendUnavailable` when its package is missing."""
    if name not in RUNTIMES:
        raise ValueError(f"expert_runtime must be one of {list(RUNTIMES)}, got {name!r}")
    return RUNTIMES[name](policy, threads=threads, cache_dir=cache_dir)


__all__ = ["RUNTIMES", "BackendUnavailable", "ExpertRuntime", "build_runtime"]
