"""The camera bridge against the lab's sender as it behaves in the field (real ZMQ, process, DDS).

The peer is `asyncvla_testing.lab_camera_sender`, written from the lab senders' description: a
PUSH socket that queues up to 1000 frames while nobody listens, its own clock that can step,
five views stamped alike or nearly alike and delivered out of timestamp order, restarts, and the
second-generation 5 FPS sender without `send_time`. Each JPEG carries its true capture time, so
every published stamp is checked against the truth. In every case frames must flow within 1 s of
the condition and no published stamp may be more than 50 ms from the true capture time (a stale
backlog frame published as new would be seconds off).
"""
from __future__ import annotations

import os
import socket
import sys
import time
from dataclasses import dataclass

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))

from asyncvla_testing.bridge_harness import (domain_id, drops, start_bridge,  # noqa: E402
                                             wait_diagnostics)
from asyncvla_testing.lab_camera_sender import LabCameraSender, true_capture  # noqa: E402
from asyncvla_testing.ros_listener import RosListener  # noqa: E402

VIEWS = [f"view{i}" for i in range(1, 6)]
TOPICS = {v: f"/camera/{v}/image_raw/compressed" for v in VIEWS}
MAX_STAMP_ERROR = 0.05
#: Frames flow within this of each condition (bench_camera_field.py measured 0.22-0.34 s when it
#: was set; the committed run is docs/benchmarks/camera_field-*.json). Measured with these tests (2 runs, 40 conditions x views each, on a 2-core machine beside
#: other engineers' jobs): median 0.20 s, largest 0.31 s, timed from the later of the bridge's
#: clock lock and the listener discovering the bridge (see Field.wait_new_writers).
MAX_RECOVERY = 1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Published:
    view: str
    stamp: float
    capture: float       # true capture time (this machine's clock)

    @property
    def error(self) -> float:
        return self.stamp - self.capture


class Field:
    """Listener on the five views and /diagnostics; published frames with their truth."""

    def __init__(self, processes) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import CompressedImage

        topics = {t: CompressedImage for t in TOPICS.values()} | {"/diagnostics": DiagnosticArray}
        self.ros = RosListener(domain_id(processes), topics)

    def published(self) -> list[Published]:
        out = []
        for view, topic in TOPICS.items():
            for msg in self.ros[topic].snapshot():
                truth = true_capture(bytes(msg.data))
                assert truth is not None, "a frame without its truth segment was published"
                stamp = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
                out.append(Published(view, stamp, truth[0]))
        return sorted(out, key=lambda p: p.capture)

    def writers(self) -> set[tuple[str, bytes]]:
        """(topic, endpoint gid) of every view publisher the listener knows of."""
        return {(topic, bytes(info.endpoint_gid)) for topic in TOPICS.values()
                for info in self.ros.node.get_publishers_info_by_topic(topic)}

    def wait_new_writers(self, old: set[tuple[str, bytes]], timeout: float = 20.0) -> float:
        """Time at which the listener knows a publisher not in `old` on every view topic.

        Why: a subscriber gets frames only from publishers it has discovered. A restarted node's
        publishers are new DDS endpoints; after a SIGKILL the listener sometimes discovers them
        only at the next participant announcement (measured 2.6-3.4 s later here, while the
        bridge was already publishing at 150 frames/s), which is the listener's latency, not
        the bridge's."""
        def found() -> bool:
            fresh = {topic for topic, _ in self.writers() - old}
            return fresh == set(TOPICS.values())

        self.ros.wait_until(found, timeout, "the listener discovering the bridge's publishers")
        return time.time()

    def wait_matched(self, timeout: float = 20.0) -> None:
        """Until the listener has discovered the bridge's five publishers (DDS discovery of a
        freshly started node takes a moment; frames published before it are not seen)."""
        self.ros.wait_until(lambda: all(self.ros.node.count_publishers(t) for t in
                                        TOPICS.values()), timeout, "camera bridge discovered")
        time.sleep(0.3)

    def close(self) -> None:
        self.ros.close()


@pytest.fixture
def field(processes):
    f = Field(processes)
    yield f
    f.close()


def bridge(processes, port: int, field: Field | None = None):
    """A camera bridge with default parameters on `port`; with `field`, once it is discovered."""
    proc, _ = start_bridge(processes, "camera", {"wire": {"port": port},
                                                        "reporting": {"diagnostics_period": 0.2}})
    if field is not None:
        field.wait_matched()
    return proc


