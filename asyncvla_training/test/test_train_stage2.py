"""Stage 2 (LoRA on the VLM's language model + heads, live features) with the tiny Qwen2.5-VL."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
if getattr(sys.modules.get("asyncvla_training"), "__file__", "") is None:
    del sys.modules["asyncvla_training"]

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


def _extractor(path: str, adapter: str | Path | None = None) -> VLFeatureExtractor:
    return VLFeatureExtractor.from_pretrained(
        path,
        adapter_path=None if adapter is None else str(adapter),
        image_size=(SIZE, SIZE),
        num_feature_tokens=K,
    )


@pytest.fixture(scope="module")
def episodes():
    return make_synthetic_episodes(3, length=12, seed=5, views=("left", "right"))


def _cfg(out: Path, tiny: str, **kw) -> TrainConfig:
    base = dict(
        stage=2,
        policy_size="tiny",
        vl_model_path=tiny,
        image_width=SIZE,
        image_height=SIZE,
        num_feature_tokens=K,
        batch_size=2,
        grad_accum_steps=2,
        lr=1e-3,
        sensor_lr=1e-3,
        vl_lr=1e-2,
        lora_r=4,
        lora_alpha=8,
        warmup_steps=1,
        total_steps=6,
        eval_every=3,
        save_every=3,
        log_every=1000,
        val_max_samples=6,
        out_dir=str(out),
        device="cpu",
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def stage1_ckpt(tmp_path_factory, tiny_qwen_dir, episodes) -> Path:
    out = tmp_path_factory.mktemp("s2_stage1")
    cfg = _cfg(out, tiny_qwen_dir, stage=1, total_steps=4, batch_size=4, grad_accum_steps=1)
    provider = ExtractorFeatureProvider(_extractor(tiny_qwen_dir))
    Trainer(cfg, episodes[:2], episodes[2:], feature_provider=provider, log=lambda line: None).train()
    return out / "latest"


def _lora_state(extractor: VLFeatureExtractor) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in extractor.named_parameters() if "lora_" in n}


def test_stage2_trains_lm_lora_and_heads_only(tmp_path, tiny_qwen_dir, episodes, stage1_ckpt) -> None:
    extractor = _extractor(tiny_qwen_dir)
    cfg = _cfg(tmp_path, tiny_qwen_dir, init_from=str(stage1_ckpt))
    trainer = Trainer(cfg, episodes[:2], episodes[2:], extractor=extractor, log=lambda line: None)
    stage1 = load_policy(stage1_ckpt)
    for key, value in stage1.state_dict().items():  # heads (and statistics) start from stage 1
        assert torch.equal(trainer.policy.state_dict()[key].cpu(), value), key
    assert [g["name"] for g in trainer.optimizer.param_groups] == ["expert", "sensor", "lora"]
    assert [g["base_lr"] for g in trainer.optimizer.param_groups] == [1e-3, 1e-3, 1e-2]

    # One backward: gradients reach exactly the LM LoRA weights and the policy.
    batch = trainer.make_batch(trainer.items_for(0))
    assert isinstance(batch.vl_input, list) and len(batch.vl_input[0][0]) == 2  # two views per sample
    pred = trainer.module(batch.vl_input, batch.windows, batch.states, batch.vl_age)
    pred.square().mean().backward()
    with_grad = {
        n for n, p in trainer.module.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0
    }
    lora = {n for n in with_grad if n.startswith("extractor.")}
    assert lora and all("lora_" in n and "language_model" in n for n in lora), sorted(lora)[:5]
    assert not any("visual" in n for n in with_grad)
    assert any(n.startswith("policy.sensor_encoder.") for n in with_grad)
    assert any(n.startswith("policy.action_expert.") for n in with_grad)
    frozen = [p for n, p in extractor.named_parameters() if "lora_" not in n]
    assert frozen and all(not p.requires_grad and p.grad is None for p in frozen)
    trainer.optimizer.zero_grad(set_to_none=True)

    before = _lora_state(extractor)
    summary = trainer.train()
    assert summary["step"] == 6 and all(np.isfinite(h["loss"]) for h in trainer.history)
    after = _lora_state(extractor)
    changed = [n for n in before if not torch.equal(before[n], after[n])]
    assert any("lora_B" in n for n in changed) and any("lora_A" in n for n in changed)

    # Checkpoint: policy + peft adapter; the VLM node's adapter id and features match.
    out = tmp_path / "best"
    config, metadata = read_checkpoint_config(out)
    assert metadata["vl_model_id"] == extractor.model_id and metadata["stage"] == 2
    assert metadata["vl_adapter_path"] == "adapter" and metadata["action_space"] == "ee_delta"
    assert metadata["init_from"] == str(stage1_ckpt)
    reloaded = _extractor(tiny_qwen_dir, out / "adapter")
    assert reloaded.adapter_id == metadata["vl_adapter_id"] and reloaded.model_id == metadata["vl_model_id"]
    latest = tmp_path / "latest"
    reloaded_latest = _extractor(tiny_qwen_dir, latest / "adapter")
    ep = episodes[2]
    views = ep.load_frames(4)
    trained_features = extractor.extract(views, ep.prompt).features
    torch.testing.assert_close(
        reloaded_latest.extract(views, ep.prompt).features, trained_features, rtol=1e-4, atol=1e-5
    )
    policy = load_policy(latest)
    vl = trained_features.numpy()
    # A later stage-2 run started from this checkpoint continues its LoRA and heads.
    again = Trainer(
        _cfg(tmp_path / "again", tiny_qwen_dir, init_from=str(latest)),
        episodes[:2],
        extractor=_extractor(tiny_qwen_dir),
        log=lambda line: None,
    )
    continued = _lora_state(again.extractor)
    assert continued.keys() == after.keys()
    assert all(torch.equal(continued[k], after[k]) for k in after)
    with pytest.raises(ValueError, match="does not fit"):
        Trainer(
            _cfg(tmp_path / "again2", tiny_qwen_dir, init_from=str(latest), lora_target="attention"),
            episodes[:2],
            extractor=_extractor(tiny_qwen_dir),
        )
    assert np.array_equal(
        policy.predict(vl, ep.sensor_windows[4], ep.states[4], 0.3),
        trainer.policy.predict(vl, ep.sensor_windows[4], ep.states[4], 0.3),
    )


def test_stage2_resume_and_gradient_checkpointing_are_exact(
    tmp_path, tiny_qwen_dir, episodes, stage1_ckpt
) -> None:
    kw = dict(total_steps=4, eval_every=2, save_every=0, init_from=str(stage1_ckpt))
    straight = Trainer(
        _cfg(tmp_path / "a", tiny_qwen_dir, **kw),
        episodes[:2],
        episodes[2:],
        extractor=_extractor(tiny_qwen_dir),
        log=lambda line: None,
    )
    straight.train()
    first = Trainer(
        _cfg(tmp_path / "b", tiny_qwen_dir, **kw),
        episodes[:2],
        episodes[2:],
        extractor=_extractor(tiny_qwen_dir),
        log=lambda line: None,
    )
    first.train(stop_at=2)
    second_extractor = _extractor(tiny_qwen_dir)
    second = Trainer(
        _cfg(tmp_path / "b", tiny_qwen_dir, **kw),
        episodes[:2],
        episodes[2:],
        extractor=second_extractor,
        log=lambda line: None,
    )
    second.train(resume=True)
    for key, value in straight.policy.state_dict().items():
        torch.testing.assert_close(second.policy.state_dict()[key], value, rtol=1e-5, atol=1e-6, msg=key)
    a, b = _lora_state(straight.extractor), _lora_state(second_extractor)
    assert a.keys() == b.keys() and a
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=key)

    checkpointed = Trainer(
        _cfg(tmp_path / "c", tiny_qwen_dir, **kw, gradient_checkpointing=True),
        episodes[:2],
        episodes[2:],
        extractor=_extractor(tiny_qwen_dir),
        log=lambda line: None,
    )
    base = checkpointed.extractor.model.get_base_model()
    assert (
        getattr(base, "is_activation_checkpointing", None)
        or base.model.language_model.gradient_checkpointing
    )
    checkpointed.train()
    c = _lora_state(checkpointed.extractor)
    for key in a:
        torch.testing.assert_close(c[key], a[key], rtol=1e-4, atol=1e-5, msg=key)


def test_stage2_rejects_features_of_another_model(tmp_path, tiny_qwen_dir, episodes, stage1_ckpt) -> None:
    other = tmp_path / "other_ckpt"
    import json
    import shutil

    shutil.copytree(stage1_ckpt, other)
    doc = json.loads((other / "config.json").read_text())
    doc["metadata"]["vl_model_id"] = "Qwen2.5-VL-3B-Instruct@0123456789"
    (other / "config.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="VL features"):
        Trainer(
            _cfg(tmp_path / "x", tiny_qwen_dir, init_from=str(other)),
            episodes[:2],
            extractor=_extractor(tiny_qwen_dir),
        )
