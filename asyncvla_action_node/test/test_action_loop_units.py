"""ActionLoop without ROS: inputs in, the tick's outcome, the gate's holds and the reports out."""
from __future__ import annotations

import numpy as np
import pytest

from asyncvla_action_node.action_loop import ActionLoop, PolicyShape
from asyncvla_action_node.action_config import ActionNodeConfig
from asyncvla_action_node.refusals import Refusal
from asyncvla_common.param_spec import with_values
from asyncvla_common.report import ERROR, OK
from asyncvla_core.conventions import JOINT_NAMES
from asyncvla_core.vl_payload import encode_features

MS = 1_000_000
SHAPE = PolicyShape(vl_num_tokens=2, vl_dim=4, sensor_window=8, aline_length=3, horizon=4,
                    action_dim=7, action_space="ee_delta", step_period=0.1, vl_model_id="m")
GRAPH = {"publishers": ["/vlm"], "writer_ids": (b"1",), "matched": 1, "now_ns": 0}


class Recorder:
    def __init__(self):
        self.logs, self.holds, self.reports = [], 0, []

    def log(self, level, text):
        self.logs.append((level, text))

    def hold(self):
        self.holds += 1

    def report_now(self, status, level):
        self.reports.append((status, level))


@pytest.fixture
def loop():
    cfg = with_values(ActionNodeConfig(), {"safety.enabled_at_start": False,
                                           "freshness.robot_state_max_age": 1.0,
                                           "freshness.sensor_max_age": 1.0})
    rec = Recorder()
    lp = ActionLoop(cfg, SHAPE, lambda vl, window, state, age: np.zeros((4, 7), np.float32),
                    rec.log, rec.hold, rec.report_now)
    lp.recorder = rec
    return lp


def feed(loop, now_ns):
    data, code = encode_features(np.ones((2, 4), np.float32))
    assert loop.vl_arrival(len(data), GRAPH, None, None)
    assert loop.vl_features(data, 2, 4, code, 1, now_ns - 50 * MS, "m", now_ns)
    stamps = [now_ns - (8 - i) * MS for i in range(8)]
    assert loop.sensor_batch(8, stamps, [0.0] * 8, [0.0] * 24, 3, now_ns)
    assert loop.joints(list(JOINT_NAMES), [0.0] * 6, now_ns - MS, now_ns)
    assert loop.pose([0.3, 0.0, 0.2], [1.0, 0.0, 0.0, 0.0], now_ns - MS, now_ns)


def test_starts_disabled_acts_once_enabled_and_holds_on_estop(loop):
    now = 10_000 * MS
    feed(loop, now)
    first = loop.tick(now)
    assert first.chunk is None and first.category is Refusal.DISABLED
    assert loop.output_report().level < ERROR  # disabled is a WARN, not an error
    loop.control("enable", True, GRAPH)
    out = loop.tick(now + MS)
    assert out.category is Refusal.OK and out.chunk.actions.shape == (4, 7)
    assert loop.sequence == 1 and loop.output_report().level == OK
    loop.control("estop", True, GRAPH)
    assert loop.recorder.holds == 1 and ("safety", ERROR) in loop.recorder.reports
    stopped = loop.tick(now + 2 * MS)
    assert stopped.chunk is None and stopped.category is Refusal.ESTOP
    assert loop.output_report().level == ERROR
    # A release does not re-enable; a resume from a topic with two nodes is refused.
    loop.control("estop", False, GRAPH)
    assert loop.tick(now + 3 * MS).category is Refusal.DISABLED
    two = dict(GRAPH, publishers=["/op", "/rogue"], writer_ids=(b"1", b"2"), matched=2)
    loop.control("enable", True, two)
    assert loop.counters.get("refused_enable") == 1
    assert loop.tick(now + 4 * MS).category is Refusal.DISABLED


def test_vl_report_uses_the_ticks_rule(loop):
    now = 10_000 * MS
    assert loop.vl_report(now, GRAPH).level == ERROR  # no features yet
    feed(loop, now)
    assert loop.vl_report(now, GRAPH).level == OK
    stale = loop.vl_report(now + 5_000 * MS, GRAPH)
    assert stale.level == ERROR and "max_vl_age" in stale.message


def test_refused_inputs_are_counted_and_named(loop):
    now = 10_000 * MS
    assert not loop.joints(["other_1"] * 6, [0.0] * 6, now, now)
    assert loop.counters.get("refused_joint_states") == 1
    assert "joint_states refused" in loop.recorder.logs[-1][1]
    assert not loop.vl_features(b"\x00" * 3, 2, 4, 1, 1, now, "m", now)
    assert loop.counters.get("vl_rejected_payload") == 1


def test_every_refusal_has_a_severity():
    assert {r.level for r in Refusal} <= {0, 1, 2}
    assert Refusal.VL_STALE == "vl_stale" and Refusal.VL_STALE.level == ERROR
    assert Refusal.DISABLED.level < ERROR and Refusal.OK.level == OK
