#!/usr/bin/env python3
"""The main job: the whole AsyncVLA pipeline on this machine, on CPU, and a summary.

1. Record and train: two short rosbag2 recordings of the bridge topics (synthetic motion, the
   demo's camera views), stage-1 training with `asyncvla-train` on a tiny random-weight
   Qwen2.5-VL (frozen) -> a safetensors policy checkpoint (`--no-train`: a random policy).
2. Run: as separate processes over real DDS (loopback, a private domain), synthetic sources on
   the real topics (5 cameras, force/OCT at 650 Hz, joint states and EE pose at 100 Hz), the VLM
   node with the tiny Qwen2.5-VL, and the action node with the trained policy. This process
   subscribes to the outputs for `--duration` seconds and prints a summary like the original system's
   (actions published and rate, VL updates and rate, mean times, reuse, ages) as JSON, with the
   training figures.
3. `--closed-loop`: the policy moves a robot. The chunk executor (100 Hz TwistStamped) drives a
   kinematic robot (tools/asyncvla_testing/kinematic_robot.py) that sends its state as the lab's
   robot PC does (ZMQ `robot_state`, `<ddf12f`, degrees, mm, Meca500 Euler angles, 100 Hz) to the
   real robot bridge, whose /robot/joint_states and /robot/ee_pose replace the synthetic robot
   stream: the action node and the executor act on the state their own actions produced, through
   the same bridge as on the lab's robot. The synthetic cameras and force follow that state. The
   summary adds the executed setpoints, the tracking error (measured EE position to the setpoint
   due), the time the robot held because no fresh chunk existed, the guard refusals of the action
   node and the executor, and the robot bridge's counts (received, published, drops by reason)
   with the nodes that publish the robot state topics. Then the task: a tiny policy trained on
   the moving-target task (tools/asyncvla_testing/tracking_task.py, closed-loop variant; VL ages
   0-3.5 s with the age input) runs `--task-episodes` held-out episodes with the real nodes over
   DDS (the world's camera and force/OCT, the VLM node behind a relay that imposes
   `--task-latency`, the action node, the executor, the kinematic robot behind the robot bridge:
   tools/asyncvla_testing/closed_loop_dds.py), and the summary's `closed_loop.task` gives the
   success (tip within 1 mm of the target for 0.3 s within 2.5 s) with its 95 % interval and the
   largest handover jump (the kink a new chunk puts into the executor's setpoints). The
   benchmarks behind these: tools/bench/bench_closed_loop.py and bench_closed_loop_dds.py.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)


def policy_chunk_shape(checkpoint: str) -> list[int]:
    """(horizon, action dim) of the checkpoint's policy (its config.json)."""
    from asyncvla_policy.checkpoint import read_checkpoint_config

    config, _ = read_checkpoint_config(checkpoint)
    return [config.horizon, config.action_dim]


