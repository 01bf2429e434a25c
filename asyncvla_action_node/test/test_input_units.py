"""ROS-free input checks: future stamps, joints by name, repeated-refusal levels."""
from __future__ import annotations

import numpy as np
import pytest

from asyncvla_action_node.rejection_tracker import ERROR, OK, WARN, RejectionSet, RejectionTracker
from asyncvla_action_node.sensor_window import SensorWindow
from asyncvla_action_node.vl_store import VLFeatureStore
from asyncvla_common.robot_state_input import RobotStateInput, check_joint_names
from asyncvla_core.conventions import JOINT_NAMES, joint_positions_by_name
from asyncvla_core.input_checks import future_stamp_reason

MS = 1_000_000
S = 1_000_000_000
HOUR = 3600 * S
T0 = 1_700_000_000 * S  # a realistic wall-clock "now"
PERIOD_NS = int(1e9 / 650)


# --- future stamps -----------------------------------------------------------------------------
def test_future_stamp_reason_tolerance_edges():
    assert future_stamp_reason(T0 + 200 * MS, T0, 0.2) == ""
    assert future_stamp_reason(T0 - HOUR, T0, 0.2) == ""  # old is not this check's business
    reason = future_stamp_reason(T0 + 201 * MS, T0, 0.2)
    assert "201 ms in the future" in reason and "max_future_stamp 200 ms" in reason
    assert "3600 s in the future" in future_stamp_reason(T0 + HOUR, T0, 0.2)


def test_vl_store_refuses_future_features_without_making_them_the_reference():
    store = VLFeatureStore(2, 4, max_future=0.2)
    ok = np.ones((2, 4), np.float32)
    assert store.update(ok, 1, T0 - 300 * MS, "m", T0) == ""
    reason = store.update(ok, 2, T0 + HOUR, "m", T0)  # one rogue message, an hour ahead
    assert "in the future" in reason and store.rejected == {"future": 1}
    assert store.snapshot(T0).sequence == 1  # the held features are untouched
    # The very next correct features are accepted: the rogue stamp never became the reference.
    assert store.update(ok, 3, T0 + 100 * MS, "m", T0 + 400 * MS) == ""
    assert store.snapshot(T0 + 400 * MS).sequence == 3


def test_vl_store_recovers_from_features_held_across_a_clock_step_back():
    store = VLFeatureStore(1, 2, max_future=0.2)
    ok = np.ones((1, 2), np.float32)
    assert store.update(ok, 1, T0, "m", T0) == ""
    back = T0 - 10 * S  # the node's clock stepped back 10 s
    assert store.update(ok, 2, back - 100 * MS, "m", back) == ""
    assert store.snapshot(back).sequence == 2


def test_sensor_window_drops_future_samples_and_keeps_accepting_real_ones():
    w = SensorWindow(5, 3, max_gap=0.01, max_future=0.2)
    stamps = T0 + PERIOD_NS * np.arange(10)
    assert w.add_batch(stamps, np.ones(10), np.ones((10, 3)), now_ns=int(stamps[-1])) == 10
    rogue = np.full(50, T0 + HOUR) + np.arange(50)  # a batch stamped an hour ahead
    assert w.add_batch(rogue, np.ones(50), np.ones((50, 3)), now_ns=int(stamps[-1])) == 0
    assert w.dropped["future"] == 50
    assert "50 of 50 samples dropped: 50 stamped in the future" in w.describe_last_drops()
    more = stamps[-1] + PERIOD_NS * np.arange(1, 11)
    assert w.add_batch(more, np.ones(10), np.ones((10, 3)), now_ns=int(more[-1])) == 10
    assert w.dropped["out_of_order"] == 0 and w.describe_last_drops() == ""
    assert w.window(int(more[-1]), 0.05).reason == ""


def test_sensor_window_clears_samples_left_ahead_by_a_clock_step_back():
    w = SensorWindow(3, 2, max_gap=0.01, max_future=0.2)
    stamps = T0 + PERIOD_NS * np.arange(5)
    w.add_batch(stamps, np.ones(5), np.ones((5, 2)), now_ns=int(stamps[-1]))
    back = T0 - 10 * S
    new = back + PERIOD_NS * np.arange(5)
    assert w.add_batch(new, np.ones(5), np.ones((5, 2)), now_ns=int(new[-1])) == 5
    assert w.fill == 5 and w.window(int(new[-1]), 0.05).reason == ""


