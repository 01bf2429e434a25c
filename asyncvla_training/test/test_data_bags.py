"""Reading rosbag2 recordings (mcap and sqlite3, written here with rosbags): types and clear errors."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest

# Run from a plain checkout: put the package dir first; pytest's importlib mode may have registered
# the ROS package *directory* as a namespace package "asyncvla_training" - drop it for the real one.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
if getattr(sys.modules.get("asyncvla_training"), "__file__", "") is None:
    del sys.modules["asyncvla_training"]

from asyncvla_testing.synthetic_bag import SyntheticBagSpec, write_synthetic_bag  # noqa: E402
from asyncvla_training.data import (  # noqa: E402
    DEFAULT_PROMPT,
    BagDataError,
    BagDatasetConfig,
    find_bags,
    load_bag,
    load_episodes,
)
from asyncvla_training.data.bag_reader import read_bag_streams  # noqa: E402
from asyncvla_training.data.bag_types import shipped_msg_texts, shipped_typestore  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SHORT = SyntheticBagSpec(duration=1.5)


# ------------------------------------------------------------------ shipped message definitions
def test_shipped_msg_copies_equal_asyncvla_msgs() -> None:
    source = {p.stem: p.read_text(encoding="utf-8") for p in (REPO / "asyncvla_msgs" / "msg").glob("*.msg")}
    shipped = {name.rsplit("/", 1)[1]: text for name, text in shipped_msg_texts().items()}
    assert source, "asyncvla_msgs/msg has no .msg files"
    assert sorted(shipped) == sorted(source), (
        "asyncvla_training/asyncvla_training/data/msgs must hold a copy of every asyncvla_msgs/msg/*.msg")
    for name, text in source.items():
        assert shipped[name] == text, (
            f"data/msgs/{name}.msg differs from asyncvla_msgs/msg/{name}.msg: copy it")


def test_shipped_definitions_hash_like_rosidl() -> None:
    """Old bags without embedded definitions are checked against ROS's RIHS01 hashes."""
    built = REPO / "install" / "asyncvla_msgs" / "share" / "asyncvla_msgs" / "msg"
    store = shipped_typestore()
    compared = 0
    for name in shipped_msg_texts():
        short = name.rsplit("/", 1)[1]
        description = built / f"{short}.json"
        source = REPO / "asyncvla_msgs" / "msg" / f"{short}.msg"
        if not description.is_file() or description.stat().st_mtime < source.stat().st_mtime:
            continue  # not built, or built before the last edit
        hashes = json.loads(description.read_text())["type_hashes"]
        expected = next(h["hash_string"] for h in hashes if h["type_name"] == name)
        assert store.hash_rihs01(name) == expected, name
        compared += 1
    if not compared:
        pytest.skip("asyncvla_msgs is not built (no install/ type descriptions)")


# ------------------------------------------------------------------ reading both storages
@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_reads_header_stamps_from_both_storages(tmp_path: Path, storage: str) -> None:
    bag = write_synthetic_bag(tmp_path / f"rec_{storage}", storage, SHORT)
    streams = read_bag_streams(bag.path)
    assert streams.views == ("view1", "view2")
    # Header stamps, not the bag receive times (those are later by the writer's latency).
    np.testing.assert_array_equal(streams.sensor_stamps_ns, bag.sensor_stamps_ns)
    np.testing.assert_array_equal(streams.joint_stamps_ns, bag.robot_stamps_ns)
    np.testing.assert_array_equal(streams.pose_stamps_ns, bag.robot_stamps_ns)
    for view in streams.views:
        np.testing.assert_array_equal(streams.frames[view].stamps_ns, bag.frame_stamps_ns[view])
    np.testing.assert_array_equal(streams.sensor_rows, bag.sensor_rows(bag.sensor_index))
    # Joint names are shuffled in the messages (plus an extra joint): mapped back by name.
    t = bag.seconds(bag.robot_stamps_ns)
    np.testing.assert_allclose(streams.joint_positions, bag.motion.joints(t), atol=1e-12)
    np.testing.assert_allclose(streams.positions, bag.motion.position(t), atol=1e-12)
    np.testing.assert_allclose(streams.quaternions, bag.motion.quaternion(t), atol=1e-8)
    assert streams.prompt == SHORT.prompt and streams.prompt_source == "custom_data"
    assert set(streams.definition_sources.values()) == {"embedded in bag"}


