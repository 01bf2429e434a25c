#!/usr/bin/env python3
"""Benchmark: the simulated closed loop confirmed with the real nodes over DDS, same episodes.

1. Trains (or takes, ``--checkpoint``) one policy on the moving-target task's closed-loop
   variant: ``train_policy(data, "A", ..., vl_age_ms=[0, 3500])``, the ``A_wide`` policy of
   tools/bench/bench_closed_loop.py (same StalenessSettings defaults: 192 recordings, 1500 steps).
2. For each VLM latency of ``--latencies``: runs the simulator (closed_loop_sim.run_episode,
   mode "suite + age input, latest_only", max_vl_age 3.5 s, warm-started VLM) on the
   checkpoint's ``--episodes`` held-out scenes, then the same scenes with the real processes over
   DDS (tools/asyncvla_testing/closed_loop_dds.py: the world's camera and force/OCT, the real
   VLM node, the relay that imposes the latency, the real action node with max_vl_age 3.5 s and
   latest_only blending, the real executor, the kinematic robot behind the real robot bridge;
   fresh processes per latency), success measured from the robot's logged states by the
   simulator's rule.

Reports per latency both success rates with 95 % Wilson intervals, whether the intervals overlap,
the episodes where the two differ, final error and largest handover jump (medians and paired
differences), the timing the DDS run actually had (VL frame offsets, arrivals and delivered
ages, first chunk, the executor's setpoint rate and gaps, the relay's hold), and checks that the
VL features the action node got are the simulator's for the same frame (the world's frames and
stamps, the VLM node, the relay). One JSON object on stdout and in DIR/result.json.

Usage: python tools/bench/bench_closed_loop_dds.py --out DIR [--episodes 10] [--latencies 1.5,0.3]
       [--train 192] [--steps 1500] [--checkpoint DIR --workdir DIR] [--output pose|twist]
       (also: python tools/bench/bench_closed_loop.py --dds ...). Wrap it in
       ``flock /tmp/asyncvla-cpu.lock`` on a shared machine: the DDS part measures real time.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

WIDE_AGES_MS = [0.0, 3500.0]
MAX_VL_AGE = 3.5
MODE_NAME = "suite + age input, latest_only"
LATENCY_IMPOSED_BY = (
    "VLM node target_period = latency - 10 ms (its 20 ms timer: starts exactly latency apart), "
    "set through its parameter service at t0 - latency - 50 ms (warm start: the first update "
    "takes the frame of t0 - latency - 100 ms, as the simulator's); paused between episodes; a "
    "relay republishes each VLFeatures (same stamp, latched QoS) latency - compute_time after "
    "it arrives")


def intervals_overlap(a: list[float], b: list[float]) -> bool:
    return not (a[1] < b[0] or b[1] < a[0])


def _stats(values: list[float], scale: float = 1.0) -> dict | None:
    v = np.asarray([x for x in values if x is not None], dtype=np.float64) * scale
    if not v.size:
        return None
    return {"n": int(v.size), "min": round(float(v.min()), 2),
            "p50": round(float(np.median(v)), 2), "p90": round(float(np.percentile(v, 90)), 2),
            "max": round(float(v.max()), 2)}


def timing_summary(dds_rows: list[dict], sim_rows: list[dict], latency: float) -> dict:
    """What the DDS run's timing was, next to the simulator's model of it."""
    t = [r["timing"] for r in dds_rows]
    flat = lambda key: [x for e in t for x in e[key]]  # noqa: E731
    first_offsets = [e["vl_frame_offsets_ms"][0] for e in t if e["vl_frame_offsets_ms"]]
    first_age = [e["vl_delivered_age_ms"][0] for e in t if e["vl_delivered_age_ms"]]
    periods = [b - a for e in t for a, b in zip(e["vl_frame_offsets_ms"],
                                                  e["vl_frame_offsets_ms"][1:])]
    return {
        "first_vl_frame_after_t0_ms": _stats(first_offsets),
        "vl_frame_period_ms": _stats(periods),
        "vl_delivered_age_ms": _stats(flat("vl_delivered_age_ms")),
        "first_vl_delivered_age_ms": _stats(first_age),
        "vl_compute_ms": _stats(flat("vl_compute_ms")),
        "relay_held_ms": _stats(flat("relay_held_ms")),
        "first_chunk_s": {"dds": _stats([r["first_chunk_s"] for r in dds_rows]),
                          "sim": _stats([r["first_chunk_s"] for r in sim_rows])},
        "chunks_per_episode": {"dds": _stats([r["chunks"] for r in dds_rows]),
                               "sim": _stats([r["chunks"] for r in sim_rows])},
        "chunk_vl_age_s": {"dds": _stats([a for r in dds_rows for a in r["vl_ages_s"]]),
                           "sim": _stats([a for r in sim_rows for a in r["vl_ages_s"]])},
        "held_s": {"dds": _stats([r["held_s"] for r in dds_rows]),
                   "sim": _stats([r["held_s"] for r in sim_rows])},
        "chunk_transport_ms": _stats(flat("chunk_transport_ms")),
        "executor_setpoints_per_episode": _stats([e["setpoints"] for e in t]),
        "executor_setpoint_gap_ms_p50": _stats([e["setpoint_gap_ms_p50"] for e in t]),
        "executor_setpoint_gap_ms_p99": _stats([e["setpoint_gap_ms_p99"] for e in t]),
        "executor_setpoint_gap_ms_max": _stats([e["setpoint_gap_ms_max"] for e in t]),
        "robot_state_gap_ms_max": _stats([r["state_gap_ms_max"] for r in dds_rows]),
        "enable_late_ms": _stats([e["enabled_late_ms"] for e in t]),
        "vlm_resumed_after_t0_ms": _stats([e["vlm_resumed_ms"] for e in t]),
        "vlm_resumed_late_ms": _stats([e["vlm_resumed_late_ms"] for e in t]),
        "vl_of_this_scene_at_t0": sum(bool(e["vl_at_t0"]) for e in t),
        "vl_arrival_after_t0_ms": _stats(flat("vl_arrival_ms")),
        "first_vl_arrival_after_t0_ms": _stats([e["vl_arrival_ms"][0] for e in t
                                                if e["vl_arrival_ms"]]),
        "model": {"vl_delivered_age_ms": round((latency + 0.1) * 1e3, 1),
                  "first_vl_frame_after_t0_ms": round(-(latency + 0.1) * 1e3, 1),
                  "vl_frame_period_ms": round(latency * 1e3, 1),
                  "vl_arrival_after_t0_ms": "0, L, 2L, ...",
                  "note": "the simulator (warm-started VLM): updates start at t0 - L - 5 ms + "
                          "k L and take the newest frame on the 100 ms grid (t0 - L - 100 ms + "
                          "k L for L a multiple of 100 ms); features arrive L + 5 ms after the "
                          "start, i.e. at t0 + k L, aged L + 100 ms; action ticks at t0 + k "
                          "100 ms, the first one on the first features"},
    }


def feature_agreement(loop, features, episodes_scenes) -> dict:
    """The relayed features against the simulator's for the same scene and frame time."""
    from asyncvla_testing.closed_loop_dds import frame_time_ns
    from asyncvla_core.vl_payload import decode_features

    diffs, off_grid = [], 0
    for index, msg in loop.vl_messages():
        ep = loop.episodes[index]
        from asyncvla_common.timeconv import stamp_to_ns

        ft = frame_time_ns(stamp_to_ns(msg.header.stamp), ep["t0_ns"])
        if ft % 100_000_000:
            off_grid += 1
            continue
        got = decode_features(msg.data, msg.num_tokens, msg.feature_dim, msg.dtype)
        want = features(episodes_scenes[index], ft)
        diffs.append(float(np.max(np.abs(np.asarray(got, np.float32) - want))))
    return {"messages": len(diffs), "off_grid_stamps": off_grid,
            "max_abs_diff": max(diffs) if diffs else None,
            "median_max_abs_diff": float(np.median(diffs)) if diffs else None}