# --- joints by name ----------------------------------------------------------------------------
def test_joint_positions_mapped_by_name_in_any_order_extras_ignored():
    names = ["tool_finger", "joint_3", "joint_1", "joint_6", "joint_2", "joint_5", "joint_4"]
    positions = [9.0, 0.3, 0.1, 0.6, 0.2, 0.5, 0.4]
    np.testing.assert_allclose(joint_positions_by_name(names, positions),
                               [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])


@pytest.mark.parametrize("names, positions, needle", [
    ([f"other_{i}" for i in range(100)], [0.0] * 100, "lacks joint_1"),
    ([], [0.1] * 6, "0 joint names but 6 positions"),
    (list(JOINT_NAMES[:5]), [0.0] * 5, "lacks joint_6"),
    (list(JOINT_NAMES) + ["joint_1"], [0.0] * 7, "named twice"),
    (list(JOINT_NAMES), [0.0] * 5, "6 joint names but 5 positions"),
    (list(JOINT_NAMES), [0.0, 0.0, float("nan"), 0.0, 0.0, 0.0], "NaN"),
])
def test_joint_state_without_the_configured_names_is_refused(names, positions, needle):
    with pytest.raises(ValueError, match=needle):
        joint_positions_by_name(names, positions)


def test_configured_joint_names_are_validated():
    assert check_joint_names(list(JOINT_NAMES)) == JOINT_NAMES
    for bad in (["a"] * 6, ["a", "b"], ["a", "b", "c", "d", "e", ""]):
        with pytest.raises(ValueError, match="6 distinct"):
            check_joint_names(bad)


def test_robot_state_input_refuses_and_forgets_on_bad_joints_or_future_stamps():
    robot = RobotStateInput(max_future=0.2)
    quat = [0.0, 0.0, 0.0, 1.0]
    assert robot.joints(list(JOINT_NAMES), [0.1] * 6, T0 - 10 * MS, T0) == ""
    update = robot.pose([0.4, 0.0, 0.3], quat, T0 - 5 * MS, T0)
    assert update.reason == "" and update.stamp_ns == T0 - 10 * MS
    np.testing.assert_allclose(update.state[:6], [0.1] * 6)
    assert "in the future" in robot.pose([0.4, 0.0, 0.3], quat, T0 + HOUR, T0).reason
    assert "lacks" in robot.joints([f"other_{i}" for i in range(100)], [0.0] * 100, T0, T0)
    # the joints from before the bad message are forgotten: a pose completes no state
    assert robot.pose([0.4, 0.0, 0.3], quat, T0, T0).state is None
    assert "joint state stamped" in robot.joints(list(JOINT_NAMES), [0.1] * 6, T0 + HOUR, T0)


# --- repeated refusals -------------------------------------------------------------------------
def test_levels_are_the_report_levels():
    from asyncvla_common import report

    assert (OK, WARN, ERROR) == (report.OK, report.WARN, report.ERROR) == (0, 1, 2)


def test_refusals_turn_warn_then_error_while_they_continue_then_recover():
    t = RejectionTracker("vl_features", window=5.0, error_after=2.0, min_error_count=5)
    for i in range(50):  # 10 Hz of good messages
        t.accepted(i * 0.1)
    assert t.status(5.0).level == OK
    t.refused(5.0, "from model 'x'")
    first = t.status(5.0)
    assert first.level == WARN and "from model 'x'" in first.message and first.refused == 1
    for k in range(1, 25):  # one bad message per second among good ones, for 24 s
        t.accepted(5.0 + k - 0.5)
        t.refused(5.0 + k, "from model 'x'")
        level = t.status(5.0 + k).level
        assert level == (WARN if k < 2 else ERROR), k
    assert t.status(29.0 + 5.0).level == ERROR  # the last refusal is within the window
    assert t.status(29.0 + 5.1).level == OK  # recovers by itself
    assert t.total_refused == 25


def test_a_burst_of_mostly_refused_messages_is_an_error_at_once():
    t = RejectionTracker("sensor", window=5.0, error_after=2.0, min_error_count=5)
    for i in range(6):
        t.refused(i * 0.01, "batch of 3 samples with 2 stamps")
    assert t.status(0.06).level == ERROR
    quiet = RejectionTracker("sensor", min_error_count=5)
    for i in range(100):
        quiet.accepted(i * 0.01)
    for i in range(4):
        quiet.refused(1.0 + i * 0.01, "x")
    assert quiet.status(1.05).level == WARN  # a few among many, not yet for long


def test_rejection_set_worst_and_notes():
    rs = RejectionSet(("vl_features", "sensor"), window=5.0)
    assert rs.worst(0.0) is None and rs.notes(0.0) == {}
    rs["sensor"].refused(1.0, "50 of 50 samples dropped: 50 stamped in the future")
    assert rs.worst(1.0).message.startswith("sensor: 1 of 1 refused")
    assert rs.notes(1.0) == {"sensor": "50 of 50 samples dropped: 50 stamped in the future"}
    assert rs.notes(6.5) == {} and rs.worst(6.5) is None