def test_reads_a_raw_mcap_file_and_finds_bags(tmp_path: Path) -> None:
    bag = write_synthetic_bag(tmp_path / "runs" / "a", "mcap", SHORT)
    write_synthetic_bag(tmp_path / "runs" / "b", "sqlite3", SHORT)
    raw = next(bag.path.glob("*.mcap"))
    episodes, report = load_bag(raw)
    assert report.samples == len(episodes[0]) > 0
    assert episodes[0].prompt == DEFAULT_PROMPT  # a raw file has no metadata.yaml custom data
    assert [p.name for p in find_bags(tmp_path / "runs")] == ["a", "b"]
    assert [e.name for e in load_episodes(tmp_path / "runs")] == ["a", "b"]


def test_prompt_sources(tmp_path: Path) -> None:
    spec = SyntheticBagSpec(duration=1.5, prompt=None, vl_features_prompt="recorded by the VLM")
    bag = write_synthetic_bag(tmp_path / "vl", "mcap", spec)
    episodes, report = load_bag(bag.path)
    assert episodes[0].prompt == "recorded by the VLM" and report.prompt_source == "/asyncvla/vl_features"
    episodes, report = load_bag(bag.path, BagDatasetConfig(prompt="forced"))
    assert episodes[0].prompt == "forced" and report.prompt_source == "config"
    bare = write_synthetic_bag(tmp_path / "bare", "mcap", SyntheticBagSpec(duration=1.5, prompt=None))
    episodes, report = load_bag(bare.path, BagDatasetConfig(default_prompt="fallback"))
    assert episodes[0].prompt == "fallback" and report.prompt_source == "default"


def test_without_embedded_definitions_uses_shipped_copies(tmp_path: Path) -> None:
    bag = write_synthetic_bag(tmp_path / "old", "sqlite3", SHORT)
    db = next(bag.path.glob("*.db3"))
    with sqlite3.connect(db) as con:
        con.execute("DELETE FROM message_definitions")
    streams = read_bag_streams(bag.path)
    assert streams.definition_sources["asyncvla_msgs/msg/ForceOctBatch"] == "asyncvla_training/data/msgs"
    assert streams.definition_sources["sensor_msgs/msg/JointState"] == "rosbags ROS2_JAZZY store"
    np.testing.assert_array_equal(streams.sensor_rows, bag.sensor_rows(bag.sensor_index))
    # A recorded hash that the available definition does not reproduce is refused, not misread.
    recorded = shipped_typestore().hash_rihs01("asyncvla_msgs/msg/ForceOctBatch")
    forged = "RIHS01_" + "0" * 64
    with sqlite3.connect(db) as con:
        con.execute("UPDATE topics SET type_description_hash = ? WHERE name = '/sensor/force_oct'",
                    (forged,))
    metadata = bag.path / "metadata.yaml"
    assert recorded in metadata.read_text()
    metadata.write_text(metadata.read_text().replace(recorded, forged))
    with pytest.raises(BagDataError) as err:
        read_bag_streams(bag.path)
    assert err.value.kind == "definition_mismatch" and err.value.topic == "/sensor/force_oct"
    assert "asyncvla_msgs/msg/ForceOctBatch" in str(err.value) and "old" in str(err.value)


# ------------------------------------------------------------------ clear errors
def _error(path, config: BagDatasetConfig = BagDatasetConfig()) -> BagDataError:
    with pytest.raises(BagDataError) as err:
        load_bag(path, config)
    return err.value


