"""The VLM node serves the policy checkpoint's VL settings; a mismatch names the setting.

Unit part: vl_contract against the real demo checkpoint and real extractors (the tiny
Qwen2.5-VL) built with other settings. Process part: real nodes over real DDS - a VLM node given
only `policy_checkpoint` (everything else at its defaults, as `checkpoint:=` in the launch files
leaves it) feeds an action node that acts on its features; a conflicting explicit setting stops
the VLM node with the setting named; the node's defaults start and publish (5 views).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from asyncvla_core.conventions import VIEW_NAMES
from asyncvla_core.vl_contract import VLSeen, vlm_settings_from_checkpoint
from asyncvla_policy.checkpoint import read_checkpoint_vl
from asyncvla_testing.pipeline import ros_args, start_action, start_sources

pytest.importorskip("rclpy")
from asyncvla_vlm_node.vlm_config import VLM_NODE_PARAMETERS  # noqa: E402

DEFAULTS = {s.name: s.default for s in VLM_NODE_PARAMETERS}


def test_defaults_take_the_checkpoints_settings_and_conflicts_are_named(assets):
    ckpt = read_checkpoint_vl(assets.checkpoint_dir)
    assert ckpt.num_feature_tokens == assets.num_feature_tokens == 8  # not the node's 64
    resolved, notes = vlm_settings_from_checkpoint(DEFAULTS, DEFAULTS, ckpt)
    assert (resolved["features.num_tokens"], resolved["views.resize_width"],
            resolved["views.resize_height"], resolved["model.path"]) == (
        8, *assets.image_size, ckpt.model_path)
    assert resolved["views.names"] == list(VIEW_NAMES) and notes == []  # no views recorded
    clash = {**DEFAULTS, "features.num_tokens": 16, "views.resize_width": 320,
             "features.layer": -2}
    with pytest.raises(ValueError) as err:
        vlm_settings_from_checkpoint(clash, DEFAULTS, ckpt)
    text = str(err.value)
    assert "features.num_tokens 16 (trained: 8)" in text
    assert "views.resize_width 320 (trained: 112)" in text
    assert "features.layer -2 (trained: -1)" in text
    same = {**DEFAULTS, "features.num_tokens": 8}  # explicit and equal: fine
    assert vlm_settings_from_checkpoint(same, DEFAULTS, ckpt)[0]["features.num_tokens"] == 8
    moved = {**DEFAULTS, "model.path": "/elsewhere/qwen", "prompt": "another task"}
    resolved, notes = vlm_settings_from_checkpoint(moved, DEFAULTS, ckpt)
    assert resolved["model.path"] == "/elsewhere/qwen" and resolved["prompt"] == "another task"
    assert len(notes) == 2 and "model.path '/elsewhere/qwen' kept" in notes[0]


def test_refused_features_name_the_setting_that_differs(assets):
    from asyncvla_action_node.vl_store import VLFeatureStore
    from asyncvla_policy.vl_extractor import VLFeatureExtractor

    ckpt = read_checkpoint_vl(assets.checkpoint_dir)
    store = VLFeatureStore(8, 4, ckpt.model_id, contract=ckpt)
    now = 1_000_000_000_000
    feats = np.zeros((8, 4), np.float32)
    good = VLSeen(ckpt.model_id, "", 8, -1, ckpt.prompts[0])
    assert store.update(feats, 1, now, good.model_id, now, good) == ""
    cases = {"features.num_tokens 4 (trained: 8)": dict(num_feature_tokens=4),
             "model or image size": dict(image_size=(56, 56)),
             "features.layer 1 (trained: -1)": dict(feature_layer=1)}
    for expected, settings in cases.items():
        settings = {"num_feature_tokens": 8, "image_size": assets.image_size, **settings}
        other = VLFeatureExtractor.from_pretrained(assets.model_dir, **settings)
        seen = VLSeen(other.model_id, other.adapter_id, other.num_feature_tokens,
                      other.feature_layer, ckpt.prompts[0])
        assert other.model_id != ckpt.model_id
        reason = store.update(feats, 2, now, seen.model_id, now, seen)
        assert expected in reason and "policy_checkpoint" in reason, reason
    # The adapter is not part of the model id: checked by itself.
    adapted = dataclasses.replace(good, adapter_id="adapter@0123456789", prompt="other")
    reason = store.update(feats, 3, now, adapted.model_id, now, adapted)
    assert "adapter 'adapter@0123456789' (trained: '(none)')" in reason and "prompt 'other'" in reason
    assert store.rejected["model_id"] == 4


def start_vlm_with(group, **params):
    return group.start("vlm", ["-m", "asyncvla_vlm_node.vlm_node", *ros_args(params)])


def test_policy_checkpoint_alone_gives_a_working_pair(one_thread, ros_env, assets):
    """The launch files pass checkpoint:= to both nodes and nothing else (documented usage)."""
    from asyncvla_msgs.msg import ActionChunk
    from asyncvla_testing.ros_listener import RosListener

    start_sources(one_thread, list(VIEW_NAMES))
    vlm = start_vlm_with(one_thread, policy_checkpoint=assets.checkpoint_dir,
                         model={"device": "cpu"}, timing={"target_period": 0.5})
    line = vlm.wait_for_line("VLM node ready", 120)
    assert "8 tokens from layer -1 at 112x112 (from" in line
    start_action(one_thread, assets, freshness={"max_vl_age": 1.5})
    with RosListener(int(ros_env["ROS_DOMAIN_ID"]), {"/asyncvla/action_chunk": ActionChunk}) as ls:
        chunks = ls["/asyncvla/action_chunk"].wait_for(3, 120)
    assert all(c.vl_sequence >= 1 for c in chunks)  # acted on the VLM node's features


def test_conflicting_setting_stops_the_vlm_node_naming_it(one_thread, assets):
    vlm = start_vlm_with(one_thread, policy_checkpoint=assets.checkpoint_dir,
                         model={"device": "cpu"}, features={"num_tokens": 16})
    vlm.popen.wait(timeout=120)
    assert vlm.popen.returncode != 0
    assert "features.num_tokens 16 (trained: 8)" in vlm.output()


def test_vlm_node_starts_with_its_default_parameters(one_thread, ros_env, assets):
    """Defaults except the model (the 3B model is not on this machine): 5 views, topics from
    conventions.LAB_VIEWS; it publishes features from the five camera topics."""
    from asyncvla_msgs.msg import VLFeatures
    from asyncvla_testing.ros_listener import RosListener

    start_sources(one_thread, list(VIEW_NAMES))
    vlm = start_vlm_with(one_thread, model={"path": assets.model_dir, "device": "cpu"})
    line = vlm.wait_for_line("VLM node ready", 120)
    assert "/camera/view5/image_raw/compressed" in line or "camera/view5/image_raw/compressed" in line
    with RosListener(int(ros_env["ROS_DOMAIN_ID"]), {"/asyncvla/vl_features": VLFeatures}) as ls:
        msg = ls["/asyncvla/vl_features"].wait_for(1, 180)[0]
    assert list(msg.view_names) == list(VIEW_NAMES) and msg.num_tokens == 64
