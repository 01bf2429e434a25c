"""The README's main job (`./dev.sh demo`) end to end: record, train, replay into the nodes.

Runs tools/demo.py as a user would (its own DDS domain, loopback), shortened, and checks the
summary it prints: a stage-1 policy trained from the recorded bags with a falling loss, then
action chunks from that policy at about the action rate while the VLM updates more slowly.

Each run gets a copy of the session's demo assets (the tiny Qwen2.5-VL and random policy that
``build_demo_assets`` writes, the same call the demo makes): the demo reuses a complete assets
directory as documented, so the two runs do not build the model again (about 10-20 s each in a
fresh interpreter on 2 cores).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def demo_assets_copy(assets, tmp_path) -> str:
    """A private copy of the session's complete demo assets (the demo writes its training run
    and closed-loop files next to them, so the shared directory stays untouched)."""
    source = os.path.dirname(assets.model_dir)
    target = str(tmp_path / "demo")
    shutil.copytree(source, target)
    return target


def test_demo_records_trains_and_runs_the_pipeline(tmp_path, ros_env, assets):
    env = dict(ros_env, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "demo.py"), "--duration", "8", "--views", "2",
         "--quiet", "--assets", demo_assets_copy(assets, tmp_path)],
        env=env, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(proc.stdout[proc.stdout.index("\n{") + 1:])
    print("DEMO " + json.dumps(summary), flush=True)
    training = summary["training"]
    # Measured (3 runs of this test, 2-core machine beside other jobs, one beside two CPU hogs;
    # training is seeded, so its figures repeat): final loss 0.134, best val loss 0.664, 74-77
    # chunks at 9.2-9.6 Hz, VL 3.11-3.24 Hz, largest VL age 387-401 ms.
    assert training["step"] == 300
    assert training["final_loss"] <= 0.3, training
    # The validation recording is another scene (demo_training.VAL_SCENE), so its loss measures
    # generalisation: above the training loss (a shorter copy of the training motion, as before,
    # gave val 0.100 below train 0.121), yet below the normalised targets' unit variance.
    assert 2 * training["final_loss"] < training["best_val_loss"] <= 1.0, training
    assert summary["inputs"] == "replayed recording"
    assert summary["policy"].endswith(os.path.join("run", "best"))
    assert summary["actions_published"] >= 40, summary  # 8 s at 10 Hz, the start-up withheld
    assert 6.0 <= summary["action_rate_hz"] <= 11.0, summary
    assert 1.5 <= summary["vl_rate_hz"] <= 3.5, summary  # timing.target_period 0.3 s: at most 3.3 Hz
    assert summary["policy_chunk_shape"] == [8, 7]
    # the default design re-times each inference to its tick: the freshest chunks keep the
    # policy's steps after the tick (the last step, beyond the inference's, is not extrapolated)
    assert summary["chunk_shape"] in ([7, 7], [8, 7]), summary
    assert summary["max_vl_age_ms"] <= 800.0, summary


def test_the_held_out_recording_is_another_scene(tmp_path):
    """The two recordings the main job writes differ in motion, start pose, probe signal and
    camera pattern (what they share is only the task's shape), checked on the written bags."""
    from asyncvla_testing.demo_training import TRAIN_SCENE, VAL_SCENE, scene_spec
    from asyncvla_testing.synthetic_bag import write_synthetic_bag

    t = np.linspace(0.0, 3.5, 351)
    train = scene_spec(TRAIN_SCENE, 3.5, ["view1"])
    val = scene_spec(VAL_SCENE, 3.5, ["view1"])
    # Not a time shift of one another either: compare against every shift of the other.
    gaps = [np.abs(train.motion.position(t[:200] + dt) - val.motion.position(t[:200])).max()
            for dt in t[:151]]
    assert min(gaps) > 0.005, min(gaps)  # m
    assert np.abs(train.motion.joints(t) - val.motion.joints(t)).max() > 0.03
    assert train.motion.position(0.0).tolist() != val.motion.position(0.0).tolist()
    assert train.start_ns != val.start_ns
    k = np.arange(100)
    assert not np.allclose(train.content.sensor_rows(k, k / 650, 33)[:, 0],
                           val.content.sensor_rows(k, k / 650, 33)[:, 0])
    assert train.content.jpeg(0, 5, 0.0, 56, 56) != val.content.jpeg(0, 5, 0.0, 56, 56)
    # and the writer records what the scene says
    bag = write_synthetic_bag(tmp_path / "val", "sqlite3", val)
    assert bag.spec.motion is val.motion and bag.robot_stamps_ns[0] >= VAL_SCENE.start_ns


def test_closed_loop_demo_executes_the_policy_on_a_kinematic_robot(tmp_path, ros_env, assets):
    """`./dev.sh demo --closed-loop`: the chunks drive a robot whose state feeds the policy,
    through the lab's robot wire format and the real robot bridge process."""
    env = dict(ros_env, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "demo.py"), "--closed-loop", "--no-train",
         "--duration", "10", "--views", "2", "--quiet", "--assets", demo_assets_copy(assets, tmp_path),
         "--task-episodes", "2", "--task-train", "24", "--task-steps", "150"],
        env=env, capture_output=True, text=True, timeout=420)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(proc.stdout[proc.stdout.index("\n{") + 1:])
    print("CLOSED " + json.dumps(summary), flush=True)
    loop = summary["closed_loop"]
    # Measured (3 runs of this test, 10 s each, 2-core machine beside other jobs, one beside two
    # CPU hogs): 99-100 chunks at 9.9-10.0 Hz; 981-1000 setpoints at 97.9-99.8 Hz; tracking
    # error mean 0.41-0.91 mm, max 0.87-3.53 mm; held without a fresh chunk 0.0-0.17 s; guard
    # refusals 0-1 (action node) and 0-2 (executor); the bridge published 1546-1873 states.
    # Bounds are 2-3x from those, except the time held: up to 1 s of the 10 (a machine loaded by
    # other jobs held 4.7 s of 12 in the README's run, which is not what CI runs beside).
    assert summary["actions_published"] >= 40, summary
    assert 8.0 <= summary["action_rate_hz"] <= 10.5, summary
    assert loop["executed_setpoints"] >= 400, loop
    assert loop["setpoint_rate_hz"] >= 50.0, loop
    # the robot followed its setpoints (a kinematic robot in velocity mode: lag of a tick or two)
    assert loop["tracking_error_mm"]["mean"] <= 2.0, loop
    assert loop["tracking_error_mm"]["max"] < 5.0, loop
    assert loop["held_without_fresh_chunk_s"] <= 1.0, loop
    assert set(loop["guard_refusals"]) == {"action_node", "executor"}
    assert max(loop["guard_refusals"].values()) <= 3, loop  # a random policy's seams
    # The robot state came through the robot bridge (ZMQ `robot_state` -> JointState/PoseStamped):
    # the kinematic robot only speaks the wire format (it has no ROS publisher of the state), the
    # synthetic sources' robot stream is paused (its publishers exist but send nothing: the
    # EE poses on the topic arrive at the bridge's rate, not twice it).
    for topic, publishers in loop["robot_state_publishers"].items():
        assert "robot_bridge" in publishers and "kinematic_robot" not in publishers, (topic, loop)
    bridge = loop["robot_bridge"]
    assert bridge["published"] >= 800, bridge  # 100 Hz over the run, the first ~0.2 s dropped
    assert bridge["clock_locked"] == "True", bridge
    assert set(bridge["drops"]) <= {"clock_settling"}, bridge  # only the start-up lock
    assert 0.7 * bridge["rate_published_hz"] <= loop["ee_pose_rate_hz"] \
        <= 1.2 * bridge["rate_published_hz"], loop
    # The task: a (here barely trained) moving-target policy in held-out episodes over DDS. Its
    # success is the benchmarks' business (test_closed_loop_sim.py, test_closed_loop_dds.py);
    # here the summary must carry it and the handover jump, measured from real setpoints.
    task = loop["task"]
    assert task["episodes"] == 2 and 0 <= task["successes"] <= 2, task
    lo, hi = task["success_interval_95"]
    assert lo <= task["success_rate"] <= hi, task
    assert task["chunks_per_episode"] >= 15, task  # 10 Hz over the 2.5 s episode
    # a kink is measured at every handover; 0.3-0.6 mm measured over DDS with a trained policy
    assert task["largest_handover_jump_mm"] is not None and 0.0 < task["largest_handover_jump_mm"] < 5.0, task
    assert task["final_error_mm_median"] is not None and task["final_error_mm_median"] < 50.0, task
