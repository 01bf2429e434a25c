"""The async pipeline as separate processes over real DDS: sources, VLM node, action node.

Uses the embedded default (tiny random-weight Qwen2.5-VL and policy, CPU). Times are bounded
generously for a loaded 2-core machine; what is asserted is the behaviour, not the speed.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from asyncvla_testing.pipeline import start_action, start_sources, start_vlm
from asyncvla_testing.ros_listener import RosListener, diagnostic_values

rclpy = pytest.importorskip("rclpy")
from asyncvla_msgs.msg import ActionChunk, VLFeatures  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402

VIEWS = ["view1", "view2"]
MAX_VL_AGE = 0.8


def stamp_s(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


PLOT_TOPICS = ["/asyncvla_action_node/vl_age", "/asyncvla_action_node/inference_time_ms",
               "/asyncvla_action_node/vl_reuse_count", "/asyncvla_vlm_node/compute_time_ms"]


def listen(ros_env) -> RosListener:
    from std_msgs.msg import Float64

    return RosListener(int(ros_env["ROS_DOMAIN_ID"]), {
        "/asyncvla/action_chunk": ActionChunk, "/asyncvla/vl_features": VLFeatures,
        "/diagnostics": DiagnosticArray, **{t: Float64 for t in PLOT_TOPICS}})


def test_actions_flow_at_rate_while_vlm_is_slower(one_thread, ros_env, assets):
    start_sources(one_thread, VIEWS)
    vlm = start_vlm(one_thread, assets, VIEWS, timing={"target_period": 0.4})
    action = start_action(one_thread, assets, freshness={"max_vl_age": MAX_VL_AGE},
                          timing={"action_rate_hz": 10.0})
    with listen(ros_env) as listener:
        chunks = listener["/asyncvla/action_chunk"].wait_for(5, 120)
        listener["/asyncvla/action_chunk"].clear()
        listener["/asyncvla/vl_features"].clear()
        time.sleep(6.0)
        chunks = listener["/asyncvla/action_chunk"].snapshot()
        vls = listener["/asyncvla/vl_features"].snapshot()
        plots = {t: [m.data for m in listener[t].snapshot()] for t in PLOT_TOPICS}
    assert vlm.alive() and action.alive()
    # The numeric topics for rqt_plot carry the same figures as the messages.
    assert all(plots.values()), {t: len(v) for t, v in plots.items()}
    ages = sorted(plots["/asyncvla_action_node/vl_age"])  # also published on withheld ticks
    assert ages[0] >= 0.0 and ages[len(ages) // 2] <= MAX_VL_AGE
    assert max(plots["/asyncvla_action_node/vl_reuse_count"]) >= 1.0
    assert all(t > 0 for t in plots["/asyncvla_action_node/inference_time_ms"])
    span = stamp_s(chunks[-1]) - stamp_s(chunks[0])
    rate = (len(chunks) - 1) / span
    vl_rate = len(vls) / 6.0
    print(f"\naction rate {rate:.2f} Hz over {len(chunks)} chunks, VL rate {vl_rate:.2f} Hz")
    assert 7.0 <= rate <= 11.0
    assert 0 < vl_rate < rate / 2  # the VLM is the slow one, and actions do not wait for it
    for chunk in chunks:
        assert 0.0 <= chunk.vl_age <= MAX_VL_AGE
        # re-timed to its tick, a chunk keeps the steps its inference still covers (<= 8)
        assert 1 <= chunk.horizon <= 8 and chunk.action_dim == 7
        assert len(chunk.actions) == 7 * chunk.horizon
        assert chunk.action_space == "ee_delta" and len(chunk.reference) == 6
    # Features are reused across inferences, and the reuse count restarts for each new feature
    # set. A re-timed design may publish one inference at several ticks (its chunks carry the
    # same VL reuse count, and inference_reuse_count > 0): count each inference once.
    by_seq: dict[int, list[int]] = {}
    for chunk in chunks:
        if chunk.inference_reuse_count == 0:
            by_seq.setdefault(chunk.vl_sequence, []).append(chunk.vl_reuse_count)
    assert any(len(r) > 1 for r in by_seq.values())
    for counts in by_seq.values():
        assert counts == sorted(counts) and len(set(counts)) == len(counts)
    sequences = [c.sequence for c in chunks]
    assert sequences == sorted(sequences)


def test_killing_vlm_stops_actions_with_error_and_restart_resumes(one_thread, ros_env, assets):
    start_sources(one_thread, VIEWS)
    vlm = start_vlm(one_thread, assets, VIEWS)
    start_action(one_thread, assets, freshness={"max_vl_age": MAX_VL_AGE},
                 reporting={"diagnostics_period": 0.5})
    with listen(ros_env) as listener:
        chunks = listener["/asyncvla/action_chunk"]
        vls = listener["/asyncvla/vl_features"]
        chunks.wait_for(5, 120)
        last_vl_stamp = stamp_s(vls.snapshot()[-1])
        vlm.kill()  # SIGKILL: no goodbye, as in a crash
        killed_at = time.time()
        time.sleep(MAX_VL_AGE + 2.0)
        after_kill = [c for c in chunks.snapshot() if stamp_s(c) > killed_at]
        # The last chunk may come from features published just before the kill, but never once
        # they are older than max_vl_age (small allowance for the tick period).
        newest_vl = max(stamp_s(v) for v in vls.snapshot())
        assert newest_vl >= last_vl_stamp
        for chunk in after_kill:
            assert stamp_s(chunk) <= newest_vl + MAX_VL_AGE + 1e-3
            assert chunk.vl_age <= MAX_VL_AGE
        stopped_after = (max(stamp_s(c) for c in after_kill) - killed_at) if after_kill else 0.0
        print(f"\nactions stopped {stopped_after * 1e3:.0f} ms after the kill")
        assert stopped_after <= MAX_VL_AGE + 0.15
        # An ERROR diagnostic names the reason.
        listener.wait_until(lambda: any(
            (d := diagnostic_values(a, "action output")) is not None and d["_level"] == "2"
            and "VL features" in d["_message"] for a in listener["/diagnostics"].snapshot()),
            10, "ERROR diagnostic about stale VL features")
        quiet_count = len(chunks)
        time.sleep(1.0)
        assert len(chunks) == quiet_count  # still nothing published
        # Restart: actions resume by themselves.
        restarted_at = time.time()
        vlm2 = start_vlm(one_thread, assets, VIEWS, name="vlm2")
        vlm2.wait_for_line("VLM node ready", 120)  # the model load: seconds, not asserted
        ready_at = time.time()
        try:
            listener.wait_until(lambda: any(stamp_s(c) > restarted_at for c in chunks.snapshot()),
                                60, "actions after the VLM restart")
        except TimeoutError:
            _known_sensor_stall_or_fail(listener, restarted_at)
        resumed = [c for c in chunks.snapshot() if stamp_s(c) > restarted_at]
        print(f"actions resumed {stamp_s(resumed[0]) - restarted_at:.1f} s after the restart "
              f"(includes model load), {stamp_s(resumed[0]) - ready_at:.2f} s after its ready "
              f"line")
        assert resumed[0].vl_sequence >= 1 and resumed[0].vl_age <= MAX_VL_AGE
        # Once ready, the restarted VLM's first features (a period away) are taken at once: a
        # few ticks, not the tens of seconds of the open soak case (asyncvla_action_node/
        # SAFETY.md, **Open**). 3 s allows for a loaded 2-core machine.
        assert stamp_s(resumed[0]) - ready_at <= 3.0


def _known_sensor_stall_or_fail(listener, restarted_at: float) -> None:
    """No actions within 60 s of a VLM restart. One cause is known and open
    (asyncvla_action_node/SAFETY.md, **Open**; 3 of 34 restarts in reproductions): the force/OCT
    stream of the sources process, which the kill never touched, stops reaching the action node
    in DDS delivery, while the restarted VLM's features arrive; the node rightly withholds for a
    silent sensor. That case is reported as an expected failure, visible in the run's summary;
    any other cause fails the test."""
    fresh_vl = [v for v in listener["/asyncvla/vl_features"].snapshot()
                if stamp_s(v) > restarted_at]
    messages = [d["_message"] for a in listener["/diagnostics"].snapshot()[-20:]
                if (d := diagnostic_values(a, "action output")) is not None]
    if fresh_vl and messages and "sensor" in messages[-1] and "vl_features" not in messages[-1]:
        pytest.xfail(f"known open issue: the force/OCT stream stalled after the VLM's kill -9 "
                     f"(SAFETY.md, Open); the restarted VLM's features arrived "
                     f"({len(fresh_vl)}), the action node says: {messages[-1]!r}")
    pytest.fail(f"no actions within 60 s of the VLM restart; VL features since: {len(fresh_vl)}; "
                f"the action node's last words: {messages[-3:]}")


def test_late_action_node_gets_last_vl_features_at_once(one_thread, ros_env, assets, tmp_path):
    pause = tmp_path / "pause"
    start_sources(one_thread, VIEWS, ["--pause-file", str(pause)])
    start_vlm(one_thread, assets, VIEWS)
    with listen(ros_env) as listener:
        listener["/asyncvla/vl_features"].wait_for(2, 120)
        # Stop the cameras: the VLM node stops publishing, only the latched sample remains.
        pause.write_text("\n".join(VIEWS))
        time.sleep(1.5)
        last = listener["/asyncvla/vl_features"].snapshot()[-1]
        count = len(listener["/asyncvla/vl_features"])
        time.sleep(1.0)
        assert len(listener["/asyncvla/vl_features"]) == count  # nothing new is published
        action = start_action(one_thread, assets, freshness={"max_vl_age": 60.0})
        ready = action.wait_for_line("action node ready", 120)
        got = action.wait_for_line(f"[VL #{last.sequence}]", 10)
        assert got and ready


def test_skipped_vl_update_reported_when_a_view_goes_missing(one_thread, ros_env, assets,
                                                              tmp_path):
    pause = tmp_path / "pause"
    start_sources(one_thread, VIEWS, ["--pause-file", str(pause)])
    vlm = start_vlm(one_thread, assets, VIEWS, freshness={"max_frame_age": 0.5},
                    reporting={"diagnostics_period": 0.5})
    with listen(ros_env) as listener:
        vls = listener["/asyncvla/vl_features"]
        vls.wait_for(2, 120)
        pause.write_text("view2")
        time.sleep(1.5)
        count = len(vls)
        time.sleep(1.5)
        assert len(vls) == count  # no update from a set with a stale view
        listener.wait_until(lambda: any(
            (d := diagnostic_values(a, "vl updates")) is not None and d["_level"] == "1"
            and "view2" in d["_message"] for a in listener["/diagnostics"].snapshot()),
            10, "WARN diagnostic naming the stale view")
        pause.write_text("")
        vls.wait_for(count + 2, 30)  # recovers by itself
    assert vlm.alive()


def test_fast_ticks_joint_trajectory_and_runtime_prompt(one_thread, ros_env, assets, tmp_path):
    """50 Hz ticks with weighted blending, a joint_delta policy feeding JointTrajectory, and a
    prompt changed on the ~/prompt topic while running."""
    from std_msgs.msg import String
    from trajectory_msgs.msg import JointTrajectory

    from asyncvla_testing.assets import joint_delta_checkpoint

    joint_ckpt = joint_delta_checkpoint(assets, str(tmp_path))

    start_sources(one_thread, VIEWS)
    start_vlm(one_thread, assets, VIEWS)
    start_action(one_thread, assets, checkpoint=str(joint_ckpt), timing={"action_rate_hz": 50.0},
                 blending={"mode": "weighted_blend"}, publish_joint_trajectory=True,
                 reporting={"log_period": 5.0}, expert={"runtime": "torch_bf16_autocast"})  # a runtime other than the default, end to end
    with RosListener(int(ros_env["ROS_DOMAIN_ID"]), {
            "/asyncvla/action_chunk": ActionChunk, "/asyncvla/vl_features": VLFeatures,
            "/asyncvla/joint_trajectory": JointTrajectory}) as listener:
        chunks = listener["/asyncvla/action_chunk"]
        chunks.wait_for(20, 120)
        chunks.clear()
        time.sleep(3.0)
        got = chunks.snapshot()
        rate = (len(got) - 1) / (stamp_s(got[-1]) - stamp_s(got[0]))
        print(f"\n50 Hz configured: {rate:.1f} Hz measured")
        assert rate >= 35.0
        trajectories = listener["/asyncvla/joint_trajectory"].snapshot()
        by_stamp = {(c.header.stamp.sec, c.header.stamp.nanosec): c for c in got}
        matched = [t for t in trajectories
                   if (t.header.stamp.sec, t.header.stamp.nanosec) in by_stamp]
        assert matched
        for traj in matched[:5]:
            chunk = by_stamp[(traj.header.stamp.sec, traj.header.stamp.nanosec)]
            actions = np.asarray(chunk.actions).reshape(chunk.horizon, 7)
            assert traj.joint_names == [f"joint_{i}" for i in range(1, 7)]
            for i, point in enumerate(traj.points):
                t = point.time_from_start.sec + point.time_from_start.nanosec * 1e-9
                assert t == pytest.approx(0.1 * (i + 1), abs=1e-6)
                np.testing.assert_allclose(point.positions, np.asarray(chunk.reference)
                                           + actions[i, :6], rtol=1e-5, atol=1e-5)
        # Change the prompt at run time: later VL features carry the new prompt and its id.
        pub_ctx = listener.node.create_publisher(String, "/asyncvla_vlm_node/prompt", 10)
        new_prompt = "Retract the needle slowly"
        listener.wait_until(lambda: pub_ctx.get_subscription_count() > 0, 20, "prompt subscriber")
        pub_ctx.publish(String(data=new_prompt))
        listener.wait_until(lambda: any(v.prompt == new_prompt for v in
                                        listener["/asyncvla/vl_features"].snapshot()),
                            20, "VL features with the new prompt")
        changed = [v for v in listener["/asyncvla/vl_features"].snapshot()
                   if v.prompt == new_prompt][0]
        import hashlib
        assert changed.prompt_id == hashlib.sha256(new_prompt.encode()).hexdigest()[:16]
