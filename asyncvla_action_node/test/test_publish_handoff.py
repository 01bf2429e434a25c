"""The publisher-process hand-off without ROS: frames, the child's rules, its loop over a real
socket pair, and the tick thread's lead.

The rules are those the single lock guaranteed in one process: a chunk goes out only for the
deadline it was prepared for (never bursted late beside the next), a hold cancels what is pending
and is published in order, and the child stops when the node's end of the socket closes.
"""
from __future__ import annotations

import socket
import threading
import time

import pytest

from asyncvla_action_node.publish_handoff import (HOLD, OFFER, FrameError, HandoffCounts,
                                                  PublishSchedule, decode, dropped_total,
                                                  encode, publisher_report)
from asyncvla_action_node.publisher_process import serve
from asyncvla_action_node.tick_timing import TimingThread
from asyncvla_common.report import ERROR, OK, WARN

MS = 1_000_000


def test_frames_round_trip_and_refuse_what_is_not_a_frame():
    payloads = [(0, b"chunk bytes"), (1, b"")]
    assert decode(encode(OFFER, 123 * MS, payloads)) == (OFFER, 123 * MS, payloads)
    frame = encode(OFFER, 5, payloads)
    for bad in (frame[:5], frame[:-1], frame + b"x"):
        with pytest.raises(FrameError):
            decode(bad)


def test_schedule_publishes_an_offer_at_its_deadline_and_drops_it_when_too_late():
    schedule = PublishSchedule(max_late_ns=5 * MS, outlet_count=2)
    assert schedule.receive(encode(OFFER, 100 * MS, [(0, b"a")])) == []
    assert schedule.wait_ns(90 * MS) == 10 * MS - 1_500_000  # socket wait, then precise sleep
    assert schedule.due(99 * MS) == []  # not yet
    assert schedule.due(101 * MS) == [(0, b"a")]
    assert schedule.due(102 * MS) == []  # once only
    schedule.receive(encode(OFFER, 110 * MS, [(0, b"b")]))
    assert schedule.due(116 * MS) == []  # 6 ms late > 5 ms: dropped, not published beside the next
    assert schedule.wait_ns(116 * MS) is None
    stats = schedule.stats()
    assert stats["published"] == 1 and stats["late_dropped"] == 1
    assert stats["publish_late_ms_p99"] == pytest.approx(1.0)


def test_schedule_keeps_one_offer_and_a_hold_cancels_it():
    schedule = PublishSchedule(max_late_ns=5 * MS, outlet_count=2)
    schedule.receive(encode(OFFER, 100 * MS, [(0, b"old")]))
    schedule.receive(encode(OFFER, 110 * MS, [(0, b"new")]))  # one chunk per deadline
    assert schedule.counts["superseded"] == 1 and schedule.pending_deadline_ns == 110 * MS
    assert schedule.receive(encode(HOLD, 0, [(1, b"hold")])) == [(1, b"hold")]  # at once
    assert schedule.due(111 * MS) == []  # the offer prepared before the hold never goes out
    assert schedule.counts["cancelled"] == 1 and schedule.counts["holds"] == 1
    assert schedule.receive(encode(HOLD, 0, [])) == []  # a bare cancel with nothing pending
    assert schedule.counts["cancelled"] == 1


def test_schedule_counts_frames_it_cannot_use():
    schedule = PublishSchedule(max_late_ns=5 * MS, outlet_count=1)
    assert schedule.receive(b"\x01garbage") == []
    assert schedule.receive(encode(OFFER, 1, [(3, b"x")])) == []  # a topic it has no publisher for
    assert schedule.receive(encode(99, 1, [])) == []
    assert schedule.counts["bad_frames"] == 3 and schedule.pending_deadline_ns is None


def test_publisher_report_is_error_when_the_child_is_gone_and_warns_on_drops():
    counts = HandoffCounts(sent=10, child={"published": 9, "late_dropped": 1})
    assert publisher_report(counts, alive=False, exit_note="with code -9").level == ERROR
    assert publisher_report(counts, alive=True, dropped_before=0).level == WARN
    assert publisher_report(counts, alive=True, dropped_before=dropped_total(counts)).level == OK
    counts.send_failed = 2
    assert dropped_total(counts) == 3


