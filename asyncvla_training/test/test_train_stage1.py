"""Stage 1 (frozen VLM, features per frame set) on generated episodes with the tiny Qwen2.5-VL.

Covers: falling loss, staleness sampling (VL ages in ms), no target leakage, exact resume, and that the
checkpoint loads through the action node's code path with identical outputs.
"""

from __future__ import annotations

import dataclasses
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
# The action node's ROS-free VL store (what the node checks incoming features with).
sys.path.append(
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "asyncvla_action_node"))
)

from asyncvla_core.conventions import ACTION_SPACES  # noqa: E402
from asyncvla_policy.checkpoint import load_policy, read_checkpoint_config  # noqa: E402
from asyncvla_policy.vl_extractor import VLFeatureExtractor  # noqa: E402
from asyncvla_testing.tiny_vlm import ensure_tiny_qwen_vl  # noqa: E402
from asyncvla_training.data.synthetic import make_synthetic_episodes  # noqa: E402
from asyncvla_training.train.config import TrainConfig  # noqa: E402
from asyncvla_training.train.features import ExtractorFeatureProvider  # noqa: E402
from asyncvla_training.train.trainer import Trainer  # noqa: E402

torch.set_num_threads(1)
SIZE = 56
K = 4


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return ensure_tiny_qwen_vl(tmp_path_factory.getbasetemp() / "tiny_qwen_vl")


@pytest.fixture(scope="module")
def extractor(tiny_qwen_dir: str) -> VLFeatureExtractor:
    return VLFeatureExtractor.from_pretrained(tiny_qwen_dir, image_size=(SIZE, SIZE), num_feature_tokens=K)


@pytest.fixture(scope="module")
def provider(extractor: VLFeatureExtractor) -> ExtractorFeatureProvider:
    return ExtractorFeatureProvider(extractor)


@pytest.fixture(scope="module")
def episodes():
    return make_synthetic_episodes(5, length=30, seed=0)


def _cfg(out: Path, tiny_qwen_dir: str, **kw) -> TrainConfig:
    base = dict(
        stage=1,
        policy_size="tiny",
        vl_model_path=tiny_qwen_dir,
        image_width=SIZE,
        image_height=SIZE,
        num_feature_tokens=K,
        batch_size=8,
        grad_accum_steps=1,
        lr=1e-3,
        sensor_lr=1e-3,
        warmup_steps=3,
        total_steps=60,
        eval_every=20,
        save_every=30,
        log_every=1000,
        val_max_samples=30,
        out_dir=str(out),
        device="cpu",
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_qwen_dir, provider, episodes):
    out = tmp_path_factory.mktemp("stage1")
    trainer = Trainer(
        _cfg(out, tiny_qwen_dir),
        episodes[:4],
        episodes[4:],
        feature_provider=provider,
        log=lambda line: None,
    )
    before = {k: v.clone() for k, v in trainer.policy.state_dict().items()}
    summary = trainer.train()
    return trainer, summary, before, out


def test_stage1_loss_falls_and_only_heads_train(trained, extractor) -> None:
    trainer, summary, before, out = trained
    losses = [h["loss"] for h in trainer.history]
    assert summary["step"] == 60 and len(losses) == 60
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.5 * first, (first, last)
    assert all(np.isfinite(losses))
    after = trainer.policy.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(k.startswith("sensor_encoder.") for k in changed)
    assert any(k.startswith("action_expert.") for k in changed)
    stats = {f"{n}_{s}" for n in ("state", "sensor", "action") for s in ("mean", "std")}
    assert not changed & stats  # normalisation statistics are fixed during training
    assert all(not p.requires_grad for p in extractor.parameters())  # the VLM stays frozen
    assert [g["name"] for g in trainer.optimizer.param_groups] == ["expert", "sensor"]
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    vals = [r["val_loss"] for r in log if r["event"] == "val"]
    assert len(vals) == 3 and summary["best_val_loss"] == pytest.approx(min(vals))
    assert (out / "best" / "model.safetensors").is_file() and (
        out / "latest" / "training" / "state.json"
    ).is_file()
    assert not list(out.rglob("*.pt")) and not list(out.rglob("*.bin")) and not list(out.rglob("*.pkl"))


