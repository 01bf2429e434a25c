"""The moving-target closed loop with the real nodes over real DDS, CI-sized, against the
simulator on the same checkpoint and episodes.

tools/bench/bench_closed_loop_dds.py is the full confirmation of the simulator (20+ held-out
episodes per latency); this test runs the same machinery (tools/asyncvla_testing/closed_loop_dds.py:
the world process, the real VLM node with the tiny Qwen2.5-VL, the latency relay, the real action
node, executor and robot bridge, the kinematic robot) on two episodes, with a tiny policy
trained here in seconds on the task's static variant (the target at rest: a policy of a few
hundred steps reads where it is, while the moving target needs the benchmark's 192 recordings
and 1500 steps), and the simulator (closed_loop_sim.run_episode) on the same checkpoint and
scenes. VLM latency 0.3 s; ``max_vl_age`` 1 s instead of 3.5 s, which only shortens the pause
between episodes.

Checked, over DDS:

* the world: 10 frames/s on the scene's 100 ms grid, each stamped with the instant it shows;
  the warm-started VLM's first update took the simulator's first frame (``t0 - latency -
  100 ms``), the next ones frames 300 ms apart; force/OCT computed from the robot's real height;
* the VLM node and the relay: every VL message the action node could take is bit for bit the
  simulator's features of the same scene and frame, and left the relay ``latency - compute``
  after it arrived, same stamp and sequence;
* the nodes published: chunks at 10 Hz from within two action periods of t0 (the default tick
  design's inference runs ahead of its tick), setpoints at about 100 Hz;
* the figures agree with the simulator's: success rates within each other's 95 % Wilson
  intervals, each episode's final error within 1 mm of the simulator's, the handover jumps
  measured (every chunk after the first) and within 0.5 mm of the simulator's; the robot
  closed on the target.
"""
from __future__ import annotations

import os
import re
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools", "bench"))

from asyncvla_testing import closed_loop_sim as sim  # noqa: E402
from asyncvla_testing.closed_loop_dds import (DdsLoop, DdsSettings, Monitor,  # noqa: E402
                                              frame_time_ns, start_processes)
from asyncvla_testing.staleness_experiment import (StalenessSettings,  # noqa: E402
                                                              prepare_task, train_policy)

LATENCY = 0.3
CI = StalenessSettings(train_episodes=24, test_episodes=2, steps=300, warmup_steps=25,
                       seeds=(0,))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        workdir = tmp_path_factory.mktemp("closed_loop_dds")
        data = prepare_task("static", CI, workdir)
        train_policy(data, "A", CI, 0, workdir / "run", lambda line: None,
                     vl_age_ms=[0.0, 1000.0])
    finally:
        torch.set_num_threads(threads)
    return data, workdir / "run" / "latest", workdir / "tiny_vl"


