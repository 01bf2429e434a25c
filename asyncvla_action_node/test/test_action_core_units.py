"""ROS-free cores of the action node: sensor window, VL store, chunk blending, the tick."""
from __future__ import annotations

import numpy as np
import pytest

from asyncvla_action_node.action_core import ActionCore, ActionCoreConfig
from asyncvla_action_node.sensor_window import SensorWindow
from asyncvla_action_node.vl_store import VLFeatureStore
from asyncvla_core.chunk import Chunk
from asyncvla_core.chunk_blending import ChunkBlender
from asyncvla_core.conventions import robot_state_vector

MS = 1_000_000
PERIOD_NS = int(1e9 / 650)


def fill(window: SensorWindow, start_ns: int, n: int, value: float = 0.5) -> int:
    stamps = start_ns + PERIOD_NS * np.arange(n)
    window.add_batch(stamps, np.full(n, value), np.full((n, window.aline_length), value),
                     now_ns=int(stamps[-1]))
    return int(stamps[-1])


class TestSensorWindow:
    def test_window_is_newest_samples_at_or_before_end(self):
        w = SensorWindow(5, 3, max_gap=0.01)
        stamps = 1000 * MS + PERIOD_NS * np.arange(10)
        w.add_batch(stamps, np.arange(10.0), np.tile(np.arange(10.0)[:, None], (1, 3)),
                    now_ns=int(stamps[-1]))
        res = w.window(int(stamps[7]), max_age=0.05)
        assert res.reason == "" and res.newest_stamp_ns == stamps[7]
        assert res.window[:, 0].tolist() == [3, 4, 5, 6, 7]
        assert res.window.shape == (5, 4)

    def test_refuses_too_few_stale_and_gappy(self):
        w = SensorWindow(5, 3, max_gap=0.01)
        last = fill(w, 0, 3)
        assert "3/5" in w.window(last, 0.05).reason
        last = fill(w, last + PERIOD_NS, 5)
        assert "old" in w.window(last + 100 * MS, 0.05).reason
        fill(w, last + 50 * MS, 5)  # a 50 ms hole inside the next window
        assert "gap" in w.window(last + 50 * MS + 2 * PERIOD_NS, 0.05).reason

    def test_drops_nan_and_out_of_order_samples_with_counts(self):
        w = SensorWindow(3, 2, max_gap=0.01)
        force = np.array([1.0, np.nan, 3.0, 4.0])
        stamps = np.array([10, 20, 30, 25]) * MS
        assert w.add_batch(stamps, force, np.ones((4, 2)), now_ns=40 * MS) == 2
        assert w.dropped["non_finite"] == 1 and w.dropped["out_of_order"] == 1
        assert w.add_batch(np.array([40 * MS]), np.array([1.0]), np.ones((1, 5)), 40 * MS) == 0
        assert w.dropped["bad_shape"] == 1

    def test_clear_forgets_everything(self):
        w = SensorWindow(3, 2, max_gap=0.01)
        last = fill(w, 0, 5)
        w.clear()
        assert w.fill == 0 and w.window(last, 1.0).window is None


class TestVLStore:
    def test_rejects_wrong_model_shape_and_nan(self):
        s = VLFeatureStore(2, 4, expected_model_id="m@1")
        ok = np.ones((2, 4), np.float32)
        assert "model" in s.update(ok, 1, 0, "m@2", 0)
        assert "shape" in s.update(np.ones((3, 4), np.float32), 1, 0, "m@1", 0)
        assert "NaN" in s.update(np.full((2, 4), np.nan, np.float32), 1, 0, "m@1", 0)
        assert s.snapshot(0) is None and sum(s.rejected.values()) == 3
        assert s.update(ok, 1, 100 * MS, "m@1", 100 * MS) == ""
        snap = s.snapshot(400 * MS)
        assert snap.sequence == 1 and snap.age == pytest.approx(0.3)

    def test_reuse_counts_restart_with_new_features(self):
        s = VLFeatureStore(1, 2)
        s.update(np.ones((1, 2), np.float32), 1, 0, "m", 0)
        s.mark_used(1)
        s.mark_used(1)
        assert s.snapshot(0).reuse_count == 2
        s.update(np.ones((1, 2), np.float32), 2, 10, "m", 10)
        assert s.snapshot(10).reuse_count == 0
        s.mark_used(1)  # late mark for old features does not count against the new ones
        assert s.snapshot(10).reuse_count == 0


def chunk(stamp_ms: float, value: float, reference=None, horizon: int = 4) -> Chunk:
    ref = np.zeros(6) if reference is None else np.asarray(reference, float)
    return Chunk(int(stamp_ms * MS), 0.1, ref, np.full((horizon, 7), value, np.float32))