def test_features_extracted_once_per_frame_set(trained, provider, episodes) -> None:
    keys = {provider.key(ep, i) for ep in episodes for i in range(len(ep))}
    assert 0 < provider.extractions == len(provider) <= len(keys)
    ep = episodes[0]
    count = provider.extractions
    assert np.array_equal(provider(ep, 3), provider(ep, 3)) and provider.extractions == count


def test_checkpoint_loads_like_the_action_node(trained, extractor, episodes) -> None:
    from asyncvla_action_node.vl_store import VLFeatureStore

    trainer, _, _, out = trained
    for name in ("best", "latest"):
        # The action node: read_checkpoint_config + load_policy, then these metadata keys.
        config, metadata = read_checkpoint_config(out / name)
        policy = load_policy(out / name, device="cpu")
        assert metadata["action_space"] in ACTION_SPACES and metadata["action_space"] == "ee_delta"
        assert metadata["step_period"] == pytest.approx(0.1)
        assert metadata["vl_model_id"] == extractor.model_id
        assert metadata["datasets"]["train"] == [e.name for e in episodes[:4]]
        assert metadata["datasets"]["val"] == [episodes[4].name]
        assert TrainConfig.from_dict(metadata["train_config"]).stage == 1
        store = VLFeatureStore(config.vl_num_tokens, config.vl_dim, str(metadata["vl_model_id"]))
        ep = episodes[4]
        features = extractor.extract(ep.load_frames(5), ep.prompt).features.numpy()
        now_ns = int(ep.times_ns[6])  # the receiver's clock: neither is from the future
        assert store.update(features, 1, int(ep.times_ns[5]), extractor.model_id, now_ns) == ""
        assert store.update(features, 2, int(ep.times_ns[6]), "other@123", now_ns) != ""
        got = policy.predict(features, ep.sensor_windows[5], ep.states[5], 0.3)
        assert got.shape == (config.horizon, config.action_dim) and np.all(np.isfinite(got))
    # latest/ is the in-training model: identical outputs.
    policy = load_policy(out / "latest")
    for i in (0, 7, 29):
        ep = episodes[4]
        vl = extractor.extract(ep.load_frames(i), ep.prompt).features.numpy()
        want = trainer.policy.predict(vl, ep.sensor_windows[i], ep.states[i], 0.3)
        assert np.array_equal(policy.predict(vl, ep.sensor_windows[i], ep.states[i], 0.3), want)


def test_batches_use_stale_features_and_never_the_target(
    tmp_path, tiny_qwen_dir, provider, episodes
) -> None:
    """Each sample: the frame set of a VL age drawn in 0-250 ms, and that age (as the node would
    compute it: up to one frame period more) given to the expert in seconds."""
    eps = [dataclasses.replace(ep, actions=ep.actions.copy()) for ep in episodes[:3]]
    trainer = Trainer(
        _cfg(tmp_path, tiny_qwen_dir, vl_age_ms=[0, 250], batch_size=6),
        eps,
        feature_provider=provider,
        log=lambda line: None,
    )
    assert trainer.policy.cfg.vl_age_input  # new policies take the age
    lags, ages, clipped = set(), [], 0
    for g in range(40):
        items = trainer.items_for(g)
        for it in items:
            ep = it.episode
            own = int(ep.sample_frame_sets[it.index])
            assert 0 <= it.frame_set <= own and own - it.frame_set <= 3
            assert it.vl_age_ns == ep.times_ns[it.index] - ep.frame_set_ready_ns(it.frame_set)
            lags.add(own - it.frame_set)
            ages.append(it.vl_age_ns / 1e6)
            clipped += int(it.index < 2 and it.frame_set == 0)
        batch = trainer.make_batch(items)
        for j, it in enumerate(items):
            assert np.array_equal(batch.vl_input[j].numpy(), provider(it.episode, it.frame_set))
            assert batch.vl_age[j].item() == pytest.approx(it.vl_age_ns / 1e9)
    # 30 ms (the frames' own age) up to 250 ms + one 100 ms tick: sets 0..3 ticks back.
    assert lags == {0, 1, 2, 3} and clipped > 0
    assert min(ages) == pytest.approx(30.0) and 250.0 <= max(ages) <= 350.0
    items = trainer.items_for(0)
    trainer.module.eval()
    batch = trainer.make_batch(items)
    with torch.no_grad():
        pred = trainer.module(batch.vl_input, batch.windows, batch.states, batch.vl_age)
    for it in items:
        it.episode.actions[it.index] += 5.0  # change every target of the batch
    batch2 = trainer.make_batch(items)
    assert not torch.equal(batch.actions, batch2.actions)
    with torch.no_grad():
        assert torch.equal(trainer.module(batch2.vl_input, batch2.windows, batch2.states,
                                          batch2.vl_age), pred)


