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
    training = summary["training"]
    assert training["step"] == 300
    assert training["final_loss"] < 0.5 and training["best_val_loss"] < 0.5
    assert summary["inputs"] == "replayed recording"
    assert summary["policy"].endswith(os.path.join("run", "best"))
    assert summary["actions_published"] >= 40, summary
    assert 6.0 <= summary["action_rate_hz"] <= 11.0, summary
    assert 0 < summary["vl_rate_hz"] < summary["action_rate_hz"]
    assert summary["policy_chunk_shape"] == [8, 7]
    # the default design re-times each inference to its tick: the freshest chunks keep the
    # policy's steps after the tick (the last step, beyond the inference's, is not extrapolated)
    assert summary["chunk_shape"] in ([7, 7], [8, 7]), summary
    assert summary["max_vl_age_ms"] <= 1000.0


def test_closed_loop_demo_executes_the_policy_on_a_kinematic_robot(tmp_path, ros_env, assets):
    """`./dev.sh demo --closed-loop`: the chunks drive a robot whose state feeds the policy,
    through the lab's robot wire format and the real robot bridge process."""
    env = dict(ros_env, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "demo.py"), "--closed-loop", "--no-train",
         "--duration", "10", "--views", "2", "--quiet", "--assets", demo_assets_copy(assets, tmp_path)],
        env=env, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(proc.stdout[proc.stdout.index("\n{") + 1:])
    loop = summary["closed_loop"]
    assert summary["actions_published"] > 0, summary
    assert loop["executed_setpoints"] > 0, loop
    # the robot followed its setpoints (a kinematic robot in velocity mode: lag of a tick or two)
    assert loop["tracking_error_mm"]["mean"] is not None
    assert loop["tracking_error_mm"]["max"] < 5.0, loop
    assert loop["held_without_fresh_chunk_s"] >= 0.0
    assert set(loop["guard_refusals"]) == {"action_node", "executor"}
    # The robot state came through the robot bridge (ZMQ `robot_state` -> JointState/PoseStamped):
    # the kinematic robot only speaks the wire format (it has no ROS publisher of the state), the
    # synthetic sources' robot stream is paused (its publishers exist but send nothing: the
    # EE poses on the topic arrive at the bridge's rate, not twice it).
    for topic, publishers in loop["robot_state_publishers"].items():
        assert "robot_bridge" in publishers and "kinematic_robot" not in publishers, (topic, loop)
    bridge = loop["robot_bridge"]
    assert bridge["published"] > 500, bridge  # 100 Hz over the run, the first ~0.2 s dropped
    assert bridge["clock_locked"] == "True", bridge
    assert set(bridge["drops"]) <= {"clock_settling"}, bridge  # only the start-up lock
    assert 0.7 * bridge["rate_published_hz"] <= loop["ee_pose_rate_hz"] \
        <= 1.2 * bridge["rate_published_hz"], loop
