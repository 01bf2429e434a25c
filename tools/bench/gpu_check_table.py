"""``python tools/bench/gpu_check_table.py RESULT.json``: README's GPU tables from a GPU check.

Why: README shows the GPU figures next to their targets and anchors. Rendering them from the
JSON that ``tools/bench/gpu_check.sh`` printed means the figures are pasted in whole, from one
run, never retyped; rendered without a result, every figure reads "not measured" (that is the
table README carries until the check has run on a GPU, and a test holds README to it).
"""
from __future__ import annotations

import json
import sys
from typing import Any

from gpu_check import (
    DEFAULT_CONFIGS,
    EXPERT_TARGET_P99_MS,
    ORIGINAL_EXPERT_MS,
    ORIGINAL_VL_MS,
    PLAIN_H100_P50_MS,
    VL_TARGET_CONFIG,
    VL_TARGET_P50_MS,
    config_key,
)

NOT_MEASURED = "not measured"
FAILED = "failed (see JSON)"
EXPERT_ROWS = (("eager", "eager"), ("cuda_graph", "CUDA graph (captured, replayed)"),
               ("compiled", 'torch.compile "reduce-overhead"'))


def _timing(stats: Any, missing: str = NOT_MEASURED) -> str:
    """p50 / p99; ``missing`` when there are none (FAILED when the enclosing part failed)."""
    if not isinstance(stats, dict):
        return missing
    if "p50_ms" in stats:
        return f"{stats['p50_ms']:.1f} / {stats['p99_ms']:.1f} ms"
    if "error" in stats:
        return FAILED
    return stats.get("skipped", missing)


def _difference(agree: Any) -> str:
    if not isinstance(agree, dict):
        return NOT_MEASURED
    return f"{agree['max_abs_diff']:.1e} (values up to {agree['reference_max_abs']:.2g})"


def _anchor(ms: float | None, ratio: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:g} ms" + ("" if ratio is None else f" ({ratio:g}x)")


def _met(value: Any) -> str:
    return {True: "met", False: "not met"}.get(value, NOT_MEASURED)


def render(result: dict[str, Any] | None) -> str:
    """The Markdown of README's GPU tables (``result`` None: nothing measured yet)."""
    data = result or {}
    env = data.get("environment", {})
    where = (f"{env['gpu']}, torch {env['torch']}, CUDA {env.get('cuda')}" if env.get("gpu")
             else NOT_MEASURED)
    build = data.get("build", {})
    lines = [
        f"GPU: {where}. Model construction (3B, random weights, on the GPU): "
        + (f"{build['seconds']} s" if "seconds" in build else NOT_MEASURED) + ".",
        "",
        "| VL update, p50 / p99 | optimised | plain transformers | plain / optimised "
        "| largest feature difference | target | plain path earlier (H100) "
        "| original system |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for config in DEFAULT_CONFIGS:
        part = data.get("vl_update", {}).get(config_key(config), {})
        ratios = part.get("ratios", {})
        speedup = part.get("speedup_p50")
        target = (f"p50 <= {VL_TARGET_P50_MS:g} ms: {_met(part.get('meets_target'))}"
                  if config == VL_TARGET_CONFIG else "-")
        views, width, height = config
        missing = FAILED if "error" in part else NOT_MEASURED
        lines.append(
            f"| {views} x {width}x{height} | {_timing(part.get('optimized'), missing)} "
            f"| {_timing(part.get('plain'), missing)} "
            f"| {NOT_MEASURED if speedup is None else f'{speedup:.2f}x'} "
            f"| {_difference(part.get('agreement'))} | {target} "
            f"| {_anchor(PLAIN_H100_P50_MS.get(config), ratios.get('plain_h100_over_optimized'))} "
            f"| {_anchor(ORIGINAL_VL_MS.get(config), ratios.get('original_system_over_optimized'))} |")
    expert = data.get("expert", {})
    low, high = ORIGINAL_EXPERT_MS
    lines += [
        "",
        "| action expert (118.7 M parameters, float32), p50 / p99 | time "
        "| largest output difference from eager "
        f"| target p99 <= {EXPERT_TARGET_P99_MS:g} ms | original system {low:g}-{high:g} ms |",
        "| --- | --- | --- | --- | --- |",
    ]
    for key, label in EXPERT_ROWS:
        stats = expert.get(key)
        timed = isinstance(stats, dict) and "p99_ms" in stats
        met = _met(stats["p99_ms"] <= EXPERT_TARGET_P99_MS) if timed else NOT_MEASURED
        faster = (f"{low / stats['p50_ms']:.3g}-{high / stats['p50_ms']:.3g}x" if timed
                  else NOT_MEASURED)
        difference = "-" if key == "eager" else _difference((stats or {}).get("agreement"))
        missing = FAILED if "error" in expert else NOT_MEASURED
        lines.append(f"| {label} | {_timing(stats, missing)} | {difference} | {met} | {faster} |")
    peak = data.get("summary", {}).get("peak_memory_mb")
    lines += ["", "In parentheses and in the last column: the anchor divided by the measured p50 "
              "(how many times faster). Peak GPU memory (torch, largest part): "
              + (NOT_MEASURED if peak is None else f"{peak / 1024:.1f} GiB") + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from asyncvla_training.cli_errors import CliError, run_cli

    args = sys.argv[1:] if argv is None else argv

    def body() -> int:
        if len(args) != 1:
            raise CliError("usage: python tools/bench/gpu_check_table.py RESULT.json "
                           "(the JSON tools/bench/gpu_check.sh printed)")
        try:
            with open(args[0], encoding="utf-8") as handle:
                result = json.load(handle)
        except ValueError as exc:
            raise CliError(f"{args[0]} is not the JSON of a GPU check ({exc}); "
                           "save the script's stdout") from exc
        if not isinstance(result, dict) or "vl_update" not in result:
            raise CliError(f"{args[0]} has no vl_update: not a GPU check result")
        sys.stdout.write(render(result))
        return 0

    return run_cli("gpu_check_table", body)


if __name__ == "__main__":
    sys.exit(main())
