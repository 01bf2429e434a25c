#!/usr/bin/env python3
"""Benchmark: does a policy act well on a stale view? (F vs S vs A on the moving-target task)

Writes the moving-target task's recordings (tools/asyncvla_testing/tracking_task.py: a target
drifting at its own speed, seen by a world-fixed camera that colour-codes its velocity; the
recorded expert servoes on its current position) and the static-target control, caches the tiny
random Qwen2.5-VL's features, trains stage-1 policies on CPU (F: fresh features only; S: VL ages
drawn from 0-700 ms, no age input; A: the same ages and the age as an input; a VL-ablated twin)
for every seed, and evaluates them on held-out recordings with VL features 0-600 ms old.

Prints one JSON object (``gates`` first: a failed gate means the task is invalid and the claims
mean nothing; then ``claims``, each with value, target, met; ``curves`` with 95 % bootstrap
intervals over (seed, episode) pairs; ``seeds``; ``settings``) and writes it to DIR/result.json,
with the plot DIR/staleness.png.

Usage: python tools/bench/bench_staleness.py --out DIR [--seeds 0,1] [--steps N] [--train N]
       [--test N] [--threads 2] [--workdir DIR] [--tasks dynamic,static]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from asyncvla_policy.cpu_info import cpu_record

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/: asyncvla_testing


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


def main(argv: list[str] | None = None) -> int:
    from asyncvla_testing.staleness_experiment import (TASKS, StalenessSettings,
                                                       plot_result, run_experiment)

    defaults = StalenessSettings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory for result.json and staleness.png")
    parser.add_argument("--seeds", type=_ints, default=defaults.seeds, help="training seeds, e.g. 0,1")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--train", type=int, default=defaults.train_episodes)
    parser.add_argument("--test", type=int, default=defaults.test_episodes)
    parser.add_argument("--tasks", default=",".join(defaults.tasks))
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--workdir", default=None, help="keep bags, cache and runs here (empty)")
    args = parser.parse_args(argv)
    tasks = tuple(t for t in args.tasks.split(",") if t)
    if not tasks or set(tasks) - set(TASKS) or not args.seeds:
        print(f"--tasks must be among {list(TASKS)} and --seeds non-empty", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)
    settings = StalenessSettings(train_episodes=args.train, test_episodes=args.test,
                                 steps=args.steps, seeds=args.seeds, tasks=tasks)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bench_staleness_") as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        if args.workdir and any(workdir.glob("*")):
            print(f"{workdir} is not empty: give an empty --workdir", file=sys.stderr)
            return 2
        result = run_experiment(settings, workdir, log=lambda line: print(line, file=sys.stderr))
    result["machine"] = {"cpu": cpu_record(),
                         "cpu_count": os.cpu_count(), "threads": args.threads,
                         "torch": torch.__version__, "wall_s": round(time.time() - started, 1),
                         "date": time.strftime("%Y-%m-%d"), "command": " ".join(
                             ["python", "tools/bench/bench_staleness.py", *(argv or sys.argv[1:])])}
    result["plot"] = str(plot_result(result, out / "staleness.png"))
    text = json.dumps(result, indent=2, sort_keys=True)
    (out / "result.json").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