def lock_time(proc, after_line: int = 0) -> float:
    """ROS time of the bridge's "sender clock locked" log line (the first after `after_line`)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in proc.output().splitlines()[after_line:]:
            if "sender clock locked" in line:
                return float(line.split("] [")[1].split("]")[0])
        time.sleep(0.05)
    raise AssertionError(f"no clock lock logged:\n{proc.output()}")


def assert_stamps_true(frames: list[Published]) -> None:
    worst = max(frames, key=lambda p: abs(p.error))
    assert abs(worst.error) <= MAX_STAMP_ERROR, (
        f"{worst.view} stamped {worst.error * 1e3:+.1f} ms from its true capture time")


def assert_flows_after(frames: list[Published], since: float, within: float = MAX_RECOVERY,
                       views=VIEWS) -> None:
    """Every view publishes a frame captured within `within` s after `since`."""
    for view in views:
        first = next((p for p in frames if p.view == view and p.capture >= since), None)
        assert first is not None, f"{view}: nothing captured after the condition was published"
        assert first.capture - since <= within, (
            f"{view}: first frame after the condition captured {first.capture - since:.2f} s "
            "later")


def test_backlog_at_start_and_after_a_bridge_kill(processes, field):
    """(a) The sender runs 3 s before the bridge (a 450-frame backlog), and again while the
    bridge is killed with SIGKILL and restarted: the backlog is dropped, live frames flow."""
    port = free_port()
    sender = LabCameraSender(f"tcp://127.0.0.1:{port}").start()
    try:
        time.sleep(3.0)  # the backlog builds up: the condition under test, not a wait
        proc = bridge(processes, port)
        ready = time.time()
        # The bridge publishes from the moment its clock locks; frames can only arrive once the
        # listener has discovered its publishers: the flow is timed from the later of the two.
        seen = field.wait_new_writers(set())
        field.ros.wait_until(lambda: len(field.published()) > 50, 20, "frames")
        frames = field.published()
        assert_stamps_true(frames)
        assert lock_time(proc) - ready <= MAX_RECOVERY
        assert_flows_after(frames, max(lock_time(proc), seen))
        # Nothing captured before the bridge ran was published: the backlog was dropped.
        assert min(p.capture for p in frames) > ready - 0.1
        diag = wait_diagnostics(field.ros, "camera_bridge", lambda v: True, 5)
        assert drops(diag).get("clock_settling", 0) >= 400, drops(diag)

        writers = field.writers()
        proc.kill()
        assert proc.popen.wait(5) is not None
        time.sleep(2.0)  # the sender queues frames for the dead bridge: the condition under test
        # Everything the killed bridge published has arrived by now (it died 2 s ago): what
        # arrives from here on comes from the restarted one. (Filtering by capture time instead,
        # "captured less than 2.5 s before the restart", also took in frames the old bridge
        # published in its last half second: that was the test's error, not a backlog.)
        old = {(p.view, p.capture) for p in field.published()}
        before = len(old)
        proc = bridge(processes, port)
        restarted = time.time()
        # The listener must discover the restarted node's publishers (new endpoints; the old
        # ones linger until their liveliness expires): timed from the later of that and the lock.
        seen = field.wait_new_writers(writers)
        field.ros.wait_until(lambda: len(field.published()) > before + 50, 20, "frames again")
        frames = field.published()
        assert_stamps_true(frames)
        assert lock_time(proc) - restarted <= MAX_RECOVERY
        assert_flows_after(frames, max(lock_time(proc), seen))
        from_restarted = [p for p in frames if (p.view, p.capture) not in old]
        assert from_restarted and min(p.capture for p in from_restarted) > restarted - 0.1
    finally:
        sender.stop()


def test_sender_clock_steps_forward_and_back(processes, field):
    """(b) The Jetson's clock steps +2 s, then -2 s, mid-stream: each is adopted and reported
    with the sender's sign; stamps stay true."""
    port = free_port()
    bridge(processes, port, field)
    sender = LabCameraSender(f"tcp://127.0.0.1:{port}").start()
    try:
        time.sleep(2.0)
        forward = sender.step_clock(+2.0)
        time.sleep(2.0)
        diag = wait_diagnostics(field.ros, "camera_bridge", lambda v: v["clock_jumps"] == "1", 5)
        assert abs(float(diag["clock_last_step_s"]) - 2.0) < 0.02
        back = sender.step_clock(-2.0)
        time.sleep(2.0)
        diag = wait_diagnostics(field.ros, "camera_bridge", lambda v: v["clock_jumps"] == "2", 5)
        assert abs(float(diag["clock_last_step_s"]) + 2.0) < 0.02
        frames = field.published()
        assert_stamps_true(frames)
        assert_flows_after(frames, forward)
        assert_flows_after(frames, back)
    finally:
        sender.stop()


@pytest.mark.parametrize("same_stamp, out_of_order", [(True, False), (False, True)],
                         ids=["views_stamped_alike", "views_out_of_order"])
