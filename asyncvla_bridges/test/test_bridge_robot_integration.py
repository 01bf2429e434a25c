"""Robot bridge as a real process: a ZMQ PUB peer in the test, an rclpy subscriber in the test.

One test runs the whole life of a bridge (start-up costs seconds on 2 cores): good states with
every published field checked, a fuzz pass whose drop counters must match exactly, good states
again, a clock jump reported in /diagnostics, and a clean SIGINT shutdown.
"""
from __future__ import annotations

import math
import os
import struct
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))

from asyncvla_testing.bridge_harness import (domain_id, drops, start_bridge,  # noqa: E402
                                             wait_diagnostics)
from asyncvla_testing.lab_senders import RobotPublisher, robot_payload  # noqa: E402
from asyncvla_testing.ros_listener import RosListener  # noqa: E402

from asyncvla_core.rotations import euler_to_quaternion  # noqa: E402

OFFSET = 100.0   # the robot PC's clock is 100 s behind ours
JOINTS = ["shoulder_pan", "shoulder_lift", "elbow", "wrist_1", "wrist_2", "wrist_3"]
TOPICS = {"joints": "/robot/joint_states", "pose": "/robot/ee_pose", "force": "/robot/force"}


def state(k: int, capture_local: float, offset: float = OFFSET) -> dict:
    origin = capture_local - offset
    return {"origin": origin, "send": origin + 0.0005, "force": 0.25 * k - 3.0,
            "joints": [10.0 * j + 0.5 * k - 40.0 for j in range(6)],
            "pose": [100.0 + k, -250.5, 333.25 - k, 30.0 + k, -20.0, 170.0 - 2 * k],
            "capture_local": capture_local}


def send_state(pub: RobotPublisher, s: dict) -> None:
    pub.send([b"robot_state", robot_payload(s["origin"], s["send"], s["force"], s["joints"],
                                            s["pose"])])


