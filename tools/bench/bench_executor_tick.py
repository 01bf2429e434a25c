#!/usr/bin/env python3
"""Benchmark: the chunk executor's own cost, in process: one ``ExecutorCore.tick`` (queue sample,
interpolation and slerp, guard check) and one ``on_chunk`` (joining a chunk to the queue), per
blending strategy side by side in one run.

No ROS: simulated time at the executor's 100 Hz, a chunk of 8 steps of 0.1 s every 0.1 s (a
constant-velocity ramp from the robot's pose, as the action node at 10 Hz), the robot state set
to the last setpoint at every tick, the output guard with generous limits. Each call is timed
with ``time.perf_counter`` (wall clock: on a shared machine, preemption shows in the tail).
Prints one JSON object (and writes it to ``--out``): per strategy the summaries (n, p50, p99, max
in ms) of tick and on_chunk, and how many ticks sent a setpoint (a run that holds measures
nothing), with the CPU, date and command (tools/bench/run_record.py).

Usage: flock /tmp/asyncvla-cpu.lock python tools/bench/bench_executor_tick.py --seconds 30 \
           --out docs/benchmarks/executor_tick-<cpu kind>.json
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

PERIOD = 0.01
STEP = 0.1
H = 8
START = np.array([0.4, 0.0, 0.3, 0.0, 0.0, 0.0])
VELOCITY = np.array([0.02, -0.01, 0.0, 0.0, 0.0, 0.1])  # m/s and rad/s


def run(mode: str, seconds: float) -> dict:
    from asyncvla_common.safety import SafetyGate, WatchdogSet
    from asyncvla_core.chunk_blending import ChunkBlender
    from asyncvla_core.conventions import ACTION_SPACES
    from asyncvla_core.output_guard import GuardLimits, OutputGuard
    from asyncvla_core.rotations import matrix_to_quaternion, rotvec_to_matrix
    from asyncvla_executor.executor_core import ExecutorConfig, ExecutorCore
    from run_record import summary

    limits = GuardLimits(max_linear_step=0.005, max_linear_velocity=0.05, max_angular_step=0.05,
                         max_angular_velocity=0.5, max_joint_step=0.05, max_joint_velocity=0.5,
                         workspace_min=(-1.0, -1.0, -1.0), workspace_max=(1.0, 1.0, 1.0))
    core = ExecutorCore(ExecutorConfig(action_space="ee_delta", period=PERIOD),
                        OutputGuard(limits, "ee_delta"), ChunkBlender(mode, history=H),
                        SafetyGate(enabled_at_start=True), WatchdogSet())
    names = list(ACTION_SPACES["ee_delta"])
    offsets = np.outer(np.arange(1, H + 1) * STEP, VELOCITY)
    pose = START.copy()
    tick_ms, chunk_ms, sent = [], [], 0
    per_chunk = int(round(STEP / PERIOD))
    t0_ns = 1_000_000_000_000
    for i in range(int(seconds / PERIOD)):
        now_ns = t0_ns + int(i * PERIOD * 1e9)
        state = np.array([0.0] * 6 + list(pose[:3])
                         + list(matrix_to_quaternion(rotvec_to_matrix(pose[3:6]))))
        core.set_robot_state(state, now_ns)
        if i % per_chunk == 0:
            actions = np.zeros((H, 7), dtype=np.float32)
            actions[:, :6] = offsets
            actions[:, 6] = 1.0
            start = time.perf_counter()
            core.on_chunk(now_ns, STEP, pose.copy(), actions, "ee_delta", names, now_ns)
            chunk_ms.append((time.perf_counter() - start) * 1e3)
        start = time.perf_counter()
        result = core.tick(now_ns, now_ns / 1e9)
        tick_ms.append((time.perf_counter() - start) * 1e3)
        if result.setpoint is not None:
            sent += 1
            pose = result.setpoint.target.copy()
    return {"tick_ms": summary(tick_ms), "on_chunk_ms": summary(chunk_ms),
            "ticks": len(tick_ms), "setpoints": sent, "chunks": len(chunk_ms)}


def main() -> None:
    from asyncvla_core.chunk_blending import blending_modes
    from run_record import emit, run_record

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="simulated s per strategy")
    parser.add_argument("--out", help="also write the JSON object to this file")
    args = parser.parse_args()
    if args.seconds < 1.0:
        parser.error("--seconds must be >= 1")
    modes = {mode: run(mode, args.seconds) for mode in blending_modes()}
    emit({**run_record("executor_tick"), "period_s": PERIOD, "chunk_step_s": STEP,
          "horizon": H, "simulated_s": args.seconds, "modes": modes}, args.out)


if __name__ == "__main__":
    main()