def test_missing_bag_and_metadata(tmp_path: Path) -> None:
    err = _error(tmp_path / "nope")
    assert err.kind == "missing_bag" and "nope" in str(err)
    bag = write_synthetic_bag(tmp_path / "rec", "mcap", SHORT)
    broken = tmp_path / "interrupted"
    broken.mkdir()
    shutil.copy(next(bag.path.glob("*.mcap")), broken / "interrupted_0.mcap")
    err = _error(broken)
    assert err.kind == "missing_metadata"
    assert "metadata.yaml" in str(err) and "reindex" in str(err) and "interrupted" in str(err)
    with pytest.raises(BagDataError) as many:
        load_episodes([bag.path, tmp_path / "nope"])
    assert many.value.kind == "missing_bag"


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_missing_topic(tmp_path: Path, storage: str) -> None:
    bag = write_synthetic_bag(tmp_path / "nopose", storage, SyntheticBagSpec(duration=1.5, omit=("pose",)))
    err = _error(bag.path)
    assert err.kind == "missing_topic" and err.topic == "/robot/ee_pose"
    assert "nopose" in str(err) and "/robot/ee_pose" in str(err)
    full = write_synthetic_bag(tmp_path / "full", storage, SHORT)
    err = _error(full.path, BagDatasetConfig(views=("view1", "view9")))
    assert err.kind == "missing_topic" and err.topic == "/camera/view9/image_raw/compressed"


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_wrong_type(tmp_path: Path, storage: str) -> None:
    bag = write_synthetic_bag(tmp_path / "typo", storage,
                              SyntheticBagSpec(duration=1.5, mistype=("joints",)))
    err = _error(bag.path)
    assert err.kind == "wrong_type" and err.topic == "/robot/joint_states"
    assert "std_msgs/msg/String" in str(err) and "sensor_msgs/msg/JointState" in str(err)
    assert "typo" in str(err)


def test_empty_stream_and_too_short(tmp_path: Path) -> None:
    bag = write_synthetic_bag(tmp_path / "quiet", "mcap", SyntheticBagSpec(duration=1.5, empty=("sensor",)))
    err = _error(bag.path)
    assert err.kind == "empty_stream" and err.topic == "/sensor/force_oct" and "quiet" in str(err)
    bag = write_synthetic_bag(tmp_path / "blink", "mcap", SyntheticBagSpec(duration=0.6))
    err = _error(bag.path)
    assert err.kind == "no_samples" and "8 future steps" in str(err) and "joints 0.00..0.59 s" in str(err)


def test_unstamped_stream_is_refused(tmp_path: Path) -> None:
    bag = write_synthetic_bag(tmp_path / "nostamp", "mcap",
                              SyntheticBagSpec(duration=1.5, unstamped=("pose",)))
    err = _error(bag.path)
    assert err.kind == "bad_message" and err.topic == "/robot/ee_pose" and "stamps are not set" in str(err)


def test_skip_errors_keeps_good_bags(tmp_path: Path) -> None:
    good = write_synthetic_bag(tmp_path / "good", "mcap", SHORT)
    bad = write_synthetic_bag(tmp_path / "bad", "mcap", SyntheticBagSpec(duration=1.5, omit=("sensor",)))
    reports: list = []
    episodes = load_episodes([good.path, bad.path], skip_errors=True, reports=reports)
    assert [e.name for e in episodes] == ["good"]
    assert reports[1].skipped == {"error: missing_topic": 1}


def test_dataset_config_round_trip() -> None:
    from asyncvla_training.data import AlignmentConfig, BagTopics

    config = BagDatasetConfig(views=("view2", "view1"), prompt="p",
                              topics=BagTopics(pose_topic="/arm/pose"),
                              alignment=AlignmentConfig(horizon=4, action_space="joint_delta"))
    data = json.loads(json.dumps(config.as_dict()))  # through JSON, as stored with a checkpoint
    assert BagDatasetConfig.from_dict(data) == config
    with pytest.raises(ValueError, match="horizn"):
        BagDatasetConfig.from_dict({"alignment": {"horizn": 4}})
    with pytest.raises(ValueError, match="action_space"):
        AlignmentConfig(action_space="cartesian")