def agreement(dds_rows: list[dict], sim_rows: list[dict]) -> dict:
    """DDS against the simulator on the same checkpoint and episodes: success rates with their
    95 % Wilson intervals (agree = the intervals overlap), the episodes whose outcome differs,
    final error and the largest handover jump (paired per episode)."""
    from bench_closed_loop import summarise

    dds, simulated = summarise(dds_rows), summarise(sim_rows)
    final_diff = [(a["final_error_m"] - b["final_error_m"]) * 1e3
                  for a, b in zip(dds_rows, sim_rows)]
    jump_diff = [(a["max_handover_jump_m"] - b["max_handover_jump_m"]) * 1e3
                 for a, b in zip(dds_rows, sim_rows) if a["handovers"] and b["handovers"]]
    return {
        "intervals_overlap": intervals_overlap(dds["success_interval"],
                                               simulated["success_interval"]),
        "dds_success": [dds["successes"], dds["episodes"]],
        "sim_success": [simulated["successes"], simulated["episodes"]],
        "dds_success_interval": dds["success_interval"],
        "sim_success_interval": simulated["success_interval"],
        "episodes_that_differ": [n for n, (a, b) in enumerate(zip(dds_rows, sim_rows))
                                 if a["success"] != b["success"]],
        "final_error_mm_median": {"dds": dds["final_error_mm_median"],
                                  "sim": simulated["final_error_mm_median"]},
        "final_error_mm_paired_diff": _stats(final_diff),
        "handover_jump_mm_max": {"dds": dds["handover_jump_mm_max"],
                                 "sim": simulated["handover_jump_mm_max"]},
        "handover_jump_mm_median": {"dds": dds["handover_jump_mm_median"],
                                    "sim": simulated["handover_jump_mm_median"]},
        "handover_jump_mm_paired_diff": _stats(jump_diff),
        "chunks_per_episode": {"dds": dds["chunks_per_episode"],
                               "sim": simulated["chunks_per_episode"]},
    }


