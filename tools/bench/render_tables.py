#!/usr/bin/env python3
"""The docs' benchmark tables, rendered from the raw JSON runs under docs/benchmarks/.

Why: a figure copied by hand drifts from the run it came from. Each table in the docs sits
between two markers naming its JSON file::

    <!-- bench-table: docs/benchmarks/expert_cpu-amd-epyc-avx512.json -->
    ...rendered table...
    <!-- /bench-table -->

and this script rewrites what is between them (``--write``) or fails when it differs
(``--check``, run by ``asyncvla_action_node/test/test_bench_tables.py``). The JSON files are the
benchmarks' own stdout, named ``<benchmark>-<cpu kind>.json`` (``cpu.kind`` in the JSON,
``asyncvla_training.cpu_info.cpu_kind``): one table per CPU kind measured. Numbers are printed as
the JSON holds them (milliseconds as the benchmark rounded them, errors with two significant
digits); a tail over fewer than 100 samples is printed as ``max``, not p99.

Usage: python tools/bench/render_tables.py [--check | --write] [DOC ...]
       (default DOCs: README.md asyncvla_action_node/TIMING.md asyncvla_bringup/ROBOT_PC.md)
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("README.md", "asyncvla_action_node/TIMING.md", "asyncvla_bringup/ROBOT_PC.md")
MARKER = re.compile(r"(<!-- bench-table: (?P<path>[^ ]+) -->\n)(?P<body>.*?)(<!-- /bench-table -->)",
                    re.S)


def _err(value: float | None) -> str:
    return "-" if value is None else f"{value:.2e}"


def _tail(summary: dict) -> str:
    """"p50 / p99" of a percentile summary, the tail named max under 100 samples."""
    if not summary or summary.get("n", 0) == 0:
        return "-"
    if summary["n"] >= 100:
        return f"{summary['p50']} / {summary['p99']} (p99, n={summary['n']})"
    return f"{summary['p50']} / {summary['max']} (max, n={summary['n']})"


def expert_cpu(data: dict) -> str:
    cands = data["candidates"]
    plain = cands.get("policy_predict_unsplit", {}).get("p50_ms")
    auto = data.get("auto_choice", {})
    rows = ["| runtime | p50 / tail (ms) | difference from float32: probes (timed input) | "
            "weights read per tick | weight-read floor (p50 / floor) | vs plain path |",
            "| --- | --- | --- | --- | --- | --- |"]
    for name, e in cands.items():
        label = f"`{name}`" + ("" if e.get("registered", True) else " (bench only)")
        if name == auto.get("name"):
            label += " **auto's choice**"
        if "error" in e:
            rows.append(f"| {label} | failed: {e['error'][:80]} | | | | |")
            continue
        tail = (f"{e['p99_ms']} (p99)" if "p99_ms" in e else f"{e['max_ms']} (max)")
        floor = (f"{e['limit_ms']} ms ({e['p50_over_limit']}x)" if "limit_ms" in e else "-")
        ratio = f"{plain / e['p50_ms']:.2f}x" if plain else "-"
        rows.append(f"| {label} | {e['p50_ms']} / {tail} | {_err(e.get('probe_error'))} "
                    f"({_err(e['max_abs_diff_normalised'])}) | "
                    f"{e['weight_bytes'] / 1e6:.0f} MB | {floor} | {ratio} |")
    arith = data["arithmetic"]
    notes = (f"\n{data['samples_per_candidate']} calls per candidate, {data['threads']} threads, "
             f"{data['probes']} probe inputs; bandwidth "
             f"{data['bandwidth']['bytes_per_s'] / 1e9:.1f} GB/s (float32 GEMV), arithmetic floor "
             f"{arith['compute_floor_ms']} ms ({arith['flops']['plan_tick'] / 1e9:.2f} GFLOP per "
             f"tick at {arith['flops_per_s'] / 1e9:.1f} GFLOP/s); VL context "
             f"{data['vl_context_ms']['p50']} ms p50 once per VL message; auto (bound "
             f"{auto.get('max_error', 0):g}) would choose `{auto.get('name')}`"
             + (f"; load average (1 min) at the end: {data['load_avg_1m']}"
                if "load_avg_1m" in data else "") + ".\n")
    return "\n".join(rows) + "\n" + notes


def _refusals(window: dict) -> str:
    keys = {k: v for k, v in window.items() if (k.startswith("withheld_") or k == "ticks_skipped")
            and v}
    return ", ".join(f"{k.replace('withheld_', '').replace('ticks_', '')} {v}"
                     for k, v in sorted(keys.items())) or "none"


def action_period(data: dict) -> str:
    rows = ["| rate | design (tick_source, trigger) | runtime | chunks/s | deviation p50 / tail "
            "(ms) | adjacent tail | ticks missing | refusals in the window | inference p50 / "
            "age of the published inference p50 (ms) |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in data["runs"]:
        if "error" in r:
            rows.append(f"| {r['rate_hz']:g} Hz | {r['design']} | | {r['error']} | | | | | |")
            continue
        design = r["design"]
        source = r.get("tick_source", design)
        detail = source + (f", {r['inference_trigger']}" if "inference_trigger" in r else "")
        runtime = r.get("expert", {}).get("runtime", data.get("expert_runtime", ""))
        if r.get("expert", {}).get("auto"):
            runtime += " (auto)"
        adj = r["recv_dev_adjacent"]
        adj_tail = ("-" if not adj.get("n") else
                    f"{adj['p99']} (p99)" if adj["n"] >= 100 else f"{adj['max']} (max)")
        floor = design == "publisher_floor"
        rows.append(f"| {r['rate_hz']:g} Hz | {design} ({detail}) | {'-' if floor else runtime} | "
                    f"{r['chunk_rate_hz']} | {_tail(r['recv_dev'])} | {adj_tail} | "
                    f"{r['ticks_missing']} | {_refusals(r.get('node_window', {}))} | "
                    + ("- |" if floor else f"{r['inference']['p50']} / "
                       f"{r['inference_age']['p50']} |"))
    return "\n".join(rows) + f"\n\nload average (1 min) at the end: {data['load_avg_1m']}\n"


def sensor_latency(data: dict) -> str:
    rows = ["| rate | design (tick_source, trigger) | runtime | steps seen (not seen) | "
            "step sent to chunk received p50 / tail (ms) | chunk stamp - step sample p50 (ms) |",
            "| --- | --- | --- | --- | --- | --- |"]
    for r in data["runs"]:
        source = r.get("tick_source", r["design"])
        detail = source + ("" if source == "executor_timer" else f", {r['inference_trigger']}")
        runtime = r.get("expert", {}).get("runtime", data.get("expert_runtime", ""))
        if r.get("expert", {}).get("auto"):
            runtime += " (auto)"
        rows.append(f"| {r['rate_hz']:g} Hz | {r['design']} ({detail}) | {runtime} | "
                    f"{r['steps']} ({r['steps_not_seen']}) | {_tail(r['from_send'])} | "
                    f"{r['stamp_from_sample']['p50']} |")
    return "\n".join(rows) + f"\n\nload average (1 min) at the end: {data['load_avg_1m']}\n"


def render(path: Path) -> str:
    """The markdown table (and its note) of one benchmark JSON file."""
    data = json.loads(path.read_text())
    kind = "expert_cpu" if "candidates" in data else data.get("benchmark", "")
    renderers = {"expert_cpu": expert_cpu, "action_period": action_period,
                 "sensor_latency": sensor_latency}
    if kind not in renderers:
        raise ValueError(f"{path}: no table for benchmark {kind!r}")
    cpu = data.get("cpu", {})
    head = (f"*{path.name}: {cpu.get('model', '?')} ({cpu.get('kind', '?')}, "
            f"{cpu.get('cpu_count', '?')} CPUs); `{data.get('command', '')}`*\n\n")
    return head + renderers[kind](data)


def refreshed(text: str, root: Path = ROOT) -> str:
    """``text`` with every marked table rendered from its JSON."""
    return MARKER.sub(lambda m: m.group(1) + render(root / m.group("path")) + m.group(4), text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="fail when a table differs")
    mode.add_argument("--write", action="store_true", help="rewrite the tables in place")
    ap.add_argument("docs", nargs="*", default=list(DOCS))
    args = ap.parse_args(argv)
    stale = []
    for doc in args.docs:
        path = ROOT / doc
        text = path.read_text()
        new = refreshed(text)
        if new != text:
            stale.append(doc)
            if args.write:
                path.write_text(new)
        if not (args.check or args.write):
            for m in MARKER.finditer(new):
                print(f"## {doc}: {m.group('path')}\n\n{m.group('body')}")
    if args.check and stale:
        print(f"tables differ from docs/benchmarks in: {', '.join(stale)} "
              "(python tools/bench/render_tables.py --write)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
