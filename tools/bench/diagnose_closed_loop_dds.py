#!/usr/bin/env python3
"""Diagnosis: which difference of the real nodes moves the simulator to the DDS figures?

bench_closed_loop_dds.py found the real nodes over DDS ending closer to the moving target than
the simulator on the same checkpoint and episodes (docs/CLOSED_LOOP.md). This runs the simulator
(closed_loop_sim.run_episode, mode "suite + age input, latest_only", max_vl_age 3.5 s) on the
DDS run's checkpoint and held-out scenes with one real-node difference added at a time, and
compares each variant's final errors with the DDS run's, episode by episode:

* ``tick_phase_50ms`` / ``tick_phase_80ms``: the action node's ticks at t0 + 50 (80) ms + k 100 ms
  instead of on the features' arrival (the real node ticks on a grid of its own; its first chunk
  came a median 80 ms after t0);
* ``state_lag_15ms``: the robot state the action node and executor read is the robot's position
  15 ms earlier (the kinematic robot's wire format and the robot bridge: 5-20 ms);
* ``robot_one_tick_late``: the robot reaches each setpoint one executor tick (10 ms) later.

The variants are made by editing a copy of closed_loop_sim.py's source in memory (the simulator
itself is unchanged). One JSON object on stdout.

Usage: python tools/bench/diagnose_closed_loop_dds.py --workdir DIR [--checkpoint DIR]
       [--dds docs/benchmarks/closed_loop_dds.json]   (the bench's --workdir: its recordings)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import numpy as np  # noqa: E402

EDITS = [
    ("            elif (now - t0) % action_ns == 0:\n",
     "            elif now >= t0 + TICK_OFF and (now - t0 - TICK_OFF) % action_ns == 0:\n"),
    ("            state = _state(position)\n",
     "            HIST.append((now, position.copy()))\n"
     "            lagged = [p for t, p in HIST if t <= now - STATE_LAG]\n"
     "            state = _state(lagged[-1] if lagged else HIST[0][1])\n"),
    ("                if tick.setpoint is not None:\n"
     "                    position = np.asarray(tick.setpoint.target[:3], dtype=np.float64)\n",
     "                if ROBOT_LAG and PENDING:\n"
     "                    position = PENDING.pop()\n"
     "                if tick.setpoint is not None:\n"
     "                    if ROBOT_LAG:\n"
     "                        PENDING[:] = [np.asarray(tick.setpoint.target[:3], dtype=np.float64)]\n"
     "                    else:\n"
     "                        position = np.asarray(tick.setpoint.target[:3], dtype=np.float64)\n"),
    ("    now = min(t0 - int(round(0.2 * NS)), first_take)\n",
     "    HIST.clear(); PENDING.clear()\n    now = min(t0 - int(round(0.2 * NS)), first_take)\n"),
]
VARIANTS = {"baseline": {}, "tick_phase_50ms": {"TICK_OFF": 50_000_000},
            "tick_phase_80ms": {"TICK_OFF": 80_000_000},
            "state_lag_15ms": {"STATE_LAG": 15_000_000}, "robot_one_tick_late": {"ROBOT_LAG": True}}
DEFAULTS = {"TICK_OFF": 0, "STATE_LAG": 0, "ROBOT_LAG": False}


def variant_module() -> types.ModuleType:
    src = (ROOT / "tools" / "asyncvla_testing" / "closed_loop_sim.py").read_text()
    for old, new in EDITS:
        if src.count(old) != 1:
            raise RuntimeError(f"closed_loop_sim.py changed; edit not applicable: {old!r}")
        src = src.replace(old, new)
    mod = types.ModuleType("closed_loop_sim_variant")
    mod.__dict__.update(DEFAULTS, HIST=[], PENDING=[])
    sys.modules[mod.__name__] = mod
    exec(compile(src, mod.__name__, "exec"), mod.__dict__)  # noqa: S102 - our own source
    return mod


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--checkpoint", default=None, help="default: WORKDIR/runs/A_wide/latest")
    parser.add_argument("--dds", default=str(ROOT / "docs" / "benchmarks" / "closed_loop_dds.json"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    import torch

    from asyncvla_policy.checkpoint import load_policy
    from asyncvla_policy.cpu_info import cpu_record
    from asyncvla_policy.expert_runtimes import build_runtime
    from asyncvla_testing.staleness_experiment import StalenessSettings, prepare_task

    torch.set_num_threads(args.threads)
    started = time.time()
    dds = json.loads(Path(args.dds).read_text())
    st = dds["settings"]
    settings = StalenessSettings(train_episodes=st["train"], test_episodes=st["episodes"],
                                 steps=st["steps"], seeds=(0,))
    workdir = Path(args.workdir)
    data = prepare_task("dynamic", settings, workdir, feedforward=True, reuse=True)
    checkpoint = args.checkpoint or str(workdir / "runs" / "A_wide" / "latest")
    runtime = build_runtime("torch_float32", load_policy(checkpoint), threads=args.threads)
    mod = variant_module()
    features = mod.FeatureSource(data.extractor, settings.image_size)
    out: dict = {"variants": {}}
    for key in st["latencies_s"]:
        latency = float(key)
        ref = np.array([e["dds"]["final_error_m"] for e in dds["results"][key]["per_episode"]])
        ref_success = [e["dds"]["success"] for e in dds["results"][key]["per_episode"]]
        out["variants"][key] = {}
        for name, knobs in VARIANTS.items():
            mod.__dict__.update(DEFAULTS)
            mod.__dict__.update(knobs)
            rows = [mod.run_episode(scene, runtime.predict, features, data.model_id,
                                    mod.LatencyModel(latency),
                                    mod.Mode(st["mode"], max_vl_age=st["max_vl_age_s"]))
                    for scene in data.test_scenes]
            final = np.array([r.final_error_m for r in rows])
            out["variants"][key][name] = {
                "successes": int(sum(r.success for r in rows)), "episodes": len(rows),
                "final_error_mm_median": round(float(np.median(final) * 1e3), 3),
                "dds_minus_variant_final_mm_median": round(float(np.median(ref - final) * 1e3), 3),
                "dds_lower_final_in": int(np.sum(ref < final)),
                "outcome_differs_from_dds_in": int(sum(r.success != d
                                                       for r, d in zip(rows, ref_success))),
                "handover_jump_mm_max": round(max(r.max_handover_jump_m for r in rows) * 1e3, 3)}
            print(f"{key} s {name}: {out['variants'][key][name]}", file=sys.stderr, flush=True)
    out["dds_run"] = os.path.relpath(args.dds, ROOT)
    out["machine"] = {"cpu": cpu_record(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
                      "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                      "wall_s": round(time.time() - started, 1),
                      "command": " ".join(["python", "tools/bench/diagnose_closed_loop_dds.py",
                                           *(argv if argv is not None else sys.argv[1:])])}
    print(json.dumps(out, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