def run_dds(checkpoint: str, model_path: str, latency: float, output: str, scenes: list,
            log) -> tuple[list[dict], dict, Any]:
    """The episodes over DDS at one latency (fresh processes): rows, node counters, loop."""
    from asyncvla_testing.closed_loop_dds import DdsLoop, DdsSettings, Monitor, start_processes
    from asyncvla_testing.processes import ProcessGroup, allocate_domain_id

    dds_settings = DdsSettings(latency_s=latency, max_vl_age=MAX_VL_AGE, output=output)
    domain = allocate_domain_id()
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_DOMAIN_ID=str(domain),
               PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    env.pop("ROS_STATIC_PEERS", None)
    group = ProcessGroup(env)
    monitor = None
    try:
        procs = start_processes(group, checkpoint, model_path, dds_settings)
        monitor = Monitor(domain, output)
        loop = DdsLoop(procs, monitor, dds_settings)
        loop.prepare()
        for n, scene in enumerate(scenes):
            loop.run_episode(n, scene)
            log(f"dds {latency} s: episode {n} done")
            for name, proc in procs.items():
                if not proc.alive():
                    raise RuntimeError(f"{name} exited:\n{proc.output()[-3000:]}")
        loop.finish()
        rows = loop.results()
        world_stats = [line for line in procs["world"].lines if line.startswith("WORLD STATS")]
        # Whole-run counters (the gaps between episodes included: disabled ticks, the VL
        # watchdog while the VLM is paused), from the nodes' last /diagnostics.
        extra = {
            "world": world_stats[-1] if world_stats else None,
            "node_counters": {
                "action_node": {k: v for k, v in loop.final_diag.get("action", {}).items()
                                if k.startswith(("withheld_", "chunks_published", "inferences",
                                                 "ticks_skipped", "tick_late_ms_p99",
                                                 "inference_ms_p"))},
                "executor": {k: v for k, v in loop.final_diag.get("executor", {}).items()
                             if k.startswith(("setpoints", "chunks_", "guard_refusals",
                                              "clamped", "held_s_"))}},
            "process_tails": {name: proc.lines[-3:] for name, proc in procs.items()
                              if name not in ("robot", "relay")}}
    finally:
        if monitor is not None:
            monitor.close()
        group.stop_all()
    return rows, extra, loop