# --- a second publisher ------------------------------------------------------------------------
def test_vl_lock_takes_the_first_node_and_refuses_while_another_publishes():
    from asyncvla_common.publisher_lock import PublisherLock

    lock = PublisherLock("/asyncvla/vl_features")
    assert lock.check([], 1, 0).allowed  # the first writer, not named in the graph yet
    assert lock.locked is None
    assert lock.check(["/asyncvla_vlm_node"], 1, 0).allowed and lock.locked == "/asyncvla_vlm_node"
    rogue = lock.check(["/asyncvla_vlm_node", "/rogue"], 2, 0)
    assert not rogue.allowed and rogue.level == ERROR
    assert "/asyncvla/vl_features" in rogue.message and "/rogue" in rogue.message
    unnamed = lock.check(["/asyncvla_vlm_node"], 2, 0)  # a writer the graph cannot name yet
    assert not unnamed.allowed and "not yet named" in unnamed.message
    assert lock.refused == 2
    assert lock.check(["/asyncvla_vlm_node"], 1, 0).allowed  # the rogue left: by itself
    # A restarted VLM (same node name) while DDS still lists the killed one: taken, WARN.
    restart = lock.check(["/asyncvla_vlm_node", "/asyncvla_vlm_node"], 2, 0)
    assert restart.allowed and restart.level == WARN
    # The locked node is gone and another publishes: refused until the operator re-locks.
    assert not lock.check(["/other_vlm"], 1, 0).allowed
    lock.pin("/other_vlm")
    assert lock.check(["/other_vlm"], 1, 0).allowed
    lock.pin("")
    assert lock.check(["/third"], 1, 0).allowed and lock.locked == "/third"


def test_vl_lock_with_two_publishers_from_the_start_refuses_until_pinned():
    from asyncvla_common.publisher_lock import PublisherLock

    lock = PublisherLock("/vl")
    first = lock.check(["/a", "/b"], 2, 0)
    assert not first.allowed and "none locked" in first.message and lock.locked is None
    assert PublisherLock("/vl", pinned="/b").check(["/a", "/b"], 2, 0).allowed is False
    assert PublisherLock("/vl", pinned="/b").check(["/b"], 1, 0).allowed


def test_control_topics_report_a_second_node_and_refuse_go_messages():
    from asyncvla_common.publisher_lock import PublisherLock

    lock = PublisherLock("/asyncvla/enable", lock_identity=False)
    assert lock.check(["/_ros2cli_1"], 1, 0).allowed
    assert lock.check(["/_ros2cli_2"], 1, 0).allowed  # a new shell is not a second publisher
    assert lock.check(["/panel", "/panel"], 2, 0).allowed  # one node, two writers
    two = lock.check(["/panel", "/rogue"], 2, 0)
    assert not two.allowed and two.level == ERROR and "/rogue" in two.message
    assert not lock.check(["/panel"], 2, 0).allowed  # plus one unnamed writer


def test_operator_inputs_obey_every_stop_and_refuse_a_go_while_two_nodes_publish():
    """One rule for the action node, the executor and the Meca500 driver."""
    from asyncvla_common.operator_inputs import OperatorInputs, resumes
    from asyncvla_common.report import Report

    ops = OperatorInputs({"enable": "/e", "estop": "/s"})
    one = {"publishers": ["/panel"], "matched": 1, "now_ns": 0}
    two = {"publishers": ["/panel", "/intruder"], "matched": 2, "now_ns": 0}
    assert resumes("enable", True) and resumes("estop", False)
    assert not resumes("enable", False) and not resumes("estop", True)
    with pytest.raises(ValueError):
        resumes("other", True)
    for name, stop in (("enable", False), ("estop", True)):
        assert ops.admit(name, stop, two).allowed  # a stop from anyone
        refused = ops.admit(name, not stop, two)
        assert not refused.allowed and refused.level == ERROR
        assert "/intruder" in refused.message and ops.locks[name].topic in refused.message
        assert ops.admit(name, not stop, one).allowed  # the intruder left
    assert ops.refused("enable") == 1 and ops.refused("estop") == 1
    report = ops.report(Report(OK, "enabled", {}), {"enable": one, "estop": two})
    assert report.level == ERROR and "/intruder" in report.message
    assert ops.report(Report(OK, "enabled", {}), {"enable": one, "estop": one}).level == OK