def test_the_real_nodes_close_the_loop_over_dds(trained, one_thread) -> None:
    from asyncvla_common.timeconv import stamp_to_ns
    from asyncvla_core.vl_payload import decode_features

    data, checkpoint, model = trained
    settings = DdsSettings(latency_s=LATENCY, max_vl_age=1.0)
    procs = start_processes(one_thread, str(checkpoint), str(model), settings, timeout=120)
    monitor = Monitor(int(one_thread.env["ROS_DOMAIN_ID"]), settings.output)
    try:
        loop = DdsLoop(procs, monitor, settings)
        loop.prepare()
        for n, scene in enumerate(data.test_scenes):
            loop.run_episode(n, scene)
        loop.finish()
        rows = loop.results()
    finally:
        monitor.close()
    summary = [{k: row[k] for k in ("initial_error_m", "final_error_m", "min_error_m", "chunks",
                                    "first_chunk_s", "held_s", "handovers",
                                    "max_handover_jump_m")} for row in rows]
    print("CLOSED_LOOP_DDS", summary, [row["timing"] for row in rows], flush=True)

    # The world: frames and samples of each scene, from the robot's real height.
    stats = [line for line in procs["world"].lines if line.startswith("WORLD STATS")]
    world = dict(re.findall(r"(\w+)=([\d.]+)", stats[-1])) if stats else {}
    assert float(world.get("no_pose_samples", -1)) == 0, stats
    first_frame_ms = -round((LATENCY + 0.1) * 1e3, 1)
    for row in rows:
        t = row["timing"]
        offsets = t["vl_frame_offsets_ms"]
        # The simulator's first frame; one frame later when the resume reached the VLM node more
        # than resume_lead_s late (a loaded machine: 60 ms measured beside other jobs). Its
        # features are still checked below against the simulator's for the frame it took.
        assert offsets and offsets[0] in (first_frame_ms, first_frame_ms + 100.0), t
        if offsets[0] != first_frame_ms:
            assert t["vlm_resumed_late_ms"] > 1e3 * DdsSettings.resume_lead_s - 10.0, t
        assert all(o % 100 == 0 for o in offsets), t  # frames on the scene's 100 ms grid
        # 300 ms apart on the VLM's deadlines; a frame the world sent late (beside other jobs:
        # 2000 -> 2200 ms, the 2300 ms frame not yet delivered) makes one gap a frame shorter
        # and the next a frame longer, never the whole run: the span keeps the period.
        assert all(200 <= b - a <= 400 for a, b in zip(offsets, offsets[1:])), t
        assert abs(offsets[-1] - offsets[0] - 300 * (len(offsets) - 1)) <= 100, t
        assert len(offsets) >= 9, t  # t0 - 0.4 s to t0 + 2.5 s at 0.3 s per update

    # The VLM node and the relay: the simulator's features, as late as the latency says.
    features = sim.FeatureSource(data.extractor, CI.image_size)
    compared = 0
    for index, msg in loop.vl_messages():
        ep = loop.episodes[index]
        got = decode_features(msg.data, msg.num_tokens, msg.feature_dim, msg.dtype)
        want = features(ep["scene"], frame_time_ns(stamp_to_ns(msg.header.stamp), ep["t0_ns"]))
        np.testing.assert_allclose(np.asarray(got, np.float32), want, rtol=2e-3, atol=2e-3)
        compared += 1
    assert compared >= 2 * 9, compared
    relayed = [line for line in procs["relay"].lines if line.startswith("RELAY ")
               and "READY" not in line]
    fields = [{k: float(v) for k, v in re.findall(r"(\w+)=(-?[\d.]+)", x)} for x in relayed]
    assert fields, procs["relay"].output()[-2000:]
    for f in fields:  # held latency - compute, never less; released on time on a quiet machine
        assert f["held_ms"] + f["compute_ms"] >= LATENCY * 1e3 - 1.0, f
        assert f["late_ms"] <= 50.0, f
    # The monitor (a third process) saw the relay's input and output: the same message, same
    # stamp, and never younger than the latency when the action node could take it. The
    # frame's stamp is at or before the VLM took it, the VLM published after computing, and the
    # relay held it latency - compute more, so its age at release is at least the latency; a
    # receipt can only come later. (Measured as the gap between the monitor's two receipts,
    # each behind its own executor, it came out 55 ms short beside two CPU hogs.) A relay that
    # passed features through unheld fails this by about the latency.
    by_seq = {v[2]: v for v in monitor.rec.vl_in}
    checked = 0
    for recv, stamp, seq, _, _ in monitor.rec.vl_out:
        if seq in by_seq:
            assert by_seq[seq][1] == stamp
            assert recv - stamp >= (LATENCY - 0.001) * 1e9, (recv - stamp) / 1e6
            checked += 1
    assert checked >= 9, checked  # the monitor may miss one beside other jobs (depth 1)

    # The nodes published: chunks from t0 on, setpoints at about 100 Hz. The warm-started VLM's
    # first features arrived before t0; the action node's default tick design runs each
    # inference before its tick (deadline trigger: it ends just before the tick), so the first
    # chunk is the first tick whose inference started after the enable: within two periods of
    # t0 (the simulator's synchronous tick publishes at t0).
    for row in rows:
        t = row["timing"]
        assert t["vl_at_t0"], t
        assert row["first_chunk_s"] is not None and row["first_chunk_s"] <= 0.21, row
        # 10 Hz for 2.5 s: 25; beside two CPU hogs 19 came (ticks dropped, never bursted)
        assert row["chunks"] >= 18, row
        assert t["setpoints"] >= 200, t  # 100 Hz for 2.5 s, with room for a loaded machine

    # The same checkpoint and scenes in the simulator: the figures agree.
    from asyncvla_policy.checkpoint import load_policy
    from asyncvla_policy.expert_runtimes import build_runtime
    from bench_closed_loop import summarise
    from bench_closed_loop_dds import agreement

    runtime = build_runtime("torch_float32", load_policy(str(checkpoint)), threads=1)
    mode = sim.Mode("suite + age input, latest_only", max_vl_age=settings.max_vl_age)
    sim_rows = [sim.run_episode(scene, runtime.predict, features, data.model_id,
                                sim.LatencyModel(LATENCY), mode).as_dict()
                for scene in data.test_scenes]
    agree = agreement(rows, sim_rows)
    print("CLOSED_LOOP_DDS_VS_SIM", agree, flush=True)
    assert agree["intervals_overlap"], agree
    assert summarise(rows)["episodes"] == summarise(sim_rows)["episodes"] == 2
    for d, r in zip(rows, sim_rows):
        assert abs(d["final_error_m"] - r["final_error_m"]) <= 1.0e-3, (d, r)
        # Handover jumps measured on every chunk after the first, as the simulator's.
        assert d["handovers"] >= 19 and r["handovers"] >= 19, (d, r)
        assert d["max_handover_jump_m"] > 0.0 and r["max_handover_jump_m"] > 0.0, (d, r)
        assert abs(d["max_handover_jump_m"] - r["max_handover_jump_m"]) <= 0.5e-3, (d, r)
        # The robot closed on the target.
        assert d["final_error_m"] < 0.5 * d["initial_error_m"], summary
