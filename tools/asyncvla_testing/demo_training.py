"""The main job's training leg: record -> train -> a checkpoint the action node runs.

Writes two short rosbag2 recordings of the bridge topics (synthetic robot motion, force/OCT,
the demo's camera views; mcap and sqlite3), of two different scenes (`TRAIN_SCENE`, and the
held-out `VAL_SCENE`: another start pose, phase, pace, probe signal and camera pattern) with the data module's writer, then trains stage 1
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

from dataclasses import dataclass

import numpy as np

from asyncvla_testing.assets import DemoAssets
from asyncvla_testing.synthetic_bag import SYNTHETIC_START_NS


@dataclass(frozen=True)
class NeedleScene:
    """What one recording shows: where the slow insertion-like motion starts, the phase and pace
    of its oscillations and drifts, and the phase of the probe signal and camera pattern.

    Why: the validation recording must be a scene the policy was not trained on, so that the
    "best val loss" of training and the replayed "held-out recording" measure generalisation; a
    shorter copy of the training motion would only measure memorisation."""

    start: tuple[float, float, float] = (0.40, -0.05, 0.30)  # m, EE position at t = 0
    phase: float = 0.0       # rad, added to every oscillation
    pace: float = 1.0        # scales the slow drifts (joints, y, z, rotation)
    joint_offset: float = 0.0  # rad, added to every joint
    signal_offset_s: float = 0.0  # s, shifts the force/OCT signal
    camera_offset: int = 0   # frames, shifts the cameras' moving bar
    start_ns: int = SYNTHETIC_START_NS


#: The training recording and the held-out one (another start pose, phase, pace and signals).
TRAIN_SCENE = NeedleScene()
VAL_SCENE = NeedleScene(start=(0.41, -0.04, 0.29), phase=1.9, pace=0.7, joint_offset=0.04,
                        signal_offset_s=0.37, camera_offset=11,
                        start_ns=SYNTHETIC_START_NS + 3_600_000_000_000)


def needle_motion(scene: NeedleScene = TRAIN_SCENE):
    """A slow, insertion-like motion (a few mm/s, a few mrad/s), inside the output guard's
    default limits, instead of the data tests' brisk motion (up to 54 mm/s)."""
    from asyncvla_testing.synthetic_bag import SyntheticMotion

    x0, y0, z0 = scene.start

    class NeedleMotion(SyntheticMotion):
        def joints(self, t):
            t = np.asarray(t, dtype=np.float64)[..., None]
            j = np.arange(6, dtype=np.float64)
            return (0.05 * j - 0.1 + scene.joint_offset + 0.02 * np.sin(0.5 * t + j + scene.phase)
                    + 0.01 * scene.pace * t)

        def position(self, t):
            t = np.asarray(t, dtype=np.float64)
            return np.stack([x0 + 0.004 * np.sin(0.8 * t + scene.phase),
                             y0 + 0.002 * scene.pace * t, z0 - 0.003 * scene.pace * t], axis=-1)

        def theta(self, t):
            t = np.asarray(t, dtype=np.float64)
            return 0.1 + 0.03 * scene.pace * t + 0.01 * np.sin(1.0 * t + scene.phase)

    return NeedleMotion()


def needle_content(scene: NeedleScene = TRAIN_SCENE):
    """The analytic probe signal and camera pattern, shifted by the scene's offsets."""
    from asyncvla_testing.synthetic_bag import SyntheticContent, synthetic_jpeg

    class NeedleContent(SyntheticContent):
        def sensor_rows(self, k, t, aline_length):
            return super().sensor_rows(k, np.asarray(t) + scene.signal_offset_s, aline_length)

        def jpeg(self, view_index, frame, t, width, height):
            return synthetic_jpeg(view_index, frame + scene.camera_offset, width, height)

    return NeedleContent()


def scene_spec(scene: NeedleScene, duration: float, views: list[str]):
    from asyncvla_testing.synthetic_bag import SyntheticBagSpec

    return SyntheticBagSpec(duration=duration, views=tuple(views), motion=needle_motion(scene),
                            content=needle_content(scene), start_ns=scene.start_ns)


def train_demo_policy(assets: DemoAssets, views: list[str], directory: str, steps: int,
                      env: dict[str, str] | None = None) -> dict:
    """Record two bags and train; returns the training summary (with `checkpoint`)."""
    from asyncvla_testing.synthetic_bag import write_synthetic_bag

    started = time.monotonic()
    bags = os.path.join(directory, "bags")
    run = os.path.join(directory, "run")
    for path in (bags, run):
        if os.path.exists(path):
            shutil.rmtree(path)
    os.makedirs(bags)
    train_bag = os.path.join(bags, "episode_train")
    val_bag = os.path.join(bags, "episode_val")
    write_synthetic_bag(train_bag, "mcap", scene_spec(TRAIN_SCENE, 5.0, views))
    # Held out from training, another scene (VAL_SCENE); the demo also replays it into the nodes.
    write_synthetic_bag(val_bag, "sqlite3", scene_spec(VAL_SCENE, 3.5, views))
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