def test_views_stamped_alike_or_out_of_order(processes, field, same_stamp, out_of_order):
    """(c) All five views of a trigger carry one time; (d) views arrive out of timestamp order
    (4 encoding workers, batches held to the next trigger)."""
    port = free_port()
    bridge(processes, port, field)
    started = time.time()
    sender = LabCameraSender(f"tcp://127.0.0.1:{port}", same_stamp=same_stamp,
                             out_of_order=out_of_order, seed=3).start()
    try:
        time.sleep(3.0)
        frames = field.published()
        assert_stamps_true(frames)
        assert_flows_after(frames, started)
        diag = wait_diagnostics(field.ros, "camera_bridge", lambda v: True, 5)
        counts = drops(diag)
        # After the start-up settling nothing is dropped: views are ordered per view only.
        assert set(counts) <= {"clock_settling"}, counts
        assert counts.get("clock_settling", 0) <= 0.4 * 150, counts
    finally:
        sender.stop()


def test_sender_restart(processes, field):
    """(e) The sender process dies and a new one starts 1 s later (a fresh socket)."""
    port = free_port()
    bridge(processes, port, field)
    sender = LabCameraSender(f"tcp://127.0.0.1:{port}").start()
    time.sleep(1.5)
    sender.stop()
    time.sleep(1.0)
    restarted = time.time()
    sender = LabCameraSender(f"tcp://127.0.0.1:{port}", seed=5).start()
    try:
        time.sleep(2.0)
        frames = field.published()
        assert_stamps_true(frames)
        assert_flows_after(frames, restarted)
    finally:
        sender.stop()


def test_second_generation_sender_5fps_without_send_time(processes, field):
    """(f) The newer sender: 5 FPS triggered 1280x720 frames, no send_time, ZED_<serial>_left and
    OAK names; the bridge's default parameters read it."""
    port = free_port()
    bridge(processes, port, field)
    started = time.time()
    sender = LabCameraSender(f"tcp://127.0.0.1:{port}", generation=2).start()
    try:
        time.sleep(3.0)
        frames = field.published()
        assert_stamps_true(frames)
        assert_flows_after(frames, started)
        later = [p for p in frames if p.capture > started + MAX_RECOVERY]
        assert len(later) >= 0.9 * 5 * 5 * (time.time() - started - MAX_RECOVERY - 0.5)
    finally:
        sender.stop()


def test_diagnostics_warn_and_error_on_the_dropped_share(processes, field):
    """Receiving but not publishing is an ERROR (over half dropped), a fifth dropped a WARN;
    the message names the main reason."""
    port = free_port()
    bridge(processes, port, field)
    names = ("ZED 41182735 left", "ZED 49429257 left", "ZED 44377151 left",
             "ZED 49045152 left", "a camera nobody mapped")
    sender = LabCameraSender(f"tcp://127.0.0.1:{port}", cameras=names).start()
    try:
        diag = wait_diagnostics(field.ros, "camera_bridge",
                                lambda v: float(v["rate_received_hz"]) > 100, 10)
        time.sleep(5.5)  # the first second's settling leaves the 5 s window
        diag = wait_diagnostics(field.ros, "camera_bridge", lambda v: True, 5)
        assert diag["_level"] == "1", diag["_message"]
        assert "mostly unknown_camera" in diag["_message"]
    finally:
        sender.stop()
    sender = LabCameraSender(f"tcp://127.0.0.1:{port}",
                             cameras=tuple(f"stranger {i}" for i in range(5))).start()
    try:
        diag = wait_diagnostics(field.ros, "camera_bridge", lambda v: v["_level"] == "2", 10)
        assert "mostly unknown_camera" in diag["_message"]
    finally:
        sender.stop()


def test_vlm_node_points_at_the_bridge_when_cameras_are_silent(one_thread, assets, field):
    """Frames arrive at the bridge but none is published (no camera name is mapped): the VLM
    node's camera diagnostic names the bridge's own reason, not just "camera silent"."""
    from asyncvla_testing.pipeline import start_vlm
    from asyncvla_testing.ros_listener import diagnostic_values

    port = free_port()
    bridge(processes=one_thread, port=port)
    start_vlm(one_thread, assets, VIEWS)
    sender = LabCameraSender(f"tcp://127.0.0.1:{port}",
                             cameras=tuple(f"stranger {i}" for i in range(5))).start()
    try:
        def explained() -> bool:
            for array_msg in reversed(field.ros["/diagnostics"].snapshot()):
                values = diagnostic_values(array_msg, "asyncvla_vlm_node: cameras")
                if values is not None:
                    return ("camera_bridge: bridge reports ERROR" in values["_message"]
                            and "unknown_camera" in values["_message"])
            return False

        field.ros.wait_until(explained, 60, "the VLM node names the bridge's reason")
    finally:
        sender.stop()
