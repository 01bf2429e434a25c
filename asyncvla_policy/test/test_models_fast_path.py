"""The optimised VL path (torch preprocessing, no LM layers past the feature layer) against the
plain transformers path, on the tiny Qwen2.5-VL: same features, stated tolerances.

Tolerances (float32, CPU): pixel_values 1e-6 absolute (the same arithmetic in another library);
features 1e-4 absolute (the same model; only the preprocessing's rounding and the kernel order of
a shorter stack differ).
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
if getattr(sys.modules.get("asyncvla_training"), "__file__", "") is None:
    del sys.modules["asyncvla_training"]

from asyncvla_policy.fast_preprocess import TorchPatchifier  # noqa: E402
from asyncvla_policy.vl_extractor import VLFeatureExtractor  # noqa: E402
from asyncvla_testing.tiny_vlm import ensure_tiny_qwen_vl  # noqa: E402

SIZE = (112, 84)  # (width, height), already 28-aligned
PROMPT = "Insert the needle through the trocar into the eye phantom model"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return ensure_tiny_qwen_vl(tmp_path_factory.getbasetemp() / "tiny_qwen_vl")


def _views(n: int, seed: int = 0, shape: tuple[int, int] = (120, 160)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*shape, 3), dtype=np.uint8) for _ in range(n)]


def _extractor(tiny_dir: str, feature_layer: int = -1) -> VLFeatureExtractor:
    return VLFeatureExtractor.from_pretrained(tiny_dir, image_size=SIZE, num_feature_tokens=6,
                                              feature_layer=feature_layer)


def test_torch_patchify_matches_the_pil_processor(tiny_dir: str) -> None:
    extractor = _extractor(tiny_dir)
    builder = extractor.inputs
    views = [v[:84, :112] for v in _views(3, seed=1)]
    ours, grid = builder.patchifier(views)
    reference = builder.image_processor(images=views, size=builder.size_kwargs, return_tensors="pt")
    assert torch.equal(grid, reference["image_grid_thw"])
    assert ours.shape == reference["pixel_values"].shape
    assert ours.dtype == torch.float32
    assert float((ours - reference["pixel_values"]).abs().max()) <= 1e-6


def test_patchify_refuses_unaligned_views(tiny_dir: str) -> None:
    patchifier = TorchPatchifier.from_image_processor(_extractor(tiny_dir).inputs.image_processor)
    with pytest.raises(ValueError, match="multiples of 28"):
        patchifier([np.zeros((84, 100, 3), np.uint8)])


@pytest.mark.parametrize("feature_layer", [-1, 1, 0])
def test_optimised_features_match_the_plain_path(tiny_dir: str, feature_layer: int) -> None:
    extractor = _extractor(tiny_dir, feature_layer)
    views = _views(2, seed=feature_layer + 5)
    model_id = extractor.model_id
    fast = extractor.extract(views, PROMPT)
    extractor.optimized = False
    plain = extractor.extract(views, PROMPT)
    assert extractor.inputs.preprocess == "hf"
    assert extractor.model_id == model_id  # the same features, so the same id
    assert fast.features.shape == plain.features.shape
    assert fast.token_count == plain.token_count
    diff = float((fast.features - plain.features).abs().max())
    assert diff <= 1e-4, diff
    assert float(plain.features.abs().max()) > 1e-3  # not trivially zero


def test_truncation_is_undone_even_when_the_forward_fails(tiny_dir: str) -> None:
    extractor = _extractor(tiny_dir, feature_layer=1)
    lm = extractor._core_model().language_model
    layers, norm = lm.layers, lm.norm
    seen: list[int] = []

    def fail(module, args):
        seen.append(len(lm.layers))
        raise RuntimeError("injected")

    handle = layers[0].register_forward_pre_hook(fail)
    try:
        with pytest.raises(RuntimeError, match="injected"):
            extractor.extract(_views(1), PROMPT)
    finally:
        handle.remove()
    assert seen == [1]  # only the first of the 2 layers was going to run
    assert lm.layers is layers and lm.norm is norm and len(lm.layers) == 2


def test_lora_gradients_through_the_truncated_stack(tiny_dir: str) -> None:
    extractor = _extractor(tiny_dir, feature_layer=1)
    names = extractor.attach_lora(r=4, alpha=8, dropout=0.0)
    extractor.train()
    features = extractor.encode_batch([(_views(1), PROMPT)])
    features.pow(2).mean().backward()
    grads = {n: p.grad for n, p in extractor.named_parameters() if p.requires_grad}
    used = [n for n, g in grads.items() if "layers.0." in n and g is not None
            and float(g.abs().sum()) > 0]
    unused = [n for n, g in grads.items() if "layers.1." in n and g is not None]
    assert names and used and not unused


def test_token_ids_expanded_in_id_space_equal_the_processor_way(tiny_dir: str) -> None:
    builder = _extractor(tiny_dir).inputs
    batch = [(_views(2, seed=1), PROMPT), (_views(1, seed=2), "short")]  # different lengths
    builder.preprocess = "torch"
    fast = builder.build(batch)
    builder.preprocess = "hf"
    plain = builder.build(batch)
    assert torch.equal(fast.input_ids, plain.input_ids)
    assert torch.equal(fast.attention_mask, plain.attention_mask)
    assert torch.equal(fast.mm_token_type_ids, plain.mm_token_type_ids)
    assert int(fast.attention_mask[1].sum()) < fast.input_ids.shape[1]  # row 1 is left-padded
    assert float((fast.pixel_values - plain.pixel_values).abs().max()) <= 1e-6


def test_grouped_vision_attention_equals_the_per_window_loop(tiny_dir: str) -> None:
    from asyncvla_policy import vision_attention

    extractor = _extractor(tiny_dir)
    modules = vision_attention.vision_attention_modules(extractor.model)
    assert modules and all("forward" in m.__dict__ for m in modules)  # installed (optimised)
    module = modules[0]
    torch.manual_seed(0)
    seq, head_dim = 23, module.head_dim
    hidden = torch.randn(seq, module.dim)
    cos, sin = torch.randn(seq, head_dim), torch.randn(seq, head_dim)
    cu = torch.tensor([0, 4, 8, 11, 15, 19, 23], dtype=torch.int32)  # lengths 4,4,3,4,4,4
    grouped = module(hidden, cu, position_embeddings=(cos, sin))
    extractor.optimized = False
    assert not any("forward" in m.__dict__ for m in modules)  # uninstalled
    loop = module(hidden, cu, position_embeddings=(cos, sin))
    assert float((grouped - loop).abs().max()) <= 1e-6


def test_many_windows_per_view_match_the_plain_path(tiny_dir: str) -> None:
    """224x168 views: 4x3 windows of 2x2 merged tokens each, with partial ones at the edges."""
    extractor = VLFeatureExtractor.from_pretrained(tiny_dir, image_size=(252, 196),
                                                   num_feature_tokens=6)
    views = _views(3, seed=9, shape=(196, 252))
    fast = extractor.extract(views, PROMPT)
    extractor.optimized = False
    plain = extractor.extract(views, PROMPT)
    assert float((fast.features - plain.features).abs().max()) <= 1e-4
