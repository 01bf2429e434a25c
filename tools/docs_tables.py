#!/usr/bin/env python3
"""Render the docs' measured tables from the committed benchmark runs in docs/benchmarks/.

Why: a figure typed by hand drifts from the run it came from. Every measured table in a Markdown
file sits between ``<!-- table: NAME -->`` and ``<!-- /table -->``. NAME is either a renderer of
``RENDERERS`` (e.g. ``staleness-dynamic``, reading its run) or the path of a timing run,
``docs/benchmarks/<benchmark>-<cpu kind>.json``, rendered by what the benchmark was (expert_cpu,
action_period, sensor_latency: one table per CPU kind measured). Numbers are printed as the JSON
holds them; a tail over fewer than 100 samples is printed as ``max``, not p99. ``--write``
rewrites the tables in place; without it the script exits 1 (and says where) when a table
differs from its run, which is what asyncvla_common/test/test_docs_tables.py checks in CI.

Usage: python tools/docs_tables.py [--write] [FILE.md ...]   (default: every tracked *.md)
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "docs" / "benchmarks"
BLOCK = re.compile(r"(<!-- table: (?P<name>[A-Za-z0-9_:./-]+) -->\n)(?P<body>.*?)(<!-- /table -->)",
                   re.DOTALL)


def load(name: str) -> dict:
    return json.loads((BENCHMARKS / name).read_text())


def _fmt(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}"


def _interval(entry: dict) -> str:
    return f"{_fmt(entry['mean'])} [{_fmt(entry['lo'])}, {_fmt(entry['hi'])}]"


def staleness_curves(task: str) -> Callable[[], str]:
    def render() -> str:
        run = load("staleness.json")
        curves = run["curves"][task]
        ages = list(next(iter(curves.values())))
        names = {"F": "F: fresh only", "S": "S: ages 0-700 ms, no age input",
                 "A": "A: ages 0-700 ms + age input", "F_cross_attention":
                 "F, `cross_attention` fusion", "ablated": "VL-ablated twin",
                 "mean_chunk": "training-mean chunk"}
        head = "| lateral NMSE, mean [95 % interval] | " + " | ".join(f"{a} ms" for a in ages) + " |"
        rows = [head, "| --- |" + " --- |" * len(ages)]
        for key, label in names.items():
            if key in curves:
                rows.append(f"| {label} | " + " | ".join(_interval(curves[key][a]) for a in ages)
                            + " |")
        n = next(iter(curves.values()))[ages[0]]["n"]
        rows.append("")
        rows.append(f"({n} (seed, held-out episode) pairs per cell; run: "
                    f"`docs/benchmarks/staleness.json`, {run['machine']['date']}, "
                    f"{run['machine']['wall_s'] / 60:.0f} min on {run['machine']['cpu_count']} "
                    "CPU cores.)")
        return "\n".join(rows) + "\n"
    return render


def staleness_verdicts() -> str:
    run = load("staleness.json")
    rows = ["| check | value | target | met |", "| --- | --- | --- | --- |"]
    for group in ("gates", "claims"):
        for name, entry in run[group].items():
            value = entry["value"]
            interval = entry.get("interval")
            shown = str(value) if isinstance(value, int) else _fmt(value)
            if interval:
                shown += f" [{_fmt(interval[0])}, {_fmt(interval[1])}]"
            rows.append(f"| {group[:-1]}: `{name}` | {shown} | {entry['target']} | "
                        f"{'yes' if entry['met'] else '**no**'} |")
    return "\n".join(rows) + "\n"


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


#: Tick designs the action node no longer has (`timing.tick_source`): their measured rows stay as
#: the measurement that removed them, labelled so (asyncvla_action_node/TIMING.md).
REMOVED_DESIGNS = ("executor_timer",)


def _design(design: str, source: str, detail: str) -> str:
    """The design cell: `design (detail)`, marked when the node no longer has that design."""
    return f"{design} ({detail}{'; removed, history' if source in REMOVED_DESIGNS else ''})"


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
        rows.append(f"| {r['rate_hz']:g} Hz | {_design(design, source, detail)} | "
                    f"{'-' if floor else runtime} | "
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
        rows.append(f"| {r['rate_hz']:g} Hz | {_design(r['design'], source, detail)} | {runtime} | "
                    f"{r['steps']} ({r['steps_not_seen']}) | {_tail(r['from_send'])} | "
                    f"{r['stamp_from_sample']['p50']} |")
    return "\n".join(rows) + f"\n\nload average (1 min) at the end: {data['load_avg_1m']}\n"


def render_run(path: Path) -> str:
    """The markdown table (and its note) of one timing benchmark's JSON (expert_cpu,
    action_period, sensor_latency), headed by the CPU it ran on."""
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


def ci_runs() -> str:
    """The README's test figures: every committed fresh-clone CI run (one per condition)."""
    rows = ["| fresh-clone `./.ci/run` | CPU | passed | skipped | failed | tests | with the install |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for path in sorted(BENCHMARKS.glob("ci_run-*.json")):
        run = json.loads(path.read_text())
        total = run["total_s"]
        rows.append(f"| {run['date']}, {run['note']} | {run['cpu']['kind']} ({run['cpu']['cpu_count']} "
                    f"cores) | {run['passed']} | {run['skipped']} | {run['failed']} | "
                    f"{run['tests_s'] / 60:.1f} min | "
                    + (f"{total / 60:.1f} min |" if total else "- |"))
    return "\n".join(rows) + "\n"


def closed_loop_success() -> str:
    """Success rate [95 % Wilson interval] per mode (rows) and VLM latency (columns)."""
    run = load("closed_loop.json")
    latencies = list(run["results"])
    modes = list(run["results"][latencies[0]])
    rows = ["| success within 1 mm, 2.5 s | " + " | ".join(f"VLM {k} s" for k in latencies) + " |",
            "| --- |" + " --- |" * len(latencies)]
    for mode in modes:
        cells = []
        for k in latencies:
            r = run["results"][k][mode]
            lo, hi = r["success_interval"]
            cells.append(f"{r['success_rate']:.2f} [{lo:.2f}, {hi:.2f}]")
        rows.append(f"| {mode} | " + " | ".join(cells) + " |")
    n = run["settings"]["episodes"]
    rows += ["", f"({n} held-out episodes per cell; run: `docs/benchmarks/closed_loop.json`, "
                 f"{run['machine']['date']}.)"]
    return "\n".join(rows) + "\n"


def closed_loop_handovers() -> str:
    """Per mode at each latency: median final error, largest handover kink, median jerk."""
    run = load("closed_loop.json")
    rows = ["| VLM latency | mode | final error, median (mm) | largest handover jump (mm) | "
            "handover jerk, median (m/s^3) | chunks per episode |",
            "| --- | --- | --- | --- | --- | --- |"]
    for k, modes in run["results"].items():
        for mode, r in modes.items():
            jump = "-" if r["handover_jump_mm_max"] is None else f"{r['handover_jump_mm_max']:.3f}"
            jerk = "-" if r["handover_jerk_median"] is None else f"{r['handover_jerk_median']:.1f}"
            rows.append(f"| {k} s | {mode} | {r['final_error_mm_median']:.2f} | {jump} | {jerk} | "
                        f"{r['chunks_per_episode']:.1f} |")
    return "\n".join(rows) + "\n"


def closed_loop_targets() -> str:
    run = load("closed_loop.json")
    rows = ["| target at 1.5 s of VLM latency | value | met |", "| --- | --- | --- |"]
    for name, t in (run.get("targets_at_1.5s") or {}).items():
        value = t["value"]
        shown = "-" if value is None else ("inf" if value == float("inf") else f"{value:.2f}")
        extra = f" ({t['strategy']})" if t.get("strategy") else ""
        rows.append(f"| `{name}`: {t['target']}{extra} | {shown} | "
                    f"{'yes' if t['met'] else '**no**'} |")
    return "\n".join(rows) + "\n"


RENDERERS: dict[str, Callable[[], str]] = {
    "ci-run": ci_runs,
    "closed-loop-success": closed_loop_success,
    "closed-loop-handovers": closed_loop_handovers,
    "closed-loop-targets": closed_loop_targets,
    "staleness-dynamic": staleness_curves("dynamic"),
    "staleness-static": staleness_curves("static"),
    "staleness-verdicts": staleness_verdicts,
}


def markdown_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True)
    return [ROOT / line for line in out.stdout.split()]


def check(path: Path, write: bool) -> list[str]:
    """Differences between ``path``'s tables and their runs (rewritten when ``write``)."""
    text = path.read_text()
    problems: list[str] = []

    def replace(match: re.Match) -> str:
        name = match.group("name")
        if name.endswith(".json") and (ROOT / name).is_file():
            want = render_run(ROOT / name)
        elif name in RENDERERS:
            want = RENDERERS[name]()
        else:
            problems.append(f"{path.relative_to(ROOT)}: unknown table {name!r}")
            return match.group(0)
        if match.group("body") != want:
            problems.append(f"{path.relative_to(ROOT)}: table {name!r} "
                            + ("rewritten from its run" if write else
                               "differs from its run (python tools/docs_tables.py --write)"))
        return match.group(1) + want + match.group(4)

    new = BLOCK.sub(replace, text)
    if write and new != text:
        path.write_text(new)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the tables in place")
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args(argv)
    problems = []
    for path in args.files or markdown_files():
        problems += check(path.resolve(), args.write)
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems and not args.write else 0


if __name__ == "__main__":
    sys.exit(main())