def run_child(schedule: PublishSchedule):
    """serve() on one end of a real SOCK_SEQPACKET pair, in a thread; the test is the node."""
    node_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    published: list[tuple[int, int, bytes]] = []
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(serve(
        child_end, schedule, lambda i, data: published.append((time.monotonic_ns(), i, data)))),
        daemon=True)
    thread.start()
    return node_end, published, result, thread


def test_child_loop_publishes_at_each_deadline_and_a_hold_cancels_the_pending_one():
    schedule = PublishSchedule(max_late_ns=10 * MS, outlet_count=2)
    node_end, published, result, thread = run_child(schedule)
    start = time.monotonic_ns() + 30 * MS
    deadlines = [start + k * 20 * MS for k in range(5)]
    for k, deadline in enumerate(deadlines):
        while time.monotonic_ns() < deadline - 5 * MS:  # prepared 5 ms ahead, like the node
            time.sleep(0.001)
        node_end.send(encode(OFFER, deadline, [(0, bytes([k]))]))
    time.sleep(0.03)
    cancelled = time.monotonic_ns() + 200 * MS
    node_end.send(encode(OFFER, cancelled, [(0, b"prepared before the e-stop")]))
    node_end.send(encode(HOLD, 0, [(1, b"hold")]))
    time.sleep(0.25)
    node_end.close()  # the node is gone
    thread.join(2.0)
    assert result == ["parent closed its end"]
    chunks = [(t, data) for t, i, data in published if i == 0]
    assert [data for _, data in chunks] == [bytes([k]) for k in range(5)]
    for (t, _), deadline in zip(chunks, deadlines):
        assert deadline <= t < deadline + 10 * MS  # never early, never past max_late
    assert published[-1][1:] == (1, b"hold")  # the hold went out; the cancelled offer never did
    assert schedule.counts["cancelled"] == 1 and schedule.counts["published"] == 5


def test_child_loop_drops_an_offer_that_arrives_after_its_deadline():
    schedule = PublishSchedule(max_late_ns=2 * MS, outlet_count=1)
    node_end, published, result, thread = run_child(schedule)
    node_end.send(encode(OFFER, time.monotonic_ns() - 50 * MS, [(0, b"late")]))
    time.sleep(0.05)
    node_end.close()
    thread.join(2.0)
    assert published == [] and schedule.counts["late_dropped"] == 1


def test_timing_thread_with_a_lead_wakes_ahead_of_each_deadline():
    calls: list[tuple[int, int]] = []
    ticker = TimingThread(0.02, lambda tick: calls.append((time.monotonic_ns(), tick.deadline_ns)),
                          lambda exc: calls.append((0, 0)), lead_s=0.005)
    ticker.start()
    time.sleep(0.25)
    ticker.stop()
    assert len(calls) >= 8
    ahead_ms = sorted((deadline - t) / 1e6 for t, deadline in calls)
    assert ahead_ms[len(ahead_ms) // 2] > 2.0  # typically ~5 ms before the deadline
    assert all(a <= 5.0 for a in ahead_ms)  # never before the lead
    with pytest.raises(ValueError):
        TimingThread(0.01, lambda tick: None, lambda exc: None, lead_s=0.01)


def test_a_child_that_cannot_start_is_a_clear_error_and_leaves_nothing_running():
    """A message type the child cannot import: it exits with one line, and the node's handle
    raises at once instead of waiting (the node then stops with that message)."""
    pytest.importorskip("rclpy")
    from asyncvla_action_node.publisher_process import PublisherProcess

    process = PublisherProcess([("no_such_pkg/msg/Nothing", "/asyncvla/test_nothing")],
                               "test_node", "/", "COMMAND", 0, 0.01)
    with pytest.raises(RuntimeError, match="exited with 2 before it was ready"):
        process.wait_ready(60.0)
    assert not process.alive()
