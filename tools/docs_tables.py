#!/usr/bin/env python3
"""Render the docs' measured tables from the committed benchmark runs in docs/benchmarks/.

Why: a figure typed by hand drifts from the run it came from. Every measured table in a Markdown
file sits between ``<!-- table: NAME -->`` and ``<!-- /table -->``. NAME is either a renderer of
``RENDERERS`` (e.g. ``staleness-dynamic``, reading its run) or the path of a timing run,
``docs/benchmarks/<benchmark>-<cpu kind>.json``, rendered by what the benchmark was (expert_cpu,
action_period, sensor_latency, ...: one table per CPU kind measured; ``<!-- table: PATH PART -->``
for a run with several tables). A single figure in prose is ``<!-- fig: RUN.json KEY/KEY FORMAT
-->value<!-- /fig -->``. Numbers are printed as the JSON
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
BLOCK = re.compile(r"(<!-- table: (?P<name>[A-Za-z0-9_:./-]+)(?: (?P<part>[a-z0-9_-]+))? -->\n)"
                   r"(?P<body>.*?)(<!-- /table -->)", re.DOTALL)
#: A figure in prose: ``<!-- fig: RUN.json KEY/KEY/... FORMAT -->0.48<!-- /fig -->`` (the value
#: at that path of docs/benchmarks/RUN.json, through a Python format spec such as ``.2f``).
FIG = re.compile(r"(<!-- fig: (?P<run>[A-Za-z0-9_./-]+\.json) (?P<path>[A-Za-z0-9_./-]+) "
                 r"(?P<fmt>[0-9.,a-z%+-]+) -->)(?P<body>[^<\n]*)(<!-- /fig -->)")


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
        n = f", n={e['samples']}" if "samples" in e else ""
        tail = (f"{e['p99_ms']} (p99{n})" if "p99_ms" in e else f"{e['max_ms']} (max{n})")
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
                    f"{adj['p99']} (p99, n={adj['n']})" if adj["n"] >= 100 else
                    f"{adj['max']} (max, n={adj['n']})")
        floor = design == "publisher_floor"
        rows.append(f"| {r['rate_hz']:g} Hz | {_design(design, source, detail)} | "
                    f"{'-' if floor else runtime} | "
                    f"{r['chunk_rate_hz']} | {_tail(r['recv_dev'])} | {adj_tail} | "
                    f"{r['ticks_missing']} | {_refusals(r.get('node_window', {}))} | "
                    + ("- |" if floor else f"{r['inference']['p50']} (n={r['inference']['n']}) / "
                       f"{r['inference_age']['p50']} (n={r['inference_age']['n']}) |"))
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
                    f"{r['stamp_from_sample']['p50']} (n={r['stamp_from_sample']['n']}) |")
    return "\n".join(rows) + f"\n\nload average (1 min) at the end: {data['load_avg_1m']}\n"


def _tail_ms(stats: dict) -> str:
    """``_tail`` of a summary whose keys end in ``_ms`` (profile_cli's)."""
    return _tail({"n": stats.get("n", 0), "p50": stats.get("p50_ms"), "p99": stats.get("p99_ms"),
                  "max": stats.get("max_ms")})


VL_PAYLOADS = {"pooled_4KiB": "4 KiB (one pooled 2048-d fp16 vector)",
               "tokens64_256KiB": "256 KiB (64 tokens x 2048 fp16, the VLM node's default)",
               "budget_1MiB": "1 MiB (the budget)"}


def vlfeatures_latency(data: dict) -> str:
    rows = ["| payload | received / sent | publish to receive p50 / tail (ms) |",
            "| --- | --- | --- |"]
    for name, r in data["results"].items():
        lat = r["latency_ms"]
        rows.append(f"| {VL_PAYLOADS.get(name, name)} | {lat['n']} / {r['sent']} | {_tail(lat)} |")
    return "\n".join(rows) + (f"\n\n{data['transport']}, {data['rmw']}, latched, "
                              f"{data['rate_hz']:g} Hz; load average (1 min) at the end: "
                              f"{data['load_avg_1m']}\n")


CAMERA_CONDITIONS = {
    "backlog_at_start": "bridge starts under a {settle:g} s backlog ({dropped} stale frames dropped)",
    "clock_step_forward_2s": "sender clock steps +2 s",
    "clock_step_back_2s": "sender clock steps -2 s (stamps: both steps)",
    "second_generation_5fps": "second-generation sender, 5 FPS 1280x720, no `send_time`"}


def camera_field(data: dict) -> str:
    res = data["results"]
    rows = ["| condition | frames flow again after (first frame delivered) | \\|published stamp - true "
            "capture time\\| p50 / tail (ms) |", "| --- | --- | --- |"]
    for key, label in CAMERA_CONDITIONS.items():
        r = res[key]
        label = label.format(settle=data["settle_s"], dropped=r["dropped_settling"])
        rows.append(f"| {label} | {r['flows_again_s']} s | {_tail(r['stamp_error_ms'])} |")
    return "\n".join(rows) + (f"\n\nThe field tests' bounds: {res['bound_recovery_s']:g} s and "
                              f"{res['bound_stamp_error_ms']:g} ms; load average (1 min) at the "
                              f"end: {data['load_avg_1m']}\n")


def vl_profile(data: dict) -> str:
    opt, plain = data["vl"], data["vl_plain"]
    pre, pre_plain = opt["preprocess"], plain["preprocess"]
    rows = ["| | optimised | plain transformers | plain / optimised (p50) |",
            "| --- | --- | --- | --- |",
            f"| inputs (resize, tokens, pixel_values) p50 / tail (ms) | {_tail_ms(pre)} | "
            f"{_tail_ms(pre_plain)} | {pre_plain['p50_ms'] / pre['p50_ms']:.2f}x |",
            f"| whole VL update p50 / tail (ms) | {_tail_ms(opt)} | {_tail_ms(plain)} | "
            f"{plain['p50_ms'] / opt['p50_ms']:.2f}x |",
            f"| largest feature difference | | | {data['vl_feature_max_abs_diff']:.1e} |"]
    model = data["model"]
    return "\n".join(rows) + (
        f"\n\n{model['model_id']} ({'; '.join(data.get('notes', [])) or 'no notes'}), "
        f"{opt['views']} views at {opt['width']}x{opt['height']} ({opt['tokens']} tokens), "
        f"{data['threads']} threads, {data['device']} {data['dtype']}; torch {data['torch']}, "
        f"transformers {data['transformers']}; load average (1 min) at the end: "
        f"{data['load_avg_1m']}\n")


def spin_cpu(data: dict) -> str:
    names = {"single": "SingleThreadedExecutor", "multi": "MultiThreadedExecutor"}
    rows = ["| executor | CPU, share of one core: median (each round) | callbacks/s, median |",
            "| --- | --- | --- |"]
    for key, e in data["executors"].items():
        each = ", ".join(str(r["cpu_share"]) for r in e["rounds"])
        rows.append(f"| `{names.get(key, key)}` | {e['cpu_share_median']} ({each}) | "
                    f"{e['callbacks_per_s_median']} |")
    hz = ", ".join(f"{k} {v:g} Hz" for k, v in data["published_hz"].items())
    return "\n".join(rows) + (
        f"\n\nInputs published: {hz}; {data['duration_s']:g} s measured per round after "
        f"{data['warmup_s']:g} s; MultiThreadedExecutor / SingleThreadedExecutor: "
        f"{data['multi_over_single']}x; load average (1 min) at the end: {data['load_avg_1m']}\n")


FAULTS = {  # the test's fault name: (what is injected, the diagnostic the test waits for)
    "sensor": ("sensor stream paused", 'safety ERROR "sensor silent"'),
    "sensor_nan": ("NaN force values",
                   'safety ERROR "sensor silent" (+ `sensor_dropped_non_finite`)'),
    "sensor_inf": ("inf force values", 'safety ERROR "sensor silent"'),
    "robot_nan": ("NaN joint position", 'safety ERROR "joint_states silent"'),
    "robot_inf": ("infinite EE position", 'safety ERROR "ee_pose silent"'),
    "robot_clock_forward": ("robot clock 2 s ahead", 'action output ERROR "in the future"'),
    "robot_clock_backward": ("robot clock 2 s behind",
                             'action output ERROR "robot state is ... old"'),
    "view2": ("camera view2 missing", 'VLM cameras ERROR "camera silent: view2"'),
    "vl_nan": ("VL payload with NaN", "vl features `last_reject_reason`"),
    "vl_model": ("VL from another model id", "vl features `last_reject_reason`"),
    "vl_inf": ("VL payload with inf", "vl features `last_reject_reason`"),
    "vl_dim": ("VL of another feature size", "vl features `last_reject_reason`"),
    "vl_pause": ("VLM hung (no features)", 'action output ERROR "VL features are ... old"')}

ROGUES = {  # the test's rogue mode: (what it publishes, the diagnostic the test waits for)
    "vl_future": ("VL message stamped +1 h (the VL publisher's own node)",
                  'vl features WARN "... in the future" (or the publisher lock)'),
    "sensor_future": ("sensor batches stamped +1 h (50 Hz)",
                      'inputs WARN "... stamped in the future"'),
    "joints_other": ("JointStates of 100 joints `other_*` (100 Hz)",
                     'inputs ERROR "joint state lacks joint_1, ..."'),
    "vl_oversize": ("VLFeatures of 50 MB, header consistent with the payload",
                    'vl features WARN "... refused before deserialization"'),
    "vl_oversize_header": ("VLFeatures of 50 MB, header of the expected shape",
                           'vl features WARN "... refused before deserialization"'),
    "vl_flood": ("a second VL publisher, valid features with the model id copied (100 Hz)",
                 'vl features ERROR "another publisher on /asyncvla/vl_features: /rogue_vlm"'),
    "go": ("intruder: e-stop released + enable, 20 times, while the operator's e-stop is "
           "pressed", 'safety ERROR "... publishers on /asyncvla/..."')}


def _s(value: float | None) -> str:
    return "none" if value is None else f"{value:.2f} s"


def _outcome(data: dict) -> str:
    return "; ".join(f"`{Path(t).name}`: {o['passed']} passed, {o['failed']} failed"
                     + (f", {o['errors']} errors" if o.get("errors") else "")
                     for t, o in data["tests"].items())


def fault_recovery_faults(data: dict) -> str:
    rows = ["| fault | diagnostic | detected after | last chunk after fault start | bound | "
            "actions resume after recovery | chunks past the bound |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for f in data["faults"]:
        label, diag = FAULTS.get(f["fault"], (f"`{f['fault']}`", "-"))
        rows.append(f"| {label} | {diag} | {_s(f['detected_s'])} | "
                    f"{_s(f['last_chunk_after_start_s'])} | {f['bound_s']:.2f} s | "
                    f"{_s(f['recovery_s'])} | {len(f['leaked'])} |")
    recoveries = [f["recovery_s"] for f in data["faults"]]
    note = (f"\n\n{len(recoveries)} faults, one injection each: actions resumed "
            f"{min(recoveries):.2f}-{max(recoveries):.2f} s after a fault ended (min-max, "
            f"n={len(recoveries)}); " if recoveries else "\n\n")
    return "\n".join(rows) + note + (f"{_outcome(data)}; load average (1 min) at the end: "
                                     f"{data['load_avg_1m']}\n")


OPERATOR_PATH = {"enable_to_first_chunk_s": "enable to the first chunk",
                 "estop_last_chunk_after_s": "e-stop to the last chunk",
                 "re_enable_to_first_chunk_s": "release + re-enable to the first chunk",
                 "bridge_kill_last_chunk_after_s": "`kill -9` of the robot bridge to the last chunk",
                 "bridge_restart_to_first_chunk_s": "robot bridge restarted to the first chunk",
                 "action_restart_to_first_chunk_s":
                     "action node killed and restarted to the first chunk (latched enable)"}


def fault_recovery_operator(data: dict) -> str:
    rows = ["| step (one run each) | time |", "| --- | --- |"]
    for report in data["operator_path"]:
        for key, value in report.items():
            shown = ("none after it" if key == "estop_last_chunk_after_s" and value == 0
                     else _s(value))  # the test's max(..., default=0.0): no chunk at all
            rows.append(f"| {OPERATOR_PATH.get(key, key)} | {shown} |")
    return "\n".join(rows) + "\n"


def fault_recovery_rogues(data: dict) -> str:
    rows = ["| rogue | diagnostic | messages | diagnostic after | chunks from rogue data | output "
            "resumed after the rogue stopped | action node RSS before -> after |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in data["rogues"]:
        label, diag = ROGUES.get(r["rogue"], (f"`{r['rogue']}`", "-"))
        if "messages" not in r:  # the intruder: chunks while the operator's e-stop is pressed
            rows.append(f"| {label} | {diag} | - | {_s(r.get('diagnostic_after_s'))} | "
                        f"{r['chunks_after_intruder']} chunks | after the operator's own release "
                        "+ enable | - |")
            continue
        rows.append(f"| {label} | {diag} | {r['messages']} | {_s(r['diagnostic_after_s'])} | "
                    f"{r['rogue_chunks']} | {_s(r['recovery_s'])} | {r['rss_before_mb']} -> "
                    f"{r['rss_after_mb']} MB |")
    return "\n".join(rows) + f"\n\n{_outcome(data)}\n"


#: Runs with more than one table: ``<!-- table: docs/benchmarks/RUN.json PART -->``.
RUN_PARTS: dict[str, dict[str, Callable[[dict], str]]] = {
    "fault_recovery": {"faults": fault_recovery_faults, "operator": fault_recovery_operator,
                       "rogues": fault_recovery_rogues}}

def executor_tick(data: dict) -> str:
    rows = ["| blending | one tick p50 / tail (ms) | joining a chunk p50 / tail (ms) | ticks that "
            "sent a setpoint |", "| --- | --- | --- | --- |"]
    for mode, r in data["modes"].items():
        rows.append(f"| `{mode}` | {_tail(r['tick_ms'])} | {_tail(r['on_chunk_ms'])} | "
                    f"{r['setpoints']} of {r['ticks']} |")
    return "\n".join(rows) + (
        f"\n\nIn process, simulated time: {data['simulated_s']:g} s per strategy at "
        f"{1 / data['period_s']:g} Hz, a chunk of {data['horizon']} steps every "
        f"{data['chunk_step_s']:g} s; load average (1 min) at the end: {data['load_avg_1m']}\n")


def soak(data: dict) -> str:
    rows = ["| fault kind | injected | actions resumed after: mean / max (s) |", "| --- | --- | --- |"]
    for kind, n in sorted(data["faults_injected"].items()):
        r = data["recovery_s"].get(kind)
        shown = f"{r['mean']} / {r['max']} (max, n={r['n']})" if r else "never"
        rows.append(f"| {kind} | {n} | {shown} |")
    withheld = ", ".join(f"{k} {v}" for k, v in sorted(data["actions_withheld_by_reason"].items(),
                                                       key=lambda kv: -kv[1])) or "none"
    memory = "; ".join(
        f"{name} {m.get('start_mb') or '-'} -> {m.get('end_mb', '(killed)')} MB"
        for name, m in data["memory_rss_mb"].items())
    not_recovered = ", ".join(f"{k} {v}" for k, v in data["not_recovered"].items()) or "none"
    return "\n".join(rows) + (
        f"\n\n{data['minutes']:g} minutes, seed {data['seed']}, {data['views']} views: "
        f"**{data['unsafe_actions']} unsafe actions**, not recovered: {not_recovered}; "
        f"{data['actions_published']} chunks published; withheld: {withheld}; largest VL age on "
        f"a published chunk {data['max_vl_age_ms']} ms; memory (RSS) after warm-up -> at the end: "
        f"{memory}; load average (1 min) at the end: {data['load_avg_1m']}\n")


def bridges(data: dict) -> str:
    cpu = data["cpu_percent_of_one_core"]
    cam, rob, sen = data["camera"], data["robot"], data["sensor"]
    views = cam["latency_capture_to_downstream"]
    slow = max(views, key=lambda v: views[v]["p99_ms"]) if views else None
    rows = ["| stream | sent / received downstream (in the window) | rate sent / received (Hz) | "
            "capture to downstream p50 / tail (ms) | bridge drops (whole run, start-up included) | "
            "bridge CPU (% of "
            "one core) |", "| --- | --- | --- | --- | --- | --- |"]
    rows.append(f"| camera, {len(views)} views (tail: the slowest, {slow}) | {cam['sent']} / "
                f"{cam['received']['total_compressed']} frames | {cam['sent_rate_hz']} / "
                f"{cam['received_rate_hz']['total_compressed']} | "
                f"{_tail_ms(views[slow]) if slow else '-'} | {cam['bridge']['drops_total']} | "
                f"{cpu['camera']} |")
    rows.append(f"| robot state (joint states) | {rob['sent']} / {rob['received']['joint_states']} "
                f"| {rob['sent_rate_hz']} / {rob['received_rate_hz']['joint_states']} | "
                f"{_tail_ms(rob['latency_capture_to_downstream'] or {})} | "
                f"{rob['bridge']['drops_total']} | {cpu['robot']} |")
    batch = sen["latency_capture_to_downstream"]["batch"] or {}
    rows.append(f"| force/OCT, {sen['samples_per_datagram']} samples per datagram (batches) | "
                f"{sen['sent']} / {sen['received']['force_oct_batches']} | "
                f"{sen['sent_rate_hz']} / {sen['received_rate_hz']['force_oct_batches']} | "
                f"{_tail_ms(batch)} | {sen['bridge']['drops_total']} | {cpu['sensor']} |")
    return "\n".join(rows) + (
        f"\n\n{data['duration_s']:g} s measured after the warm-up; the downstream subscriber "
        f"used {cpu['downstream_listener']} % and the senders {cpu['senders_process']} % of one "
        f"core; load average (1 min) at the end: {data['load_avg_1m']}\n")


def lerobot_export(data: dict) -> str:
    rows = ["| export | bags | episodes | samples | wall time (whole CLI) | peak RSS | dataset |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            f"| streaming | {data['bags'].replace('x', ' of ', 1)} s | {data['episodes']} | "
            f"{data['samples']} | "
            f"{data['seconds']} s | {data['peak_rss_mb']} MB | {data['dataset_mb']} MB |"]
    return "\n".join(rows) + f"\n\nload average (1 min) at the end: {data['load_avg_1m']}\n"


RUN_RENDERERS: dict[str, Callable[[dict], str]] = {
    "expert_cpu": expert_cpu, "action_period": action_period, "sensor_latency": sensor_latency,
    "vlfeatures_latency": vlfeatures_latency, "camera_field": camera_field,
    "vl_profile": vl_profile, "spin_cpu": spin_cpu, "executor_tick": executor_tick,
    "soak": soak, "bridges": bridges, "lerobot_export": lerobot_export}


def render_run(path: Path, part: str | None = None) -> str:
    """The markdown table (and its note) of one timing benchmark's JSON (``RUN_RENDERERS``, by
    the run's ``benchmark``, or its ``part`` of ``RUN_PARTS``), headed by the CPU it ran on, its
    command and (when recorded) date."""
    data = json.loads(path.read_text())
    kind = "expert_cpu" if "candidates" in data else data.get("benchmark", "")
    renderer = RUN_PARTS.get(kind, {}).get(part or "") if kind in RUN_PARTS else (
        RUN_RENDERERS.get(kind) if part is None else None)
    if renderer is None:
        raise ValueError(f"{path}: no table {part or ''!r} for benchmark {kind!r}")
    cpu = data.get("cpu", {})
    date = f"; {data['date']}" if "date" in data else ""
    head = (f"*{path.name}: {cpu.get('model', '?')} ({cpu.get('kind', '?')}, "
            f"{cpu.get('cpu_count', '?')} CPUs); `{data.get('command', '')}`{date}*\n\n")
    return head + renderer(data)


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
        if "suite" in t and "synchronous" in t:  # the ratio's two success rates, not just "inf"
            shown = f"{t['suite']:.2f} / {t['synchronous']:.2f}" + ("" if value == float("inf")
                                                                 else f" = {value:.2f}")
        extra = f" ({t['strategy']})" if t.get("strategy") else ""
        rows.append(f"| `{name}`: {t['target']}{extra} | {shown} | "
                    f"{'yes' if t['met'] else '**no**'} |")
    return "\n".join(rows) + "\n"


def _pair(sim: float | None, dds: float | None, digits: int = 2) -> str:
    def show(v: float | None) -> str:
        return "-" if v is None else f"{v:.{digits}f}"
    return f"{show(sim)} / {show(dds)}"


def closed_loop_dds() -> str:
    """The simulator and the real nodes over DDS on the same checkpoint and episodes, per VLM
    latency: success [95 % Wilson interval], agreement, final error, handover jump, chunks."""
    run = load("closed_loop_dds.json")
    rows = ["| VLM latency | success, simulator | success, DDS | intervals overlap | episodes "
            "that differ | final error, median (mm) sim / DDS | largest handover jump (mm) "
            "sim / DDS | chunks per episode sim / DDS |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for key in run["settings"]["latencies_s"]:  # in the order run (the headline latency first)
        r = run["results"][key]
        a = r["agreement"]
        cells = []
        for side in ("sim", "dds"):
            s = r[side]
            lo, hi = s["success_interval"]
            cells.append(f"{s['successes']}/{s['episodes']} = {s['success_rate']:.2f} "
                         f"[{lo:.2f}, {hi:.2f}]")
        final, jump, chunks = (a["final_error_mm_median"], a["handover_jump_mm_max"],
                               a["chunks_per_episode"])
        rows.append(f"| {key} s | {cells[0]} | {cells[1]} | "
                    f"{'yes' if a['intervals_overlap'] else '**no**'} | "
                    f"{len(a['episodes_that_differ'])} | {_pair(final['sim'], final['dds'])} | "
                    f"{_pair(jump['sim'], jump['dds'], 3)} | "
                    f"{_pair(chunks['sim'], chunks['dds'], 1)} |")
    m, st = run["machine"], run["settings"]
    rows += ["", f"({st['episodes']} held-out episodes per latency, one checkpoint ({st['train']} "
                 f"recordings, {st['steps']} steps); run: `docs/benchmarks/closed_loop_dds.json`, "
                 f"{m['date']}, {m['cpu']['kind']} ({m['cpu_count']} cores), "
                 f"{m['wall_s'] / 60:.0f} min.)"]
    return "\n".join(rows) + "\n"


def closed_loop_dds_timing() -> str:
    """What the DDS run's timing was, beside the simulator's model of it, per VLM latency."""
    run = load("closed_loop_dds.json")

    def p50(e: dict | None, scale: float = 1.0) -> float | None:
        return None if not e else e["p50"] * scale

    def span(e: dict | None) -> str:
        return "-" if not e else f"{e['p50']:.0f} ({e['min']:.0f} to {e['max']:.0f})"

    rows = ["| VLM latency | first VL frame from t0 (ms), model / DDS | first VL arrival from "
            "t0 (ms), DDS | VL delivered age (ms), model / DDS | first chunk from t0 (ms), "
            "sim / DDS | chunk VL age (s), sim / DDS | setpoint gap p99 / max (ms), DDS | "
            "features = simulator's |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for key in run["settings"]["latencies_s"]:
        r = run["results"][key]
        t, model, f = r["timing"], r["timing"]["model"], r["vl_features_vs_sim"]
        gap_max = t["executor_setpoint_gap_ms_max"]
        diff = ("-" if f["max_abs_diff"] is None
                else f"max abs diff {f['max_abs_diff']:g} over {f['messages']} messages")
        rows.append(
            f"| {key} s | {model['first_vl_frame_after_t0_ms']:.0f} / "
            f"{span(t['first_vl_frame_after_t0_ms'])} | "
            f"{span(t['first_vl_arrival_after_t0_ms'])} | "
            f"{model['vl_delivered_age_ms']:.0f} / {span(t['vl_delivered_age_ms'])} | "
            f"{_pair(p50(t['first_chunk_s']['sim'], 1e3), p50(t['first_chunk_s']['dds'], 1e3), 0)} | "
            f"{_pair(p50(t['chunk_vl_age_s']['sim']), p50(t['chunk_vl_age_s']['dds']))} | "
            f"{_pair(p50(t['executor_setpoint_gap_ms_p99']), gap_max['max'] if gap_max else None, 1)} | "
            f"{diff} |")
    rows += ["", "(DDS: median over episodes (min to max); setpoint gaps: median of the "
                 "episodes' p99, largest gap of all. The model is the simulator's: its VLM "
                 "warm-started, updates every L from t0 - L - 5 ms, each on the newest frame of "
                 "the 100 ms grid, features arriving at t0 + k L; action ticks at t0 + k 100 ms.)"]
    return "\n".join(rows) + "\n"


def closed_loop_dds_diagnosis() -> str:
    """The simulator with one real-node difference at a time, against the DDS run."""
    run = load("history/closed_loop_dds_diagnosis.json")
    dds = load("closed_loop_dds.json")
    keys = dds["settings"]["latencies_s"]
    names = {"baseline": "as benchmarked",
             "tick_phase_50ms": "ticks 50 ms after the features' arrival",
             "tick_phase_80ms": "ticks 80 ms after the features' arrival",
             "state_lag_15ms": "robot state 15 ms old",
             "robot_one_tick_late": "robot one executor tick late"}
    rows = ["| variant of the simulator | " + " | ".join(
                f"{k} s: successes, final error median (mm), DDS lower in, paired DDS - "
                "variant (mm)" for k in keys) + " |",
            "| --- |" + " --- |" * len(keys)]
    for name, label in names.items():
        cells = []
        for k in keys:
            v = run["variants"][k][name]
            cells.append(f"{v['successes']}/{v['episodes']}, {v['final_error_mm_median']:.2f}, "
                         f"{v['dds_lower_final_in']}/{v['episodes']}, "
                         f"{v['dds_minus_variant_final_mm_median']:+.2f}")
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    cells = []
    for k in keys:
        d = dds["results"][k]["dds"]
        cells.append(f"{d['successes']}/{d['episodes']}, {d['final_error_mm_median']:.2f}, -, -")
    rows.append("| over DDS | " + " | ".join(cells) + " |")
    rows += ["", f"(run: `docs/benchmarks/history/closed_loop_dds_diagnosis.json`, "
                 f"{run['machine']['date']}, against `{run['dds_run']}`.)"]
    return "\n".join(rows) + "\n"
def _tail_text(summary: dict) -> str:
    """"0.216 ms p99 (n=794)"; the tail is max under 100 samples."""
    if summary["n"] >= 100:
        return f"{summary['p99']} ms p99 (n={summary['n']})"
    return f"{summary['max']} ms max (n={summary['n']})"


def tick_designs(kind: str) -> Callable[[], str]:
    """What each tick design costs and buys on one CPU kind, in one line each, from its three
    runs (action_period_designs, action_period_default, sensor_latency)."""
    def render() -> str:
        designs = load(f"action_period_designs-{kind}.json")
        default = load(f"action_period_default-{kind}.json")
        sensor = load(f"sensor_latency-{kind}.json")

        def period(data: dict, design: str, rate: float) -> dict:
            return next(r for r in data["runs"] if r["design"] == design and r["rate_hz"] == rate)

        def steps(design: str, rate: float) -> dict:
            return next(r for r in sensor["runs"] if r["design"] == design
                        and r["rate_hz"] == rate)["from_send"]

        def step(design: str, rate: float) -> str:
            return f"{steps(design, rate)['p50']} ms p50 (n={steps(design, rate)['n']})"

        d100, f100 = period(designs, "default", 100), period(default, "default", 100)
        pp50, pp100 = (period(designs, "publisher_process", r) for r in (50, 100))
        tt100 = period(designs, "timing_thread", 100)
        ex50, ex100 = (period(designs, "executor_timer", r) for r in (50, 100))
        ex10 = steps("executor_timer", 10)
        tt = [steps(d, r) for d in ("timing_thread/tick", "timing_thread/sensor") for r in (50, 100)]
        tt_n = sorted({t["n"] for t in tt})
        lines = [
            f"- `publisher_process` + `deadline` (the default): holds the period (100 Hz: "
            f"{_tail_text(d100['recv_dev'])} in the designs run, {_tail_text(f100['recv_dev'])} "
            f"in the defaults run, at {d100['chunk_rate_hz']} and {f100['chunk_rate_hz']} "
            f"chunks/s) for one more process and the publish lead; step to chunk "
            + ", ".join(step("default", r) for r in (10, 50, 100)) + " at 10, 50, 100 Hz.",
            f"- `publisher_process` + `tick`: the same period, but a chunk's inputs are one period "
            f"old when published: {step('publisher_process/tick', 10)} at 10 Hz (the "
            f"default: {step('default', 10)}).",
            f"- `publisher_process` + `sensor`: deviation {_tail_text(pp50['recv_dev'])} / "
            f"{_tail_text(pp100['recv_dev'])} at 50 / 100 Hz, but the expert runs on each sensor "
            f"batch up to `timing.inference_max_rate_hz` whatever the tick rate: on "
            f"{designs['cpu']['cpu_count']} cores {pp50['ticks_missing']} and "
            f"{pp100['ticks_missing']} ticks went missing at 50 and 100 Hz (the inputs' "
            "watchdogs).",
            f"- `timing_thread` (kept for this): no child process and the lowest latency, step to "
            f"chunk {min(t['p50'] for t in tt)}-"
            f"{max(t['p50'] for t in tt)} ms p50 (n={'-'.join(map(str, tt_n[::len(tt_n) - 1 or 1]))}"
            f" each) at 50-100 Hz (either trigger), but it publishes from the node's interpreter: "
            f"{_tail_text(tt100['recv_dev'])} at 100 Hz.",
            f"- `executor_timer` (removed; its rows are history): the fewest threads and each "
            f"chunk published as its inference "
            f"ends (step to chunk {ex10['p50']} ms p50 and {_tail_text(ex10)} at 10 Hz), but the "
            f"period is the expert's: {ex50['chunk_rate_hz']} and {ex100['chunk_rate_hz']} "
            f"chunks/s at 50 and 100 Hz, deviation p50 {ex50['recv_dev']['p50']} / "
            f"{ex100['recv_dev']['p50']} ms (n={ex50['recv_dev']['n']} / "
            f"{ex100['recv_dev']['n']}); `timing_thread` + `sensor` had the lower latency at every "
            f"rate."]
        return "\n".join(lines) + "\n"
    return render


def expert_start(kind: str) -> Callable[[], str]:
    """What `expert_runtime: auto` and the runtimes cost at a node's start on one CPU kind: the
    cached choice's re-check in every node start of the committed runs (their log line,
    ``expert.auto_summary``), and each runtime's build in the expert benchmark (``build_s``)."""
    def render() -> str:
        rechecks, names = [], []
        for path in sorted(BENCHMARKS.glob(f"*-{kind}.json")):
            run = json.loads(path.read_text())
            for r in run.get("runs", []):
                found = re.search(r"re-checked at \S+ in ([0-9.]+) s",
                                  r.get("expert", {}).get("auto_summary", ""))
                if found:
                    rechecks.append(float(found.group(1)))
                    names.append(path.name)
        rows = []
        if rechecks:
            rows.append(f"`auto`'s cached choice re-checked on the probes at a node's start: "
                        f"{min(rechecks)}-{max(rechecks)} s (min-max, n={len(rechecks)}: every "
                        "node start of " + ", ".join(f"`{n}`" for n in sorted(set(names))) + ").")
        expert = load(f"expert_cpu-{kind}.json")
        builds = [f"`{n}` {e['build_s']} s" for n, e in expert["candidates"].items()
                  if "build_s" in e]
        rows.append(f"Each runtime's build in `expert_cpu-{kind}.json` (one each, converted models "
                    "from the cache): " + ", ".join(builds) + ".")
        return "\n\n".join(rows) + "\n"
    return render


def gpu_check() -> str:
    """The GPU tables: from docs/benchmarks/gpu_check.json once a GPU run is committed there,
    every figure "not measured" until then."""
    sys.path.insert(0, str(ROOT / "tools" / "bench"))
    from gpu_check_table import render

    path = BENCHMARKS / "gpu_check.json"
    return render(json.loads(path.read_text()) if path.exists() else None)


RENDERERS: dict[str, Callable[[], str]] = {
    "gpu-check": gpu_check,
    "ci-run": ci_runs,
    "closed-loop-success": closed_loop_success,
    "closed-loop-dds": closed_loop_dds,
    "closed-loop-dds-timing": closed_loop_dds_timing,
    "closed-loop-dds-diagnosis": closed_loop_dds_diagnosis,
    "closed-loop-handovers": closed_loop_handovers,
    "closed-loop-targets": closed_loop_targets,
    "staleness-dynamic": staleness_curves("dynamic"),
    "staleness-static": staleness_curves("static"),
    "staleness-verdicts": staleness_verdicts,
    "tick-designs-amd-epyc-avx512": tick_designs("amd-epyc-avx512"),
    "expert-start-amd-epyc-avx512": expert_start("amd-epyc-avx512"),
}


def markdown_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True)
    return [ROOT / line for line in out.stdout.split()]


def figure(run: str, key_path: str, fmt: str) -> str:
    """The value at ``key_path`` (keys and list indices joined by /) of a committed run."""
    value: object = load(run)
    for key in key_path.split("/"):
        value = value[int(key)] if isinstance(value, list) else value[key]  # type: ignore[index]
    return format(value, fmt)


def check(path: Path, write: bool) -> list[str]:
    """Differences between ``path``'s tables and their runs (rewritten when ``write``)."""
    text = path.read_text()
    problems: list[str] = []

    def replace(match: re.Match) -> str:
        name, part = match.group("name"), match.group("part")
        if name.endswith(".json") and (ROOT / name).is_file():
            try:
                want = render_run(ROOT / name, part)
            except ValueError as exc:
                problems.append(f"{path.relative_to(ROOT)}: {exc}")
                return match.group(0)
        elif name in RENDERERS and part is None:
            want = RENDERERS[name]()
        else:
            problems.append(f"{path.relative_to(ROOT)}: unknown table {name!r}")
            return match.group(0)
        if match.group("body") != want:
            problems.append(f"{path.relative_to(ROOT)}: table {name!r} "
                            + ("rewritten from its run" if write else
                               "differs from its run (python tools/docs_tables.py --write)"))
        return match.group(1) + want + match.group(5)

    def replace_figure(match: re.Match) -> str:
        where = f"{match.group('run')} {match.group('path')}"
        try:
            want = figure(match.group("run"), match.group("path"), match.group("fmt"))
        except (OSError, KeyError, IndexError, ValueError, TypeError) as exc:
            problems.append(f"{path.relative_to(ROOT)}: figure {where}: {exc!r}")
            return match.group(0)
        if match.group("body") != want:
            problems.append(f"{path.relative_to(ROOT)}: figure {where} "
                            + ("rewritten from its run" if write else
                               "differs from its run (python tools/docs_tables.py --write)"))
        return match.group(1) + want + match.group(6)

    new = FIG.sub(replace_figure, BLOCK.sub(replace, text))
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
