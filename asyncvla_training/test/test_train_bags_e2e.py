"""End to end: rosbag2 recordings (written with rosbags) -> episodes -> VL cache -> stage 1 ->
stage 2 -> checkpoint loaded the way the action node and the VLM node load it -> same outputs."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
if getattr(sys.modules.get("asyncvla_training"), "__file__", "") is None:
    del sys.modules["asyncvla_training"]
sys.path.append(
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "asyncvla_action_node"))
)

from asyncvla_core.conventions import ACTION_SPACES  # noqa: E402
from asyncvla_policy.checkpoint import load_policy, read_checkpoint_config  # noqa: E402
from asyncvla_policy.config import VLConfig  # noqa: E402
from asyncvla_policy.vl_extractor import VLFeatureExtractor  # noqa: E402
from asyncvla_testing.synthetic_bag import (  # noqa: E402
    SyntheticBagSpec,
    SyntheticMotion,
    write_synthetic_bag,
)
from asyncvla_testing.tiny_vlm import ensure_tiny_qwen_vl  # noqa: E402
from asyncvla_training.data import vl_cache  # noqa: E402
from asyncvla_training.train import eval_cli  # noqa: E402
from asyncvla_training.train.config import TrainConfig  # noqa: E402
from asyncvla_training.train.data_sources import cache_feature_provider, load_run_episodes  # noqa: E402
from asyncvla_training.train.trainer import Trainer  # noqa: E402

torch.set_num_threads(1)
SIZE, K = 56, 4


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return ensure_tiny_qwen_vl(tmp_path_factory.getbasetemp() / "tiny_qwen_vl")


def _quiet(line: str) -> None:
    pass


@torch.no_grad()
def _fit_loss(trainer: Trainer, episodes) -> float:
    """Loss over every sample (fresh features, eval mode): a noise-free measure of the fit."""
    items = [Trainer._item(ep, i, 0) for ep in episodes for i in range(len(ep))]
    trainer.module.eval()
    total = 0.0
    for start in range(0, len(items), 16):
        batch = trainer.make_batch(items[start : start + 16])
        pred = trainer.module(batch.vl_input, batch.windows, batch.states, batch.vl_age)
        target = trainer.policy.normalize_actions(batch.actions)
        total += float(torch.nn.functional.mse_loss(pred, target, reduction="sum"))
    trainer.module.train()
    return total / (len(items) * 8 * 7)


def test_bags_to_action_node_checkpoint(tmp_path: Path, tiny_qwen_dir: str) -> None:
    bags = tmp_path / "bags"
    axes = ((0.26726124, 0.53452248, 0.80178373), (1.0, 0.0, 0.0), (0.0, 0.6, 0.8))
    for b, axis in enumerate(axes):  # three recordings that rotate about different axes
        write_synthetic_bag(
            bags / f"run{b}",
            "mcap" if b else "sqlite3",
            SyntheticBagSpec(
                duration=3.0, views=("view1",), image_size=(SIZE, SIZE), motion=SyntheticMotion(axis=axis)
            ),
        )
    cache = tmp_path / "vl_cache"
    assert (
        vl_cache.main(
            [
                str(bags),
                "--cache-dir",
                str(cache),
                "--model",
                tiny_qwen_dir,
                "--image-size",
                f"{SIZE}x{SIZE}",
                "--num-feature-tokens",
                str(K),
                "--device",
                "cpu",
                "--no-progress",
            ]
        )
        == 0
    )

    common = dict(
        bags=[str(bags)],
        val_fraction=0.34,
        policy_size="tiny",
        vl_model_path=tiny_qwen_dir,
        image_width=SIZE,
        image_height=SIZE,
        num_feature_tokens=K,
        grad_accum_steps=1,
        warmup_steps=2,
        lr=1e-3,
        sensor_lr=1e-3,
        log_every=1000,
        device="cpu",
    )
    cfg1 = TrainConfig(
        stage=1,
        vl_cache_dir=str(cache),
        batch_size=8,
        total_steps=40,
        eval_every=20,
        save_every=20,
        out_dir=str(tmp_path / "s1"),
        **common,
    )
    train, val = load_run_episodes(cfg1)
    assert len(train) == 2 and len(val) == 1 and len(train[0]) > 10
    assert train[0].sensor_windows.shape[1:] == (65, 1026) and train[0].actions.shape[1:] == (8, 7)
    provider = cache_feature_provider(cfg1, train + val)  # read-only, checked complete
    s1 = Trainer(cfg1, train, val, feature_provider=provider, log=_quiet)
    s1.train()
    losses = [h["loss"] for h in s1.history]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])

    cfg2 = TrainConfig(
        stage=2,
        init_from=str(tmp_path / "s1" / "latest"),
        batch_size=4,
        total_steps=20,
        eval_every=10,
        save_every=10,
        vl_lr=1e-3,
        lora_r=4,
        lora_alpha=8,
        out_dir=str(tmp_path / "s2"),
        **common,
    )
    extractor = VLFeatureExtractor.from_pretrained(
        tiny_qwen_dir, image_size=(SIZE, SIZE), num_feature_tokens=K
    )
    assert extractor.model_id == provider.model_id  # the cache holds this model's features
    s2 = Trainer(cfg2, train, val, extractor=extractor, log=_quiet)
    before = _fit_loss(s2, train)
    s2.train()
    after = _fit_loss(s2, train)
    assert after < 0.8 * before and before < np.mean(losses[:5])  # continues from stage 1, improves

    # What the nodes do with the checkpoint directory.
    ckpt = tmp_path / "s2" / "latest"
    config, metadata = read_checkpoint_config(ckpt)
    policy = load_policy(ckpt, device="cpu")
    assert metadata["action_space"] in ACTION_SPACES and metadata["step_period"] == pytest.approx(0.1)
    assert metadata["views"] == ["view1"] and metadata["datasets"]["val"] == [val[0].name]
    vl_cfg = VLConfig.from_dict(metadata["vl_config"])
    vl_cfg.adapter_path = str(ckpt / vl_cfg.adapter_path)
    node_extractor = VLFeatureExtractor.from_vl_config(vl_cfg)  # the VLM node, with the adapter
    assert node_extractor.model_id == metadata["vl_model_id"]
    assert node_extractor.adapter_id == metadata["vl_adapter_id"]
    from asyncvla_action_node.vl_store import VLFeatureStore

    store = VLFeatureStore(config.vl_num_tokens, config.vl_dim, metadata["vl_model_id"])
    ep = val[0]
    for i in (0, len(ep) // 2, len(ep) - 1):
        frames = ep.load_frames(int(ep.sample_frame_sets[i]))
        features = node_extractor.extract(frames, metadata["prompt"]).features.numpy()
        trained = s2.extractor.extract(frames, metadata["prompt"]).features.numpy()
        np.testing.assert_allclose(features, trained, rtol=1e-4, atol=1e-5)
        now_ns = int(ep.times_ns[i])  # the receiver's clock at the sample: not from the future
        assert store.update(features, i + 1, int(ep.times_ns[i]), node_extractor.model_id,
                            now_ns) == ""
        snapshot = store.snapshot(int(ep.times_ns[i]))
        got = policy.predict(snapshot.features, ep.sensor_windows[i], ep.states[i], snapshot.age)
        assert np.array_equal(got, s2.policy.predict(features, ep.sensor_windows[i], ep.states[i],
                                                     snapshot.age))

    out = tmp_path / "eval"
    assert (
        eval_cli.main(["--checkpoint", str(ckpt), "--out", str(out), "--bag", str(bags / val[0].name)]) == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_samples"] == len(val[0]) and metrics["episodes"] == [val[0].name]
    assert (out / f"episode_{val[0].name}.png").stat().st_size > 10_000