def test_vl_lock_graph_lag_at_both_edges_is_closed_by_the_sample_info():
    from asyncvla_common.publisher_lock import PublisherLock

    lock = PublisherLock("/vl")
    vlm = ["/asyncvla_vlm_node"]
    assert lock.check(vlm, 1, 1000, source_ns=990, sequence=40).allowed
    assert lock.check(vlm, 1, 2000, source_ns=1990, sequence=45).allowed  # depth 1 skips some
    # A rogue's first sample before the graph shows it: same writers, sequence went back.
    early = lock.check(vlm, 1, 2100, source_ns=2090, sequence=1)
    assert not early.allowed and "does not show yet" in early.message
    assert not lock.check(vlm + ["/rogue"], 2, 2200, source_ns=2190, sequence=2).allowed
    # The rogue is seen gone at 3000; its last sample (published at 2500) is still queued.
    late = lock.check(vlm, 1, 3000, source_ns=2500, sequence=30)
    assert not late.allowed and "published while another publisher" in late.message
    assert lock.check(vlm, 1, 3100, source_ns=3050, sequence=46).allowed


def test_vl_lock_restarted_writer_after_the_old_one_expired_is_taken_at_once():
    """kill -9 of the VLM, its entry expires, a new VLM with the same name joins: its sequence
    numbers start at 1 again, and the writer ids tell that it is a new writer."""
    from asyncvla_common.publisher_lock import PublisherLock

    lock = PublisherLock("/vl")
    vlm = ["/asyncvla_vlm_node"]
    assert lock.check(vlm, 1, 1000, source_ns=990, sequence=300, writer_ids=(b"old",)).allowed
    lock.evaluate([], 0, 30_000, writer_ids=())  # the diagnostics timer saw it gone
    assert lock.check(vlm, 1, 40_000, source_ns=39_990, sequence=1,
                      writer_ids=(b"new",)).allowed
    # Even when no evaluation saw the gap, the new writer id resets the sequence.
    lock2 = PublisherLock("/vl")
    assert lock2.check(vlm, 1, 1000, sequence=300, writer_ids=(b"old",)).allowed
    assert lock2.check(vlm, 1, 40_000, sequence=1, writer_ids=(b"new",)).allowed
    # Same writer id, sequence back: a writer the graph does not show yet.
    assert not lock2.check(vlm, 1, 40_100, sequence=1, writer_ids=(b"new",)).allowed


def test_vl_lock_is_never_taken_on_a_writer_the_graph_cannot_name_yet():
    """Seen in a benchmark: the VL writer was discovered before its participant's node list,
    so the graph named it "_NODE_NAMESPACE_UNKNOWN_/_NODE_NAME_UNKNOWN_"; a lock taken on that
    refused the real node, once named, as another publisher until an operator re-locked."""
    from types import SimpleNamespace

    from asyncvla_common.publisher_lock import PublisherLock
    from asyncvla_common.safety_ros import (UNKNOWN_NODE_NAME, UNKNOWN_NODE_NAMESPACE,
                                            publishers_on)

    def info(namespace, name, gid):
        return SimpleNamespace(node_namespace=namespace, node_name=name, endpoint_gid=gid)

    class Graph:  # what rclpy's Node and Subscription answer (the part publishers_on reads)
        topic_name = "/asyncvla/vl_features"
        infos: list = []

        def get_publishers_info_by_topic(self, topic):
            assert topic == self.topic_name
            return self.infos

        def get_publisher_count(self):
            return len(self.infos)

        def get_clock(self):
            return SimpleNamespace(now=lambda: SimpleNamespace(nanoseconds=5))

    graph = Graph()
    graph.infos = [info(UNKNOWN_NODE_NAMESPACE, UNKNOWN_NODE_NAME, [1, 2])]
    early = publishers_on(graph, graph)
    assert early["publishers"] == [] and early["matched"] == 1
    assert early["writer_ids"] == (bytes([1, 2]),)  # still the same writer for the sequence rule
    lock = PublisherLock("/asyncvla/vl_features")
    assert lock.check(**early, sequence=1).allowed and lock.locked is None
    graph.infos = [info("/", "asyncvla_vlm_node", [1, 2])]  # the node list arrives
    named = publishers_on(graph, graph)
    assert lock.check(**named, sequence=2).allowed and lock.locked == "/asyncvla_vlm_node"
    # A second writer not named yet while locked: refused, not taken for the locked node.
    graph.infos.append(info(UNKNOWN_NODE_NAMESPACE, UNKNOWN_NODE_NAME, [3]))
    verdict = lock.check(**publishers_on(graph, graph), sequence=3)
    assert not verdict.allowed and "not yet named" in verdict.message