def closed_loop_task(args: argparse.Namespace) -> dict:
    """Train a tiny moving-target policy and run held-out episodes with the real nodes over DDS:
    success with its 95 % interval, final error, the largest handover jump."""
    sys.path.insert(0, os.path.join(HERE, "bench"))
    import torch

    from bench_closed_loop_dds import MAX_VL_AGE, WIDE_AGES_MS, run_dds

    from asyncvla_testing.closed_loop_sim import wilson_interval
    from asyncvla_testing.staleness_experiment import (StalenessSettings, prepare_task,
                                                       train_policy)

    started = time.monotonic()
    print(f"[demo] task: training a moving-target policy ({args.task_train} recordings, "
          f"{args.task_steps} steps)", flush=True)
    torch.set_num_threads(2)
    settings = StalenessSettings(train_episodes=args.task_train, test_episodes=args.task_episodes,
                                 steps=args.task_steps, warmup_steps=25, batch_size=16,
                                 seeds=(0,))
    workdir = os.path.join(args.assets, "closed_loop_task")
    data = prepare_task("dynamic", settings, Path(workdir), feedforward=True, reuse=True)
    train_policy(data, "A", settings, 0, Path(workdir) / "runs" / "A", lambda line: None,
                 vl_age_ms=WIDE_AGES_MS)
    trained_s = time.monotonic() - started
    print(f"[demo] task: {args.task_episodes} episodes over DDS at {args.task_latency:g} s of "
          "VLM latency", flush=True)
    rows, _, _ = run_dds(str(Path(workdir) / "runs" / "A" / "latest"),
                         str(Path(workdir) / "tiny_vl"), args.task_latency, "pose",
                         data.test_scenes, lambda line: None)
    wins = sum(bool(r["success"]) for r in rows)
    jumps = [r["max_handover_jump_m"] for r in rows if r.get("handovers")]
    lo, hi = wilson_interval(wins, len(rows))
    return {
        "task": "moving target, closed-loop variant (tools/asyncvla_testing/tracking_task.py)",
        "vlm_latency_s": args.task_latency, "max_vl_age_s": MAX_VL_AGE,
        "episodes": len(rows), "successes": wins,
        "success_rate": round(wins / len(rows), 3) if rows else None,
        "success_interval_95": [round(lo, 3), round(hi, 3)],
        "final_error_mm_median": round(float(np.median([r["final_error_m"] for r in rows]))
                                       * 1e3, 2) if rows else None,
        "largest_handover_jump_mm": round(max(jumps) * 1e3, 3) if jumps else None,
        "chunks_per_episode": round(float(np.mean([r["chunks"] for r in rows])), 1)
        if rows else None,
        "train_s": round(trained_s, 1), "seconds": round(time.monotonic() - started, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds to run")
    parser.add_argument("--views", type=int, default=5, help="camera views (1..5)")
    parser.add_argument("--action-rate-hz", type=float, default=10.0)
    parser.add_argument("--assets", default=os.path.join(ROOT, "artifacts", "demo"))
    parser.add_argument("--quiet", action="store_true", help="do not echo node logs")
    parser.add_argument("--no-train", action="store_true",
                        help="skip recording and training: run the random-weight policy")
    parser.add_argument("--train-steps", type=int, default=300, help="stage-1 optimiser steps")
    parser.add_argument("--source", choices=["bag", "synthetic"], default="bag",
                        help="inputs: replay the held-out recording (looped, re-stamped) or "
                             "synthetic live streams (always synthetic with --no-train)")
    parser.add_argument("--closed-loop", action="store_true",
                        help="execute the chunks on a kinematic robot whose state feeds back "
                             "(synthetic camera and sensor streams)")
    parser.add_argument("--task-episodes", type=int, default=4,
                        help="--closed-loop: held-out moving-target episodes over DDS (0: none)")
    parser.add_argument("--task-latency", type=float, default=0.3,
                        help="--closed-loop: the VLM latency imposed in the task episodes, s")
    parser.add_argument("--task-train", type=int, default=64,
                        help="--closed-loop: moving-target recordings to train on")
    parser.add_argument("--task-steps", type=int, default=800,
                        help="--closed-loop: optimiser steps of the moving-target policy")
    args = parser.parse_args()
    if args.closed_loop:
        args.source = "synthetic"  # a replayed robot state would contradict the executed one
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # 2-core machine: no thread oversubscription

    from asyncvla_testing.assets import build_demo_assets
    from asyncvla_testing.pipeline import (start_action, start_bag_player, start_closed_loop,
                                           start_sources, start_vlm)
    from asyncvla_testing.processes import ProcessGroup, allocate_domain_id

    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               ROS_DOMAIN_ID=os.environ.get("ROS_DOMAIN_ID", str(allocate_domain_id())),
               PYTHONUNBUFFERED="1")
    os.environ.update(env)
    print(f"[demo] building the tiny model and policy in {args.assets}", flush=True)
    assets = build_demo_assets(args.assets)
    views = [f"view{i + 1}" for i in range(args.views)]
    checkpoint, training = assets.checkpoint_dir, None
    if not args.no_train:
        from asyncvla_testing.demo_training import train_demo_policy

        print(f"[demo] recording two bags and training stage 1 ({args.train_steps} steps)",
              flush=True)
        training = train_demo_policy(assets, views, os.path.join(args.assets, "training"),
                                     args.train_steps, env)
        checkpoint = training["checkpoint"]
        print(f"[demo] trained in {training['seconds']} s: final loss "
              f"{training['final_loss']:.3f}, best val loss {training['best_val_loss']:.3f}; "
              f"checkpoint {checkpoint}", flush=True)

    import rclpy
    from asyncvla_common import qos
    from asyncvla_msgs.msg import ActionChunk, VLFeatures

    group = ProcessGroup(env)
    chunks: list[tuple[float, ActionChunk]] = []
    vls: list[tuple[float, VLFeatures]] = []
    rclpy.init()
    node = rclpy.create_node("asyncvla_demo_monitor")
    node.create_subscription(ActionChunk, "/asyncvla/action_chunk",
                             lambda m: chunks.append((time.monotonic(), m)), qos.COMMAND)
    from diagnostic_msgs.msg import DiagnosticArray

    from asyncvla_testing.ros_listener import diagnostic_values

    last_output: dict[str, str] = {}
    executor_output: dict[str, str] = {}
    robot_bridge: dict[str, str] = {}
    tracking: list[tuple[float, float]] = []
    ee_poses: list[float] = []

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for name, store in (("asyncvla_action_node: action output", last_output),
                            ("asyncvla_executor: executor output", executor_output),
                            ("robot_bridge: bridge", robot_bridge)):
            values = diagnostic_values(msg, name)
            if values is not None:
                store.clear()
                store.update(values)

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 50)
    node.create_subscription(VLFeatures, "/asyncvla/vl_features",
                             lambda m: vls.append((time.monotonic(), m)), qos.LATCHED)
    if args.closed_loop:
        from std_msgs.msg import Float64

        node.create_subscription(Float64, "/asyncvla_executor/tracking_error",
                                 lambda m: tracking.append((time.monotonic(), m.data)), 100)
        from geometry_msgs.msg import PoseStamped

        # what the nodes consume: with the synthetic robot stream paused, only the bridge's
        node.create_subscription(PoseStamped, "/robot/ee_pose",
                                 lambda m: ee_poses.append(time.monotonic()),
                                 qos.sensor_subscriber())
    try:
        print(f"[demo] ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']}: starting sources, VLM node "
              f"({len(views)} views), action node ({args.action_rate_hz:g} Hz)", flush=True)
        if training is not None and args.source == "bag":
            start_bag_player(group, training["bags"][1])
        elif args.closed_loop:
            pause = os.path.join(args.assets, "closed_loop_pause.txt")
            with open(pause, "w", encoding="utf-8") as f:
                f.write("robot\n")  # the kinematic robot publishes the robot state instead
            start_sources(group, views, ["--pause-file", pause, "--follow-robot"])
            start_closed_loop(group)
        else:
            start_sources(group, views)
        vlm = start_vlm(group, assets, views)
        action = start_action(group, assets, timing={"action_rate_hz": args.action_rate_hz},
                              checkpoint=checkpoint)
        vlm.wait_for_line("VLM node ready", 120)
        action.wait_for_line("action node ready", 120)
        if args.closed_loop:  # count from here: before it, the loop waited for the nodes
            deadline = time.monotonic() + 1.5  # drain what queued up, get a fresh report
            while time.monotonic() < deadline:
                rclpy.spin_once(node, timeout_sec=0.05)
        at_start = dict(executor_output)
        start = time.monotonic()
        echoed = collections.Counter()
        while time.monotonic() - start < args.duration:
            rclpy.spin_once(node, timeout_sec=0.05)
            if not args.quiet:
                for proc in (vlm, action):
                    for line in proc.lines[echoed[proc.name]:]:
                        print(f"  {proc.name}| {line}", flush=True)
                    echoed[proc.name] = len(proc.lines)
            for proc in group.procs:
                if not proc.alive():
                    raise RuntimeError(f"{proc.name} exited:\n{proc.output()[-3000:]}")
        elapsed = time.monotonic() - start
        state_publishers = {  # who publishes the robot state the nodes consume
            topic: sorted(info.node_name for info in node.get_publishers_info_by_topic(topic))
            for topic in ("/robot/joint_states", "/robot/ee_pose")}
    finally:
        group.stop_all()
        node.destroy_node()
        rclpy.try_shutdown()

    chunks = [(t, m) for t, m in chunks if t >= start]
    errors = [e for t, e in tracking if t >= start]
    vls = [(t, m) for t, m in vls if t >= start]
    withheld = {k[len("withheld_"):]: int(v) for k, v in last_output.items()
                if k.startswith("withheld_")}
    reuse = collections.Counter(int(m.vl_reuse_count) for _, m in chunks)
    mean = lambda xs: round(sum(xs) / len(xs), 2) if xs else None  # noqa: E731
    summary = {
        "duration_s": round(elapsed, 2),
        "actions_published": len(chunks),
        "action_rate_hz": round(len(chunks) / elapsed, 2),
        "actions_per_second": round(sum(m.horizon for _, m in chunks) / elapsed, 1),
        "vl_updates": len(vls),
        "vl_rate_hz": round(len(vls) / elapsed, 2),
        "mean_vl_compute_ms": mean([m.compute_time * 1e3 for _, m in vls]),
        "mean_action_inference_ms": mean([m.inference_time * 1e3 for _, m in chunks]),
        "mean_vl_age_ms": mean([m.vl_age * 1e3 for _, m in chunks]),
        "max_vl_age_ms": round(max((m.vl_age * 1e3 for _, m in chunks), default=0.0), 1),
        "vl_reuse_histogram": dict(sorted(reuse.items())),
        # the largest published: a chunk re-timed to a tick after its inference's time keeps
        # only the steps the inference covers (one fewer than the policy's horizon, or more
        # when it is published again at later ticks)
        "chunk_shape": [max(m.horizon for _, m in chunks), chunks[0][1].action_dim]
        if chunks else None,
        "policy_chunk_shape": policy_chunk_shape(checkpoint),
        "chunks_republished": sum(1 for _, m in chunks if m.inference_reuse_count > 0),
        "views": len(views),
        "model": assets.model_id,
        "policy": checkpoint,
        "inputs": "replayed recording" if training is not None and args.source == "bag"
        else "synthetic streams",
        "training": None if training is None else {
            k: training[k] for k in ("step", "final_loss", "best_val_loss", "seconds")},
        "withheld_by_reason": withheld,
    }
    if args.closed_loop:
        def since_start(key: str) -> float:
            return float(executor_output.get(key, 0.0)) - float(at_start.get(key, 0.0))

        held = {k[len("held_s_"):]: round(since_start(k), 2) for k in executor_output
                if k.startswith("held_s_")}
        summary["closed_loop"] = {
            "executed_setpoints": int(since_start("setpoints")),
            "setpoint_rate_hz": round(float(executor_output.get("setpoint_rate_hz", 0.0)), 1),
            "tracking_error_mm": {
                "mean": round(1e3 * sum(errors) / len(errors), 3) if errors else None,
                "max": round(1e3 * max(errors), 3) if errors else None},
            "held_without_fresh_chunk_s": round(held.get("queue_empty", 0.0)
                                                + held.get("chunk_stale", 0.0), 2),
            "held_s_by_reason": held,
            "guard_refusals": {"action_node": withheld.get("guard", 0),
                               "executor": int(since_start("guard_refusals"))},
            "robot_state_publishers": state_publishers,
            "ee_pose_rate_hz": round(sum(t >= start for t in ee_poses) / elapsed, 1),
            "robot_bridge": {
                "received": int(robot_bridge.get("received", 0)),
                "published": int(robot_bridge.get("published", 0)),
                "rate_published_hz": round(float(robot_bridge.get("rate_published_hz", 0.0)), 1),
                "drops": {k[len("drop."):]: int(v) for k, v in robot_bridge.items()
                          if k.startswith("drop.") and int(v)},
                "clock_locked": robot_bridge.get("clock_locked"),
                "stamp_latency_p50_ms": round(float(robot_bridge.get(
                    "stamp_latency_p50_ms", "nan")), 2)},
        }
    if args.closed_loop and args.task_episodes > 0:
        summary["closed_loop"]["task"] = closed_loop_task(args)
    print(json.dumps(summary, indent=2))
    if args.closed_loop and not summary["closed_loop"]["executed_setpoints"]:
        return 1
    return 0 if chunks and vls else 1


if __name__ == "__main__":
    sys.exit(main())
