"""Alignment of real synthetic bags to the action clock, checked against the analytic motion."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

# Run from a plain checkout: put the package dir first; pytest's importlib mode may have registered
# the ROS package *directory* as a namespace package "asyncvla_training" - drop it for the real one.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
if getattr(sys.modules.get("asyncvla_training"), "__file__", "") is None:
    del sys.modules["asyncvla_training"]

from asyncvla_core.conventions import reference_components, robot_state_vector  # noqa: E402
from asyncvla_core.rotations import (  # noqa: E402
    matrix_to_rotvec,
    quat_slerp,
    quat_to_rotvec,
    quaternion_to_matrix,
    rotvec_to_matrix,
)
from asyncvla_testing.synthetic_bag import (  # noqa: E402
    SyntheticBagSpec,
    synthetic_jpeg,
    write_synthetic_bag,
)
from asyncvla_training.data import (  # noqa: E402
    AlignmentConfig,
    BagDatasetConfig,
    SensorWindows,
    load_bag,
)
from asyncvla_training.data.windows import decode_image  # noqa: E402

DT = 100_000_000
H, T = 8, 65


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory):
    bag = write_synthetic_bag(tmp_path_factory.mktemp("align") / "rec", "mcap",
                              SyntheticBagSpec(duration=2.5))
    return bag


def _newest(stamps: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.searchsorted(stamps, t, side="right") - 1


def test_action_times_cover_full_inputs_to_last_full_chunk(recording) -> None:
    (episode,), report = load_bag(recording.path)
    times = episode.times_ns
    first = max(int(recording.sensor_stamps_ns[T - 1]),
                *(int(s[0]) for s in recording.frame_stamps_ns.values()),
                int(recording.robot_stamps_ns[0]))
    assert times[0] == first
    assert np.all(np.diff(times) == DT)
    assert times[-1] + H * DT <= recording.robot_stamps_ns[-1] < times[-1] + (H + 1) * DT
    assert report.action_times == report.samples == len(episode) and report.skipped == {}
    assert episode.name == "rec" and episode.views == ("view1", "view2") and episode.step_period == 0.1
    assert episode.states.dtype == np.float32 and episode.actions.dtype == np.float32
    assert episode.actions.shape == (len(episode), H, 7)
    assert episode.sensor_windows.shape == (len(episode), T, 1026)


def test_state_is_newest_message_at_or_before_t(recording) -> None:
    (episode,), _ = load_bag(recording.path)
    idx = _newest(recording.robot_stamps_ns, episode.times_ns)
    t_ref = recording.seconds(recording.robot_stamps_ns[idx])
    m = recording.motion
    for i in range(len(episode)):
        expected = robot_state_vector(m.joints(t_ref[i]), m.position(t_ref[i]), m.quaternion(t_ref[i]))
        np.testing.assert_array_equal(episode.states[i], expected)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_ee_delta_targets_equal_analytic_offsets(tmp_path: Path, storage: str) -> None:
    bag = write_synthetic_bag(tmp_path / "ee", storage, SyntheticBagSpec(duration=2.0))
    (episode,), _ = load_bag(bag.path)
    m = bag.motion
    t_ref = bag.seconds(bag.robot_stamps_ns[_newest(bag.robot_stamps_ns, episode.times_ns)])
    tau = bag.seconds(episode.times_ns[:, None] + DT * np.arange(1, H + 1))
    # Reference = the float32 state (as the action node re-references at run time).
    ref_pos = episode.states[:, 6:9].astype(np.float64)
    np.testing.assert_allclose(episode.actions[..., :3], m.position(tau) - ref_pos[:, None], atol=2e-6)
    np.testing.assert_allclose(episode.actions[..., 3:6], m.rotation_offset(t_ref[:, None], tau), atol=2e-5)
    assert np.all(episode.actions[..., 6] == 1.0)
    # The motion really moves: the offsets grow along the chunk.
    reach = np.abs(episode.actions[..., :3]).max(axis=2)
    assert np.all(reach[:, -1] > reach[:, 0])
    # Reconstruction the run-time way: reference (+) offset gives the recorded target pose.
    i, j = len(episode) // 2, H - 1
    ref = reference_components(episode.states[i], "ee_delta")
    target_rot = rotvec_to_matrix(episode.actions[i, j, 3:6]) @ rotvec_to_matrix(ref[3:])
    expected_rot = rotvec_to_matrix(quat_to_rotvec(m.quaternion(tau[i, j])))
    np.testing.assert_allclose(matrix_to_rotvec(target_rot @ expected_rot.T), 0.0, atol=2e-5)


def test_joint_delta_targets(tmp_path: Path) -> None:
    bag = write_synthetic_bag(tmp_path / "jd", "sqlite3", SyntheticBagSpec(duration=2.0))
    config = BagDatasetConfig(
        alignment=AlignmentConfig(action_space="joint_delta", horizon=4, tool_value=0.5))
    (episode,), _ = load_bag(bag.path, config)
    tau = bag.seconds(episode.times_ns[:, None] + DT * np.arange(1, 5))
    expected = bag.motion.joints(tau) - episode.states[:, None, :6].astype(np.float64)
    assert episode.action_space == "joint_delta" and episode.actions.shape[1:] == (4, 7)
    np.testing.assert_allclose(episode.actions[..., :6], expected, atol=5e-6)
    assert np.all(episode.actions[..., 6] == 0.5)


def test_sensor_windows_are_the_newest_samples(recording) -> None:
    (episode,), _ = load_bag(recording.path)
    windows = episode.sensor_windows
    assert isinstance(windows, SensorWindows)
    ends = np.searchsorted(recording.sensor_stamps_ns, episode.times_ns, side="right")
    for i in range(len(episode)):
        k = recording.sensor_index[ends[i] - T:ends[i]]
        np.testing.assert_array_equal(windows[i], recording.sensor_rows(k))
        assert recording.sensor_stamps_ns[ends[i] - 1] <= episode.times_ns[i]
    # ndarray-like indexing and materialisation agree.
    full = np.asarray(windows)
    assert full.shape == (len(episode), T, 1026)
    np.testing.assert_array_equal(windows[1:3], full[1:3])
    np.testing.assert_array_equal(windows[[0, -1]], full[[0, -1]])
    np.testing.assert_array_equal(windows[2, -1], full[2, -1])
    np.testing.assert_array_equal(windows[:, -1, 1], full[:, -1, 1])
    windows[0][:] = 0  # a copy: the stream is not modified
    assert np.any(windows[0] != 0)


def test_frames_are_newest_per_view_and_decode(recording) -> None:
    (episode,), _ = load_bag(recording.path)
    for k, view in enumerate(episode.views):
        stamps = recording.frame_stamps_ns[view]
        idx = _newest(stamps, episode.times_ns)
        np.testing.assert_array_equal(episode.frame_stamps_ns[:, k], stamps[idx])
        for i in (0, len(episode) - 1):
            expected = decode_image(synthetic_jpeg(k, int(idx[i]), 56, 56))
            np.testing.assert_array_equal(
                episode.load_frames(int(episode.sample_frame_sets[i]))[k], expected)
    first = int(episode.sample_frame_sets[0])
    assert episode.frame_set_key(first) == tuple(int(s) for s in episode.frame_stamps_ns[0])
    # Every set the VLM could have used, in the order they completed: each camera frame (15 FPS,
    # the views a few ms apart) completes one, from before the first action time on.
    ready = np.array([episode.frame_set_ready_ns(s) for s in range(episode.num_frame_sets)])
    assert np.all(np.diff(ready) >= 0) and ready[0] < episode.frame_set_ready_ns(first)
    frames = np.concatenate([recording.frame_stamps_ns[v] for v in episode.views])
    expected_sets = np.unique(frames[(frames >= ready[0]) & (frames <= episode.times_ns[-1])])
    assert episode.num_frame_sets == expected_sets.size, (episode.num_frame_sets, expected_sets.size)
    # And a frame set 300 ms back, with the age the node would compute (>= 300 ms, < 1 frame more).
    s, age = episode.stale_frame_set(len(episode) - 1, 300_000_000)
    assert 300_000_000 <= age < 300_000_000 + 1e9 / 15 + 1
    assert age == episode.times_ns[-1] - episode.frame_set_ready_ns(s)


def test_sensor_hole_splits_the_episode(tmp_path: Path) -> None:
    spec = SyntheticBagSpec(duration=3.0, sensor_holes=((1.2, 1.26),))
    bag = write_synthetic_bag(tmp_path / "holey", "mcap", spec)
    episodes, report = load_bag(bag.path)
    assert [e.name for e in episodes] == ["holey#0", "holey#1"]
    assert report.segments == 2 and report.skipped.get("sensor_gap", 0) >= 1
    assert report.samples + sum(report.skipped.values()) >= report.action_times > report.samples
    hole_start = spec.start_ns + int(1.2e9)
    assert episodes[0].times_ns[-1] < hole_start + T * 1e9 / 650
    for episode in episodes:
        for i in range(len(episode)):  # no window spans the hole: sample indices are consecutive
            assert np.all(np.diff(episode.sensor_windows[i][:, 1]) == 1)
    # The grid stays one clock: the second part continues on multiples of the step period.
    assert (episodes[1].times_ns[0] - episodes[0].times_ns[0]) % DT == 0


def test_stale_frames_are_refused(tmp_path: Path) -> None:
    bag = write_synthetic_bag(tmp_path / "slowcam", "mcap", SyntheticBagSpec(duration=2.5, camera_fps=2.0))
    config = BagDatasetConfig(alignment=AlignmentConfig(max_frame_age=0.3, max_view_skew=None))
    episodes, report = load_bag(bag.path, config)
    assert report.skipped.get("frame_stale", 0) > 0
    for episode in episodes:
        age = episode.times_ns[:, None] - episode.frame_stamps_ns
        assert np.all(age <= 0.3e9)
    relaxed, relaxed_report = load_bag(bag.path, BagDatasetConfig(
        alignment=AlignmentConfig(max_frame_age=None, max_view_skew=None)))
    assert relaxed_report.skipped == {} and len(relaxed) == 1


def test_rotation_vector_and_matrix_paths_agree() -> None:
    """quat_to_rotvec + Rodrigues and the direct quaternion matrix are independent formulas."""
    rng = np.random.default_rng(3)
    q = rng.normal(size=(20, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    rotvecs = quat_to_rotvec(q)
    assert np.all(np.linalg.norm(rotvecs, axis=1) <= np.pi + 1e-12)
    for row, rv in zip(q, rotvecs):
        np.testing.assert_allclose(rotvec_to_matrix(rv), quaternion_to_matrix(row), atol=1e-12)
        np.testing.assert_allclose(quat_to_rotvec(row), rv, atol=1e-12)  # 1-D input too
    a, b = q[:10], q[10:]
    np.testing.assert_allclose(np.abs(np.sum(quat_slerp(a, b, np.zeros(10)) * a, axis=1)), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.abs(np.sum(quat_slerp(a, b, np.ones(10)) * b, axis=1)), 1.0, atol=1e-12)


def test_windows_match_the_runtime_sensor_window(tmp_path: Path) -> None:
    """Same samples, same rules: the dataset keeps exactly the windows the action node would use."""
    runtime = pytest.importorskip("asyncvla_action_node.sensor_window")
    spec = SyntheticBagSpec(duration=3.0, sensor_holes=((1.2, 1.26), (2.0, 2.008)))
    bag = write_synthetic_bag(tmp_path / "parity", "sqlite3", spec)
    episodes, report = load_bag(bag.path)
    buffer = runtime.SensorWindow(T, 1025, max_gap=0.01, capacity_factor=bag.sensor_stamps_ns.size // T + 2)
    rows = bag.sensor_rows(bag.sensor_index)
    now_ns = int(bag.sensor_stamps_ns[-1])  # the receiver's clock: nothing is from the future
    assert buffer.add_batch(bag.sensor_stamps_ns, rows[:, 0], rows[:, 1:], now_ns) == rows.shape[0]
    kept = {int(t): (e, i) for e in episodes for i, t in enumerate(e.times_ns)}
    grid = episodes[0].times_ns[0] + DT * np.arange(report.action_times)  # every action time
    refused = 0
    for t in grid:
        result = buffer.window(int(t), max_age=0.05)
        if int(t) in kept:
            episode, i = kept[int(t)]
            assert result.reason == ""
            np.testing.assert_array_equal(episode.sensor_windows[i], result.window)
        else:
            assert result.window is None and "gap" in result.reason
            refused += 1
    assert refused == sum(report.skipped.values()) > 0
