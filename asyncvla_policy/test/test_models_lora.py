"""LoRA on the Qwen2.5-VL language model only: targets, trainability, save/load, merge."""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

# Run from a plain checkout: put the package dir first; pytest's importlib mode may have registered
# the ROS package *directory* as a namespace package "asyncvla_training" - drop it for the real one.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
if getattr(sys.modules.get("asyncvla_training"), "__file__", "") is None:
    del sys.modules["asyncvla_training"]

from asyncvla_policy.lora import (  # noqa: E402
    LM_ATTENTION_LORA_TARGET,
    LM_LORA_TARGET,
    lora_layer_names,
    lora_target_names,
)
from asyncvla_policy.vl_extractor import VLFeatureExtractor  # noqa: E402
from asyncvla_testing.tiny_vlm import ensure_tiny_qwen_vl, qwen25_vl_3b_config  # noqa: E402

SIZE = (112, 84)
PROMPT = "Insert the needle through the trocar into the eye phantom model"
LM_NAME = re.compile(r"model\.language_model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)$")
# Merging adds the low-rank product into fp32 weights; features then differ by float rounding only.
MERGE_ATOL = 1e-4


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return ensure_tiny_qwen_vl(tmp_path_factory.getbasetemp() / "tiny_qwen_vl")


def _extractor(path: str, adapter: str | None = None) -> VLFeatureExtractor:
    return VLFeatureExtractor.from_pretrained(path, adapter_path=adapter, image_size=SIZE, num_feature_tokens=4)


def _views(n: int = 2) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, (84, 112, 3), dtype=np.uint8) for _ in range(n)]


def _lora_extractor(path: str) -> VLFeatureExtractor:
    """Extractor with LoRA whose B matrices are non-zero (fresh LoRA is an exact no-op)."""
    ex = _extractor(path)
    ex.attach_lora(r=4, alpha=8, dropout=0.05)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in ex.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.2)
    return ex.eval()


def test_3b_architecture_targets_language_model_only() -> None:
    """On the real 3B module tree (meta device, no memory) the leaf-name list would hit the vision
    MLPs; the regex selects exactly the 36 x 7 LM projections."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration._from_config(qwen25_vl_3b_config())
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(3.75e9, rel=0.01)
    names = lora_target_names(model)
    assert len(names) == 36 * 7 and all(LM_NAME.match(n) for n in names)
    assert len(lora_target_names(model, LM_ATTENTION_LORA_TARGET)) == 36 * 4
    leaf = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    naive = [n for n, _ in model.named_modules() if n.endswith(leaf)]
    assert any(n.startswith("model.visual.blocks.") for n in naive)  # the collision being avoided


def test_attach_lora_only_on_language_model(tiny_qwen_dir: str) -> None:
    ex = _extractor(tiny_qwen_dir)
    names = ex.attach_lora(r=4, alpha=8)
    assert len(names) == 2 * 7  # 2 LM layers x 7 projections
    assert all(LM_NAME.search(n) for n in names)
    assert not any("visual" in n for n in lora_layer_names(ex.model))
    trainable = [n for n, p in ex.named_parameters() if p.requires_grad]
    assert trainable and all("lora_A" in n or "lora_B" in n for n in trainable)
    assert not any("visual" in n for n in trainable)
    assert ex.adapter_id == "in-memory-lora-r4-a8"
    with pytest.raises(ValueError, match="already attached"):
        ex.attach_lora()


def test_bad_target_is_rejected(tiny_qwen_dir: str) -> None:
    ex = _extractor(tiny_qwen_dir)
    with pytest.raises(ValueError, match="would hit vision modules"):
        ex.attach_lora(target=r".*mlp\.(gate|up|down)_proj")
    with pytest.raises(ValueError, match="matches no nn.Linear"):
        ex.attach_lora(target=r"nothing\.here")


@pytest.mark.parametrize("checkpointing", [False, True])
def test_gradients_reach_lora_only(tiny_qwen_dir: str, checkpointing: bool) -> None:
    ex = _lora_extractor(tiny_qwen_dir).train()
    if checkpointing:
        ex.enable_gradient_checkpointing()
    feats = ex.encode_batch([(_views(2), PROMPT), (_views(1), "Stop")])
    assert feats.shape == (2, 4, 64) and feats.requires_grad
    feats.square().mean().backward()
    lora = [p for n, p in ex.named_parameters() if "lora_" in n]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in lora)
    assert all(p.grad is None for n, p in ex.named_parameters() if "lora_" not in n)


def test_saved_adapter_reproduces_features_and_merge(tiny_qwen_dir: str, tmp_path: Path) -> None:
    ex = _lora_extractor(tiny_qwen_dir)
    views = _views()
    in_memory = ex.extract(views, PROMPT).features
    base = _extractor(tiny_qwen_dir).extract(views, PROMPT).features
    assert (in_memory - base).abs().max() > 1e-3  # the adapter does change the features

    ex.save_adapter(tmp_path / "adapter")
    saved = sorted(p.name for p in (tmp_path / "adapter").iterdir())
    assert "adapter_config.json" in saved and "adapter_model.safetensors" in saved
    assert not any(n.endswith((".bin", ".pt")) for n in saved)

    loaded = _extractor(tiny_qwen_dir, adapter=str(tmp_path / "adapter"))
    assert loaded.adapter_id.startswith("adapter@") and len(loaded.adapter_id) == len("adapter@") + 10
    assert not loaded.trainable_parameters()  # loaded for inference: frozen
    torch.testing.assert_close(loaded.extract(views, PROMPT).features, in_memory, atol=1e-6, rtol=0)

    loaded.merge_lora()
    assert not loaded.has_lora and not lora_layer_names(loaded.model)
    torch.testing.assert_close(loaded.extract(views, PROMPT).features, in_memory, atol=MERGE_ATOL, rtol=0)


def test_missing_adapter_is_clear(tiny_qwen_dir: str, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="LoRA adapter directory not found"):
        _extractor(tiny_qwen_dir, adapter=str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="no adapter_config.json"):
        _extractor(tiny_qwen_dir, adapter=str(tmp_path))


def test_lm_lora_target_is_a_full_match_regex() -> None:
    assert re.fullmatch(LM_LORA_TARGET, "model.language_model.layers.3.mlp.up_proj")
    assert re.fullmatch(LM_LORA_TARGET, "base_model.model.model.language_model.layers.0.self_attn.q_proj")
    assert not re.fullmatch(LM_LORA_TARGET, "model.visual.blocks.0.mlp.up_proj")
    assert not re.fullmatch(LM_LORA_TARGET, "model.language_model.layers.0.self_attn.q_proj.lora_A")
