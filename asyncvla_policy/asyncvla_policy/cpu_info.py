"""Which CPU this is, as the benchmarks record it and the expert's runtime choice is keyed by.

Why a module: the fastest way to run the action expert depends on the CPU's instruction set
(AVX2 only, AVX-512, VNNI, BF16, AMX), so every benchmark records the model name and flags, the
docs keep one table per *CPU kind*, and ``expert_runtime: auto`` caches its choice under a key
that includes them. Linux only reads ``/proc/cpuinfo``; elsewhere the fields are what
``platform`` knows and the flags are empty.
"""
from __future__ import annotations

import os
import platform
import re
from pathlib import Path

#: Flag prefixes that decide which kernels the runtimes use (kept in benchmark records).
SIMD_PREFIXES = ("avx", "fma", "amx", "vnni", "bf16", "f16c", "sse4")


def _cpuinfo(path: str = "/proc/cpuinfo") -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _field(text: str, name: str) -> str:
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return ""


def cpu_model(text: str | None = None) -> str:
    """The CPU's model name ("AMD EPYC", "Intel(R) Xeon(R) Gold 6430"), or what platform says."""
    text = _cpuinfo() if text is None else text
    return _field(text, "model name") or platform.processor() or platform.machine()


def cpu_flags(text: str | None = None) -> list[str]:
    """Every flag the kernel reports for the first CPU, sorted."""
    text = _cpuinfo() if text is None else text
    return sorted(set(_field(text, "flags").split()))


def simd_flags(flags: list[str]) -> list[str]:
    """The flags that decide the expert's kernels (AVX*, FMA, AMX, VNNI, BF16, F16C, SSE4)."""
    return [f for f in flags if f.startswith(SIMD_PREFIXES) or "vnni" in f or "bf16" in f]


def isa_tier(flags: list[str]) -> str:
    """The widest matrix instruction set: amx, avx512, avx2 or baseline."""
    have = set(flags)
    if "amx_tile" in have:
        return "amx"
    if "avx512f" in have:
        return "avx512"
    if "avx2" in have:
        return "avx2"
    return "baseline"


def cpu_kind(model: str | None = None, flags: list[str] | None = None) -> str:
    """A short name for the CPU kind, used in file names: ``amd-epyc-avx512``,
    ``intel-xeon-gold-6430-amx`` (model words without trademarks, then the ISA tier)."""
    model = cpu_model() if model is None else model
    flags = cpu_flags() if flags is None else flags
    words = re.sub(r"\((r|tm)\)|\bcpu\b|@.*$|\bprocessor\b|\b\d+-core\b", " ", model.lower())
    slug = re.sub(r"[^a-z0-9]+", "-", words).strip("-") or "unknown"
    return f"{slug}-{isa_tier(flags)}"


def cpu_record() -> dict[str, object]:
    """What a benchmark's JSON says about the CPU: model, kind, the SIMD flags, core count."""
    model, flags = cpu_model(), cpu_flags()
    return {"model": model, "kind": cpu_kind(model, flags), "simd_flags": simd_flags(flags),
            "cpu_count": os.cpu_count()}
