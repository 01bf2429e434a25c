"""Every e-stop press reaches the robot as a hold, in every state, over real DDS.

SAFETY.md promises that with `publish_joint_trajectory` an e-stop publishes an empty
trajectory_msgs/JointTrajectory (a joint_trajectory_controller stops and holds on it). Two action
node processes run side by side on the same enable / e-stop topics: A starts DISABLED (the robot
default) with live inputs so that it really publishes chunks once enabled, B starts ENABLED
(`enabled_at_start`). The test presses e-stop in DISABLED, ENABLED and already-ESTOP states,
releases and re-enables, and checks that each press brings a hold from each node, that no safety
callback failed (log and `callback_errors_*` counters) and that both nodes are alive.
"""
from __future__ import annotations

import os
import time

import pytest

from asyncvla_testing.assets import joint_delta_checkpoint
from asyncvla_testing.pipeline import HERE, flat_params, ros_args, start_sources
from asyncvla_testing.ros_listener import RosListener, diagnostic_values

rclpy = pytest.importorskip("rclpy")
from asyncvla_msgs.msg import ActionChunk, SafetyStatus  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from std_msgs.msg import Bool  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from asyncvla_common import qos  # noqa: E402

INJECTOR = os.path.join(HERE, "vl_injector.py")
TRAJ_A, TRAJ_B = "/asyncvla/joint_trajectory", "/b/joint_trajectory"
STATUS_A, STATUS_B = "/asyncvla_action_node/safety_status", "/asyncvla_action_b/safety_status"


def start_action_node(group, checkpoint: str, name: str, **params):
    base = {"checkpoint": checkpoint, "expert.device": "cpu", "timing.action_rate_hz": 10.0,
            "publish_joint_trajectory": True, "reporting.diagnostics_period": 0.25,
            **flat_params(params)}
    return group.start(name, ["-m", "asyncvla_action_node.action_node", *ros_args(base),
                              "-r", f"__node:={name}"])


def holds(listener: RosListener, topic: str) -> int:
    return sum(1 for t in listener[topic].snapshot() if not t.points)


def test_every_estop_press_publishes_a_hold_in_every_state(one_thread, ros_env, assets,
                                                           tmp_path):
    from asyncvla_policy.checkpoint import read_checkpoint_config

    checkpoint = joint_delta_checkpoint(assets, str(tmp_path))
    cfg, _ = read_checkpoint_config(checkpoint)
    start_sources(one_thread, [])
    one_thread.start("injector", [INJECTOR, "--model-id", assets.model_id, "--tokens",
                                  str(cfg.vl_num_tokens), "--dim", str(cfg.vl_dim)])
    a = start_action_node(one_thread, checkpoint, "asyncvla_action_node",
                          safety={"enabled_at_start": False})
    b = start_action_node(one_thread, checkpoint, "asyncvla_action_b",
                          safety={"enabled_at_start": True},
                          topics={"trajectory": TRAJ_B, "action": "/b/action_chunk"})
    with RosListener(int(ros_env["ROS_DOMAIN_ID"]), {
            TRAJ_A: JointTrajectory, TRAJ_B: JointTrajectory, STATUS_A: SafetyStatus,
            STATUS_B: SafetyStatus, "/asyncvla/action_chunk": ActionChunk,
            "/diagnostics": DiagnosticArray}) as listener:
        enable = listener.publisher("/asyncvla/enable", Bool, qos.LATCHED)
        estop = listener.publisher("/asyncvla/estop", Bool, qos.LATCHED)

        def state(topic: str) -> int | None:
            got = listener[topic].snapshot()
            return got[-1].state if got else None

        def wait_states(sa: int, sb: int, what: str, timeout: float = 10.0) -> None:
            listener.wait_until(lambda: state(STATUS_A) == sa and state(STATUS_B) == sb, timeout,
                                what)

        # Two nodes loading torch and a checkpoint on a 2-core machine: give start-up its time.
        wait_states(SafetyStatus.STATE_DISABLED, SafetyStatus.STATE_ENABLED, "both nodes up", 45.0)
        listener.wait_until(lambda: enable.get_subscription_count() >= 2
                            and estop.get_subscription_count() >= 2, 30, "matched")
        delays: list[float] = []

        def press(what: str) -> float:
            before = holds(listener, TRAJ_A), holds(listener, TRAJ_B)
            t, wall = time.monotonic(), time.time()
            estop.publish(Bool(data=True))
            listener.wait_until(lambda: holds(listener, TRAJ_A) > before[0]
                                and holds(listener, TRAJ_B) > before[1], 3.0,
                                f"a hold from both nodes after the e-stop pressed {what}")
            delays.append(time.monotonic() - t)
            wait_states(SafetyStatus.STATE_ESTOP, SafetyStatus.STATE_ESTOP, f"ESTOP {what}")
            return wall

        # A DISABLED (robot default), B ENABLED at start.
        press("in DISABLED (A) and enabled_at_start (B)")
        press("while already ESTOP")
        estop.publish(Bool(data=False))
        wait_states(SafetyStatus.STATE_DISABLED, SafetyStatus.STATE_DISABLED, "released")
        enable.publish(Bool(data=True))
        wait_states(SafetyStatus.STATE_ENABLED, SafetyStatus.STATE_ENABLED, "re-enabled")
        chunks = listener["/asyncvla/action_chunk"]
        n = len(chunks)
        listener.wait_until(lambda: len(chunks) > n + 2, 30, "A publishing chunks when enabled")
        pressed = press("in ENABLED, while publishing")
        time.sleep(0.5)
        # Nothing stamped later than one action period (plus delivery) after the press.
        after = [c for c in chunks.snapshot()
                 if c.header.stamp.sec + c.header.stamp.nanosec * 1e-9 > pressed + 0.15]
        estop.publish(Bool(data=False))  # two topics: no order between them, so wait
        wait_states(SafetyStatus.STATE_DISABLED, SafetyStatus.STATE_DISABLED, "released again")
        enable.publish(Bool(data=True))
        wait_states(SafetyStatus.STATE_ENABLED, SafetyStatus.STATE_ENABLED,
                    "enabled after the last press")
        time.sleep(0.6)  # a diagnostics period or two
        errors = {}
        for array in listener["/diagnostics"].snapshot():
            for suffix in ("asyncvla_action_node: inputs", "asyncvla_action_b: inputs"):
                values = diagnostic_values(array, suffix)
                if values:
                    errors[suffix] = {k: v for k, v in values.items()
                                      if k.startswith("callback_errors")}
    print(f"\nhold after e-stop press: max {max(delays) * 1e3:.0f} ms over {len(delays)} presses")
    assert a.alive() and b.alive()
    assert after == []  # no chunk from A after the press
    for proc in (a, b):
        assert "callback failed" not in proc.output() and "Traceback" not in proc.output()
    assert set(errors) == {"asyncvla_action_node: inputs", "asyncvla_action_b: inputs"}
    assert errors == {k: {} for k in errors}, errors
