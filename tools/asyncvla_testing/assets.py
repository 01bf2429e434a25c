"""Build the embedded default: a tiny random-weight Qwen2.5-VL directory and a matching policy.

Used by the demo and the integration tests. Everything is made offline, in seconds, and loaded
back through the same code a user's real model and checkpoint go through.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

from asyncvla_core.conventions import ROBOT_STATE_DIM

#: Bumped whenever what build_demo_assets writes changes, so cached assets are rebuilt.
ASSETS_VERSION = 4
#: The random policy's outputs are O(1) in normalised units; these statistics make them the size
#: of a slow needle motion (about 1 mm and 5 mrad per step), well inside the output guard's
#: default limits, as a trained policy's would be.
DEMO_ACTION_MEAN = [0.0] * 6 + [1.0]
DEMO_ACTION_STD = [1e-3] * 3 + [5e-3] * 3 + [1e-3]


@dataclass(frozen=True)
class DemoAssets:
    model_dir: str
    checkpoint_dir: str
    model_id: str
    num_feature_tokens: int
    image_size: tuple[int, int]


def build_demo_assets(directory: str, num_feature_tokens: int = 8,
                      image_size: tuple[int, int] = (112, 112)) -> DemoAssets:
    """Create (or reuse, when complete) the tiny model and policy under `directory`.

    The VL model id includes the extraction settings (resize, token count), so the policy's
    expected `vl_model_id` is computed with the settings the VLM node will be started with.
    """
    model_dir = os.path.join(directory, "tiny_qwen2_5_vl")
    checkpoint_dir = os.path.join(directory, "tiny_policy")
    info_path = os.path.join(directory, "assets.json")
    if os.path.exists(info_path):
        with open(info_path) as f:
            info = json.load(f)
        if info.get("version") == ASSETS_VERSION \
                and info.get("num_feature_tokens") == num_feature_tokens \
                and tuple(info.get("image_size", ())) == tuple(image_size):
            return DemoAssets(model_dir, checkpoint_dir, info["model_id"], num_feature_tokens,
                              tuple(image_size))
    import torch

    from asyncvla_policy.checkpoint import save_policy
    from asyncvla_policy.policy import ActionPolicy
    from asyncvla_policy.config import VLConfig, tiny_policy_config
    from asyncvla_testing.tiny_vlm import make_tiny_qwen_vl
    from asyncvla_policy.vl_extractor import VLFeatureExtractor

    os.makedirs(directory, exist_ok=True)
    make_tiny_qwen_vl(model_dir)
    extractor = VLFeatureExtractor.from_pretrained(model_dir, device="cpu",
                                                   num_feature_tokens=num_feature_tokens,
                                                   image_size=tuple(image_size))
    torch.manual_seed(0)
    policy = ActionPolicy(tiny_policy_config(vl_dim=extractor.feature_dim,
                                             vl_num_tokens=num_feature_tokens,
                                             robot_state_dim=ROBOT_STATE_DIM)).eval()
    policy.set_normalization(action_mean=DEMO_ACTION_MEAN, action_std=DEMO_ACTION_STD)
    save_policy(policy, checkpoint_dir, extra_metadata={
        "action_space": "ee_delta", "step_period": 0.1, "vl_model_id": extractor.model_id,
        "vl_adapter_id": "", "vl_config": extractor.vl_config(VLConfig().prompt).to_dict(),
        "note": "random weights: the embedded default for demos and tests"})
    with open(info_path, "w") as f:
        json.dump({"version": ASSETS_VERSION, "model_id": extractor.model_id, "num_feature_tokens": num_feature_tokens,
                   "image_size": list(image_size)}, f)
    return DemoAssets(model_dir, checkpoint_dir, extractor.model_id, num_feature_tokens,
                      tuple(image_size))


def joint_delta_checkpoint(assets: DemoAssets, directory: str) -> str:
    """A copy of the demo policy that declares the joint_delta action space (for the
    JointTrajectory output); the weights are the same random ones."""
    import shutil

    target = os.path.join(directory, "joint_policy")
    shutil.copytree(assets.checkpoint_dir, target)
    config_path = os.path.join(target, "config.json")
    with open(config_path) as f:
        config = json.load(f)
    config["metadata"]["action_space"] = "joint_delta"
    with open(config_path, "w") as f:
        json.dump(config, f)
    return target
