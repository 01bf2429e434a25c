"""The main job's training leg: record -> train -> a checkpoint the action node runs.

Writes two short rosbag2 recordings of the bridge topics (synthetic robot motion, force/OCT,
the demo's camera views; mcap and sqlite3) with the data module's writer, then trains stage 1
(the tiny VLM frozen, features extracted on the fly) with the real `asyncvla-train` entry point in
a child process, on the VL settings the demo's VLM node runs with, so the checkpoint's
`vl_model_id` is the one the node publishes.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

from asyncvla_testing.assets import DemoAssets


def needle_motion():
    """A slow, insertion-like motion (a few mm/s, a few mrad/s), inside the output guard's
    default limits, instead of the data tests' brisk motion (up to 54 mm/s)."""
    from asyncvla_training.testing.synthetic_bag import SyntheticMotion

    class NeedleMotion(SyntheticMotion):
        def joints(self, t):
            t = np.asarray(t, dtype=np.float64)[..., None]
            j = np.arange(6, dtype=np.float64)
            return 0.05 * j - 0.1 + 0.02 * np.sin(0.5 * t + j) + 0.01 * t

        def position(self, t):
            t = np.asarray(t, dtype=np.float64)
            return np.stack([0.40 + 0.004 * np.sin(0.8 * t), -0.05 + 0.002 * t,
                             0.30 - 0.003 * t], axis=-1)

        def theta(self, t):
            t = np.asarray(t, dtype=np.float64)
            return 0.1 + 0.03 * t + 0.01 * np.sin(1.0 * t)

    return NeedleMotion()


def train_demo_policy(assets: DemoAssets, views: list[str], directory: str, steps: int,
                      env: dict[str, str] | None = None) -> dict:
    """Record two bags and train; returns the training summary (with `checkpoint`)."""
    from asyncvla_training.testing.synthetic_bag import SyntheticBagSpec, write_synthetic_bag

    started = time.monotonic()
    bags = os.path.join(directory, "bags")
    run = os.path.join(directory, "run")
    for path in (bags, run):
        if os.path.exists(path):
            shutil.rmtree(path)
    os.makedirs(bags)
    train_bag = os.path.join(bags, "episode_train")
    val_bag = os.path.join(bags, "episode_val")
    write_synthetic_bag(train_bag, "mcap", SyntheticBagSpec(duration=5.0, views=tuple(views),
                                                          motion=needle_motion()))
    # Held out from training; the demo also replays it into the nodes.
    write_synthetic_bag(val_bag, "sqlite3", SyntheticBagSpec(duration=3.5, views=tuple(views),
                                                             motion=needle_motion()))
    width, height = assets.image_size
    command = [sys.executable, "-m", "asyncvla_training.train.train_cli", "--stage", "1",
               "--bag", train_bag, "--val-bag", val_bag, "--vl-model", assets.model_dir,
               "--out", run, "--set", "policy_size=tiny", "--set", f"image_width={width}",
               "--set", f"image_height={height}",
               "--set", f"num_feature_tokens={assets.num_feature_tokens}",
               "--set", f"views={json.dumps(views)}", "--set", f"total_steps={steps}",
               "--set", "warmup_steps=5", "--set", "batch_size=8", "--set", "grad_accum_steps=1",
               "--set", f"eval_every={max(1, steps // 3)}", "--set", f"save_every={steps}"]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"training failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    done = [json.loads(line) for line in proc.stdout.splitlines()
            if line.startswith("{") and '"event": "done"' in line]
    if not done:
        raise RuntimeError(f"training printed no summary:\n{proc.stdout[-3000:]}")
    summary = done[-1]
    summary.pop("event", None)
    checkpoint = os.path.join(run, "best")
    if not os.path.isdir(checkpoint):
        checkpoint = os.path.join(run, "latest")
    summary.update(checkpoint=checkpoint, bags=[train_bag, val_bag],
                   seconds=round(time.monotonic() - started, 1))
    return summary