def _rounded(row: dict, drop: tuple[str, ...]) -> dict:
    return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()
            if k not in drop}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--episodes", type=int, default=10, help="held-out episodes")
    parser.add_argument("--latencies", "--latency", default="1.5",
                        help="VLM compute per update, s, comma-separated (e.g. 1.5,0.3)")
    parser.add_argument("--train", type=int, default=192, help="training recordings")
    parser.add_argument("--steps", type=int, default=1500, help="training steps")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", default=None,
                        help="keep recordings, feature cache and checkpoint here")
    parser.add_argument("--checkpoint", default=None,
                        help="use this A_wide checkpoint (trained on --workdir's recordings)")
    parser.add_argument("--output", choices=["pose", "twist"], default="pose",
                        help="executor setpoints (pose: the simulator's robot model)")
    args = parser.parse_args(argv)
    import torch

    from asyncvla_testing import closed_loop_sim as sim
    from asyncvla_policy.checkpoint import load_policy
    from asyncvla_policy.expert_runtimes import build_runtime
    from asyncvla_testing.staleness_experiment import (StalenessSettings, prepare_task,
                                                       train_policy)
    from bench_closed_loop import summarise

    torch.set_num_threads(args.threads)
    settings = StalenessSettings(train_episodes=args.train, test_episodes=args.episodes,
                                 steps=args.steps, seeds=(0,))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    tmp = tempfile.TemporaryDirectory(prefix="bench_closed_loop_dds_")
    workdir = Path(args.workdir).resolve() if args.workdir else Path(tmp.name)
    data = prepare_task("dynamic", settings, workdir, feedforward=True,
                        reuse=args.workdir is not None)
    laps = {"prepare_s": round(time.time() - started, 1)}
    final_loss = None
    if args.checkpoint:
        checkpoint = Path(args.checkpoint).resolve()
        policy = load_policy(str(checkpoint))
    else:
        run_dir = workdir / "runs" / "A_wide"
        policy, final_loss = train_policy(data, "A", settings, 0, run_dir, log,
                                          vl_age_ms=WIDE_AGES_MS)
        checkpoint = run_dir / "latest"
    laps["train_s"] = round(time.time() - started - laps["prepare_s"], 1)
    scenes = data.test_scenes
    model_path = str(workdir / "tiny_vl")
    mode = sim.Mode(MODE_NAME, max_vl_age=MAX_VL_AGE, policy="A_wide")
    features = sim.FeatureSource(data.extractor, settings.image_size)
    runtime = build_runtime("torch_float32", policy, threads=args.threads)

    results: dict = {}
    for latency in [float(v) for v in args.latencies.split(",")]:
        lap = time.time()
        # The simulator first: the DDS run then has the machine to itself.
        sim_rows = [sim.run_episode(scene, runtime.predict, features, data.model_id,
                                    sim.LatencyModel(latency), mode).as_dict()
                    for scene in scenes]
        log(f"sim {latency} s: {sum(r['success'] for r in sim_rows)}/{len(sim_rows)} successes")
        laps[f"sim_{latency:g}_s"] = round(time.time() - lap, 1)
        lap = time.time()
        dds_rows, extra, loop = run_dds(str(checkpoint), model_path, latency, args.output,
                                        scenes, log)
        laps[f"dds_{latency:g}_s"] = round(time.time() - lap, 1)
        log(f"dds {latency} s: {sum(r['success'] for r in dds_rows)}/{len(dds_rows)} successes")
        results[f"{latency:g}"] = {
            "latency_s": latency, "episodes": len(scenes),
            # (the DDS rows' "timing" and per-scene fields are not the simulator's: summarise
            # reads only the shared fields)
            "dds": summarise(dds_rows), "sim": summarise(sim_rows),
            "agreement": agreement(dds_rows, sim_rows),
            "timing": timing_summary(dds_rows, sim_rows, latency),
            "vl_features_vs_sim": feature_agreement(loop, features, scenes),
            **extra,
            "per_episode": [{
                "scene": {"velocity_mm_s": round(sc.velocity * 1e3, 2),
                          "offset_at_t0_mm": [round(v * 1e3, 2) for v in
                                              (sc.target(np.array([0.8]))[0]
                                               - sc.tip(np.array([0.8]))[0])]},
                "dds": _rounded(d, ("vl_ages_s", "timing", "refusals")),
                "dds_timing": d["timing"],
                "sim": _rounded(r, ("vl_ages_s",)),
            } for sc, d, r in zip(scenes, dds_rows, sim_rows)]}
    result: dict = {"results": results}
    result["settings"] = {
        "episodes": args.episodes, "latencies_s": list(results), "train": args.train,
        "steps": args.steps, "wide_ages_ms": WIDE_AGES_MS, "max_vl_age_s": MAX_VL_AGE,
        "vl_timeout_s": MAX_VL_AGE, "blending": "latest_only", "tick_source": "publisher_process (the default)",
        "executor_output": args.output, "mode": MODE_NAME, "tolerance_mm": 1.0,
        "settle_s": 0.3, "duration_s": 2.5, "checkpoint": str(checkpoint),
        "final_train_loss": final_loss,
        "latency_imposed_by": LATENCY_IMPOSED_BY}
    from asyncvla_policy.cpu_info import cpu_record

    result["machine"] = {
        "cpu": cpu_record(), "cpu_count": os.cpu_count(), "threads": args.threads,
        "torch": torch.__version__, "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), **laps,
        "wall_s": round(time.time() - started, 1),
        "command": " ".join(["python", "tools/bench/bench_closed_loop_dds.py",
                             *(argv if argv is not None else sys.argv[1:])])}
    text = json.dumps(result, indent=2, sort_keys=True, default=float)
    (out / "result.json").write_text(text + "\n")
    print(text)
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
