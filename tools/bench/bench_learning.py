#!/usr/bin/env python3
"""Benchmark: does the policy learn what the design claims (vision, prompt, reuse vs stale VL)?

Writes the insertion task's recordings (asyncvla_training/testing/insertion_task.py: the prompt
names the side, the tool camera shows how far, the force/OCT probe the contact), caches the tiny
random Qwen2.5-VL's features, trains stage 1 on CPU (reuse 1, reuse 4, and a VL-ablated twin
on zeroed features) and evaluates on held-out recordings: full vs ablated twin vs features shuffled
across samples vs the mean chunk, the prompt swap's lateral flips, and the error vs VL age
(0..400 ms injected at evaluation). Prints one JSON object (with the targets and whether they are
met) and writes learning.png (+ result.json) to --out.

Usage: python tools/bench/bench_learning.py --out /tmp/bench_learning [--steps N] [--train N]
       [--test N] [--seed S] [--threads 2] [--workdir DIR]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from asyncvla_training.cpu_info import cpu_record


def main(argv: list[str] | None = None) -> int:
    from asyncvla_training.testing.learning_experiment import (
        ExperimentSettings, plot_result, run_experiment)

    defaults = ExperimentSettings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory for learning.png and result.json")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--train", type=int, default=defaults.train_episodes)
    parser.add_argument("--test", type=int, default=defaults.test_episodes)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--workdir", default=None, help="keep bags, cache and runs here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    settings = ExperimentSettings(train_episodes=args.train, test_episodes=args.test,
                                  steps=args.steps, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench_learning_") as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        if args.workdir and any(workdir.glob("*")):
            print(f"{workdir} is not empty: give an empty --workdir", file=sys.stderr)
            return 2
        result = run_experiment(settings, workdir, log=lambda line: print(line, file=sys.stderr))
    result["cpu"] = cpu_record()
    result["plot"] = str(plot_result(result, out / "learning.png"))
    text = json.dumps(result, indent=2, sort_keys=True)
    (out / "result.json").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