def stamp_s(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def send_good(pub, listener, k0: int, count: int, period: float = 0.01) -> list[dict]:
    sent = []
    for k in range(k0, k0 + count):
        s = state(k, time.time() - 0.002)  # captured 2 ms before it is sent
        send_state(pub, s)
        sent.append(s)
        time.sleep(period)
    return sent


def check_published(listener, sent: list[dict], first: int) -> None:
    """The messages from index `first` on are exactly `sent`, field by field."""
    joints = listener[TOPICS["joints"]].wait_for(first + len(sent), 10)[first:]
    poses = listener[TOPICS["pose"]].wait_for(first + len(sent), 10)[first:]
    forces = listener[TOPICS["force"]].wait_for(first + len(sent), 10)[first:]
    assert len(joints) == len(poses) == len(forces) == len(sent)
    f32 = lambda v: float(np.float32(v))  # noqa: E731 - the wire carries float32
    base = None
    for s, js, pose, force in zip(sent, joints, poses, forces):
        assert list(js.name) == JOINTS and js.header.frame_id == ""
        np.testing.assert_allclose(js.position, [math.radians(f32(a)) for a in s["joints"]],
                                   rtol=0, atol=1e-12)
        assert len(js.velocity) == 0 and len(js.effort) == 0
        assert pose.header.frame_id == "robot_base" and pose.header.stamp == js.header.stamp
        p = pose.pose.position
        np.testing.assert_allclose([p.x, p.y, p.z], [f32(v) / 1000 for v in s["pose"][:3]],
                                   rtol=0, atol=1e-12)
        o = pose.pose.orientation
        expected_q = euler_to_quaternion([f32(v) for v in s["pose"][3:]], "zyx_intrinsic")
        np.testing.assert_allclose([o.x, o.y, o.z, o.w], expected_q, atol=1e-9)
        assert force.data == f32(s["force"])
        # Stamp = origin_ts mapped to local time: capture time plus the smallest delay seen.
        lag = stamp_s(js.header.stamp) - s["capture_local"]
        assert 0.0 <= lag < 0.05, lag
        # Relative stamps are the sender's own spacing (the estimate is steady; in its first
        # second the minimum filter may still find a lower delay floor, by a fraction of a ms).
        if base is None:
            base = (stamp_s(js.header.stamp), s["origin"])
        rel = (stamp_s(js.header.stamp) - base[0]) - (s["origin"] - base[1])
        assert abs(rel) < 1e-3, rel


def test_zyx_intrinsic_quaternion_for_a_hand_case():
    # a1=90 about z, then a2=0, then a3=90 about the new x: R = Rz(90) Rx(90), 120 deg about
    # (1,1,1): the quaternion the bridge must publish for pose angles (90, 0, 90).
    np.testing.assert_allclose(euler_to_quaternion((90, 0, 90), "zyx_intrinsic"),
                               [0.5, 0.5, 0.5, 0.5], atol=1e-12)


def test_robot_bridge_end_to_end(processes):
    pub = RobotPublisher()
    proc, endpoint = start_bridge(processes, "robot", {
        "wire": {"endpoint": pub.endpoint}, "joint_names": JOINTS,
        "pose": {"euler_convention": "zyx_intrinsic", "frame_id": "robot_base"},
        "reporting": {"diagnostics_period": 0.2}})
    assert endpoint == pub.endpoint
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64

    with RosListener(domain_id(processes), {TOPICS["joints"]: JointState,
                                            TOPICS["pose"]: PoseStamped,
                                            TOPICS["force"]: Float64,
                                            "/diagnostics": DiagnosticArray}) as ros:
        # Warm up: ZMQ slow joiner and DDS discovery; publish until the first message arrives.
        k, deadline = 0, time.monotonic() + 20
        while not len(ros[TOPICS["joints"]]) and time.monotonic() < deadline:
            send_state(pub, state(k, time.time()))
            k += 1
            time.sleep(0.05)
        time.sleep(0.3)
        first = len(ros[TOPICS["joints"]])
        assert first and len(ros[TOPICS["force"]]) == first
        good = warmup = k
        sent = send_good(pub, ros, 1000, 60)
        good += len(sent)
        check_published(ros, sent, first)

        # Fuzz: every bad input below must be dropped once, under the expected reason.
        rng = np.random.default_rng(42)
        expected: dict[str, int] = {}
        garbage = 0
        last = sent[-1]

        def bad(reason: str, parts: list[bytes]) -> None:
            expected[reason] = expected.get(reason, 0) + 1
            pub.send(parts)

        good_payload = lambda s: robot_payload(s["origin"], s["send"], s["force"],  # noqa
                                               s["joints"], s["pose"])
        for i in range(3000):
            kind = i % 8
            if kind == 0:
                bad("parts", [b"robot_state"] if i % 16 else
                    [b"robot_state", good_payload(last), b"extra"])
            elif kind == 1:
                bad("topic", [b"robot_state_debug", good_payload(last)])
            elif kind == 2:
                n = int(rng.integers(0, 200))
                bad("size", [b"robot_state", rng.bytes(n if n != 68 else 69)])
            elif kind == 3:
                values = list(struct.unpack("<ddf12f", good_payload(last)))
                values[int(rng.integers(0, 15))] = [math.nan, math.inf, -math.inf][i % 3]
                bad("nonfinite", [b"robot_state", struct.pack("<ddf12f", *values)])
            elif kind == 4:  # duplicate or older origin_ts; 1 s older is stale (late) first
                back = float(rng.choice([0.0, 0.01, 1.0]))
                old = dict(last, origin=last["origin"] - back)
                bad("late" if back > 0.25 else "reordered", [b"robot_state", good_payload(old)])
            elif kind == 5:  # origin far in the sender's future: no delay explains it
                future = dict(last, origin=last["origin"] + 50 + float(rng.uniform(0, 1e6)))
                bad("clock_suspect", [b"robot_state", good_payload(future)])
            elif kind == 6:  # random 68-byte payloads: dropped under one of several reasons
                garbage += 1
                pub.send([b"robot_state", rng.bytes(68)])
            else:  # a good state now and then: the bridge must keep publishing them
                s = state(2000 + i, time.time() - 0.002)
                send_state(pub, s)
                good += 1
                last = s
        total_bad = sum(expected.values()) + garbage
        after = send_good(pub, ros, 5000, 20)
        good += len(after)

        diag = wait_diagnostics(ros, "robot_bridge",
                                lambda v: int(v["received"]) == good + total_bad, 20)
        got = drops(diag)
        # Nothing is published before the clock offset is confirmed (0.2 s of warm-up states).
        settling = got.pop("clock_settling", 0)
        assert 0 < settling < warmup
        assert int(diag["drops_total"]) == total_bad + settling, (got, expected, garbage)
        assert int(diag["published"]) == good - settling
        assert int(diag["thread_errors"]) == 0 and diag["clock_jumps"] == "0"
        # Most of the input was dropped: ERROR, naming the main reason.
        assert diag["_level"] == "2" and diag["_message"].startswith("dropping "), diag
        assert f"mostly {diag['drop_main_reason']}" in diag["_message"]
        for reason in ("parts", "topic", "size"):
            assert got.get(reason) == expected[reason], (reason, got, expected)
        # Garbage lands in nonfinite / reordered / clock_suspect / late / bad_stamp; the rest is
        # exact.
        deterministic = sum(expected.values())
        assert sum(got.values()) - deterministic == garbage
        for reason in ("nonfinite", "reordered", "clock_suspect", "late"):
            assert got.get(reason, 0) >= expected[reason]
        assert proc.alive()
        total = len(ros[TOPICS["joints"]])
        # Warm-up states published before DDS discovery completed never reached us.
        assert total - first == good - warmup and len(ros[TOPICS["force"]]) == total
        assert got["late"] - expected["late"] <= garbage  # good states are never late
        check_published(ros, after, total - len(after))

        # The robot PC's clock steps 2 s back: reported as a step of -2 s (the sender's sign),
        # stamps stay right after it.
        for k in range(40):
            send_state(pub, state(9000 + k, time.time() - 0.002, offset=OFFSET + 2.0))
            time.sleep(0.01)
        diag = wait_diagnostics(ros, "robot_bridge", lambda v: v["clock_jumps"] == "1", 10)
        assert abs(float(diag["clock_last_step_s"]) + 2.0) < 0.02
        assert abs(float(diag["clock_offset_s"]) - (OFFSET + 2.0)) < 0.02
        # WARN while the jump is recent; ERROR while the fuzz's drops fill the 5 s window.
        assert diag["_level"] in ("1", "2")
        n = len(ros[TOPICS["joints"]])
        after_jump = [state(9500 + k, time.time() - 0.002, offset=OFFSET + 2.0) for k in range(1)]
        for s in after_jump:
            send_state(pub, s)
        check_published(ros, after_jump, n)

    pub.close()
    assert proc.stop(timeout=10) == 0
    assert "shut down cleanly" in proc.output()
    assert "Traceback" not in proc.output()


def test_second_generation_robot_sender_10hz(processes):
    """The newer robot sender: 10 Hz, force a 0.0 placeholder, times from a clock thread that
    rounds time.time() to 1 ms and updates every 5 ms. The bridge locks within a second and
    stamps every state within 10 ms of its (rounded, up to 5 ms stale) sender time's truth."""
    from sensor_msgs.msg import JointState

    pub = RobotPublisher()
    start_bridge(processes, "robot", {"wire": {"endpoint": pub.endpoint}})
    offset = -1234.5  # the robot PC's clock is 20 minutes ahead
    clock = {"t": 0.0}
    stop = threading.Event()

    def clock_thread() -> None:
        while not stop.is_set():
            clock["t"] = round(time.time() - offset, 3)
            time.sleep(0.005)

    threading.Thread(target=clock_thread, daemon=True).start()
    time.sleep(0.05)
    sent = []
    with RosListener(domain_id(processes), {TOPICS["joints"]: JointState}) as ros:
        ros.wait_until(lambda: ros.node.count_publishers(TOPICS["joints"]) > 0, 20, "discovery")
        time.sleep(0.3)
        started = time.time()
        for k in range(30):
            ts = clock["t"]
            sent.append((ts, time.time()))
            pub.send([b"robot_state", robot_payload(ts, ts, 0.0, [float(k)] * 6,
                                                    [200.0, 0.0, 300.0, 180.0, 0.0, 90.0])])
            time.sleep(0.1)
        time.sleep(0.3)
        msgs = ros[TOPICS["joints"]].snapshot()
    stop.set()
    pub.close()
    truth = {round(math.radians(float(k)), 9): wall for k, (_, wall) in enumerate(sent)}
    published = [(stamp_s(m.header.stamp), truth[round(m.position[0], 9)]) for m in msgs]
    assert published and published[0][1] - started < 1.0  # locked within a second
    assert len(published) >= len(sent) - 10
    assert all(abs(stamp - wall) < 0.010 for stamp, wall in published), published[:5]