class TestChunkBlending:
    def test_latest_only_passes_through(self):
        b = ChunkBlender("latest_only")
        b.blend(chunk(0, 1.0))
        assert np.all(b.blend(chunk(100, 2.0)).actions == 2.0)

    def test_weighted_blend_on_overlap_only(self):
        b = ChunkBlender("weighted_blend", old_weight=0.3)
        b.blend(chunk(0, 1.0))  # covers 100..400 ms
        out = b.blend(chunk(100, 2.0))  # steps at 200..500 ms; 200..400 overlap
        np.testing.assert_allclose(out.actions[:3], 0.3 * 1.0 + 0.7 * 2.0, rtol=1e-6)
        np.testing.assert_allclose(out.actions[3], 2.0)

    def test_reference_shift_is_compensated(self):
        # The same absolute target expressed from a reference moved by +0.5 must blend to itself.
        b = ChunkBlender("weighted_blend", old_weight=0.5)
        b.blend(chunk(0, 1.0, reference=np.zeros(6)))
        new = chunk(100, 0.5, reference=np.full(6, 0.5))
        new.actions[:, 6] = 1.0  # tool dim is not an offset
        out = b.blend(new)
        np.testing.assert_allclose(out.actions[:3, :6], 0.5, rtol=1e-6)
        np.testing.assert_allclose(out.actions[:, 6], 1.0)

    def test_temporal_ensemble_weights_oldest_most(self):
        b = ChunkBlender("temporal_ensemble", ensemble_decay=1.0)
        b.blend(chunk(0, 0.0))
        out = b.blend(chunk(100, 1.0))
        w_old, w_new = 1.0, np.exp(-1.0)
        np.testing.assert_allclose(out.actions[0], w_new / (w_old + w_new), rtol=1e-5)
        np.testing.assert_allclose(out.actions[3], 1.0)

    def test_reset_and_bad_mode(self):
        b = ChunkBlender("weighted_blend")
        b.blend(chunk(0, 1.0))
        b.reset()
        assert np.all(b.blend(chunk(100, 2.0)).actions == 2.0)
        with pytest.raises(ValueError):
            ChunkBlender("average")


def make_core(predict, max_vl_age=1.0):
    store = VLFeatureStore(2, 4)
    window = SensorWindow(5, 3, max_gap=0.01)
    core = ActionCore(predict, store, window, ActionCoreConfig(max_vl_age=max_vl_age, horizon=4),
                      ChunkBlender())
    return core, store, window


STATE = robot_state_vector(np.zeros(6), [0.4, 0.0, 0.3], [0, 0, 0, 1])


class TestActionCore:
    def ready(self, predict, max_vl_age=1.0):
        core, store, window = make_core(predict, max_vl_age)
        now = fill(window, 0, 10)
        store.update(np.ones((2, 4), np.float32), 7, now - 200 * MS, "m", now)
        core.set_robot_state(STATE, now - 5 * MS)
        return core, store, now

    def test_publishes_with_age_and_reuse(self):
        core, store, now = self.ready(lambda v, s, r, a: np.zeros((4, 7)))
        first, second = core.tick(now), core.tick(now)
        assert first.category == "ok" and first.vl.age == pytest.approx(0.2)
        assert (first.vl.sequence, first.vl.reuse_count, second.vl.reuse_count) == (7, 0, 1)
        np.testing.assert_allclose(first.chunk.reference[:3], [0.4, 0.0, 0.3], rtol=1e-6)

    def test_the_expert_gets_the_age_the_chunk_states(self):
        """The age the expert acts on is the one checked against max_vl_age and stamped on the
        ActionChunk (vl_age): tick time minus the newest frame's stamp, in seconds."""
        ages = []
        core, store, now = self.ready(lambda v, s, r, a: (ages.append(a), np.zeros((4, 7)))[1])
        first = core.tick(now)
        later = core.tick(now + 50 * MS)  # no new features: the same ones, 50 ms older
        assert ages == pytest.approx([0.2, 0.25])
        assert (first.vl.age, later.vl.age) == pytest.approx((0.2, 0.25))

    def test_stale_features_publish_nothing(self):
        core, _, now = self.ready(lambda v, s, r, a: np.zeros((4, 7)), max_vl_age=0.1)
        out = core.tick(now)
        assert out.chunk is None and out.category == "vl_stale" and "200 ms" in out.reason

    @pytest.mark.parametrize("bad, category", [
        (lambda v, s, r, a: np.full((4, 7), np.nan), "policy_output"),
        (lambda v, s, r, a: np.zeros((3, 7)), "policy_output"),
        (lambda v, s, r, a: 1 / 0, "policy_error"),
    ])
    def test_bad_policy_output_is_withheld(self, bad, category):
        core, _, now = self.ready(bad)
        out = core.tick(now)
        assert out.chunk is None and out.category == category

    def test_missing_inputs_are_named(self):
        core, store, window = make_core(lambda v, s, r, a: np.zeros((4, 7)))
        assert core.tick(0).category == "vl_missing"
        store.update(np.ones((2, 4), np.float32), 1, 0, "m", 0)
        assert core.tick(10 * MS).category == "sensor"
        now = fill(window, 0, 10)
        assert core.tick(now).category == "robot_state"
        core.set_robot_state(STATE, now - 500 * MS)
        assert "old" in core.tick(now).reason