def test_resume_continues_exactly(tmp_path, tiny_qwen_dir, provider, episodes) -> None:
    kw = dict(total_steps=8, batch_size=4, grad_accum_steps=2, eval_every=4, save_every=0, warmup_steps=2)
    straight = Trainer(
        _cfg(tmp_path / "a", tiny_qwen_dir, **kw),
        episodes[:4],
        episodes[4:],
        feature_provider=provider,
        log=lambda line: None,
    )
    straight.train()
    first = Trainer(
        _cfg(tmp_path / "b", tiny_qwen_dir, **kw),
        episodes[:4],
        episodes[4:],
        feature_provider=provider,
        log=lambda line: None,
    )
    assert first.train(stop_at=4)["step"] == 4
    with pytest.raises(FileExistsError):
        Trainer(
            _cfg(tmp_path / "b", tiny_qwen_dir, **kw),
            episodes[:4],
            episodes[4:],
            feature_provider=provider,
            log=lambda line: None,
        ).train()
    second = Trainer(
        _cfg(tmp_path / "b", tiny_qwen_dir, **kw, log_every=2),
        episodes[:4],
        episodes[4:],
        feature_provider=provider,
        log=lambda line: None,
    )
    summary = second.train(resume=True)
    assert summary["step"] == 8
    a, b = straight.policy.state_dict(), second.policy.state_dict()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=key)
    assert [h["loss"] for h in second.history[-4:]] == pytest.approx(
        [h["loss"] for h in straight.history[-4:]], rel=1e-5
    )
    assert second.best_val == pytest.approx(straight.best_val, rel=1e-5)
    with pytest.raises(ValueError, match="lr"):
        Trainer(
            _cfg(tmp_path / "b", tiny_qwen_dir, **{**kw, "lr": 5e-3}),
            episodes[:4],
            episodes[4:],
            feature_provider=provider,
            log=lambda line: None,
        ).train(resume=True)


def test_episodes_must_match_the_run(tmp_path, tiny_qwen_dir, provider, episodes) -> None:
    with pytest.raises(ValueError, match="step_period"):
        Trainer(_cfg(tmp_path, tiny_qwen_dir, step_period=0.05), episodes[:2], feature_provider=provider)
    with pytest.raises(ValueError, match="action_space"):
        Trainer(
            _cfg(tmp_path, tiny_qwen_dir, action_space="joint_delta"),
            episodes[:2],
            feature_provider=provider,
        )
    with pytest.raises(ValueError, match="both the training and validation"):
        Trainer(_cfg(tmp_path, tiny_qwen_dir), episodes[:2], episodes[1:3], feature_provider=provider)
    with pytest.raises(ValueError, match="unique"):
        Trainer(_cfg(tmp_path, tiny_qwen_dir), [episodes[0], episodes[0]], feature_provider=provider)
