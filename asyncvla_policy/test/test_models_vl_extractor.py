"""VLFeatureExtractor on a tiny random Qwen2.5-VL directory (same loading path as the real 3B)."""
from __future__ import annotations

import os
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

from asyncvla_policy.config import VLConfig  # noqa: E402
from asyncvla_policy.pooling import adaptive_pool_weights, masked_adaptive_avg_pool  # noqa: E402
from asyncvla_policy.vl_extractor import VLFeatureExtractor, resolve_dtype  # noqa: E402
from asyncvla_policy.vl_inputs import expected_visual_tokens  # noqa: E402
from asyncvla_testing.tiny_vlm import ensure_tiny_qwen_vl, special_token_ids  # noqa: E402

SIZE = (112, 84)  # (width, height): 4x3 merged tokens = 12 visual tokens per view
K = 8
PROMPT = "Insert the needle through the trocar into the eye phantom model"


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Built once per session (shared by every test module through the session's base temp dir)."""
    return ensure_tiny_qwen_vl(tmp_path_factory.getbasetemp() / "tiny_qwen_vl")


@pytest.fixture(scope="module")
def extractor(tiny_qwen_dir: str) -> VLFeatureExtractor:
    return VLFeatureExtractor.from_pretrained(tiny_qwen_dir, image_size=SIZE, num_feature_tokens=K)


def _views(n: int, seed: int = 0, shape: tuple[int, int] = (120, 160)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*shape, 3), dtype=np.uint8) for _ in range(n)]


# ---------------------------------------------------------------- tiny model directory
def test_tiny_directory_is_consistent(tiny_qwen_dir: str, extractor: VLFeatureExtractor) -> None:
    files = {p.name for p in Path(tiny_qwen_dir).iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "preprocessor_config.json", "chat_template.json"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    config = extractor.model.config
    ids = special_token_ids(extractor.tokenizer)
    assert config.image_token_id == ids["image_token_id"] == extractor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert config.vision_start_token_id == ids["vision_start_token_id"]
    assert len(extractor.tokenizer) <= config.text_config.vocab_size
    assert config.vision_config.out_hidden_size == config.text_config.hidden_size


def test_chat_format_matches_the_original(extractor: VLFeatureExtractor) -> None:
    text = extractor.inputs.chat_text(2, PROMPT)
    user = text.split("<|im_start|>user\n")[1]
    assert user == "<|vision_start|><|image_pad|><|vision_end|>" * 2 + PROMPT + "<|im_end|>\n"
    assert "assistant" not in text.split("<|im_start|>user")[1]  # no generation prompt


# ---------------------------------------------------------------- features
def test_extract_shape_and_metadata(extractor: VLFeatureExtractor) -> None:
    result = extractor.extract(_views(3), PROMPT)
    assert result.features.shape == (K, extractor.feature_dim) == (K, 64)
    assert result.features.dtype == torch.float32 and result.features.device.type == "cpu"
    assert result.feature_dim == 64 and result.num_views == 3
    assert result.compute_time > 0
    n_text = len(extractor.tokenizer(extractor.inputs.chat_text(3, PROMPT), add_special_tokens=False)["input_ids"])
    assert result.token_count == n_text - 3 + 3 * expected_visual_tokens(SIZE) == n_text + 3 * 11
    assert torch.isfinite(result.features).all()


def test_same_input_same_features_and_prompt_matters(extractor: VLFeatureExtractor) -> None:
    views = _views(2)
    a = extractor.extract(views, PROMPT).features
    b = extractor.extract([v.copy() for v in views], PROMPT).features
    assert torch.equal(a, b)
    c = extractor.extract(views, "Retract the needle").features
    assert (a - c).abs().max() > 1e-3
    d = extractor.extract(_views(2, seed=1), PROMPT).features
    assert (a - d).abs().max() > 1e-3


def test_views_are_resized_to_image_size(extractor: VLFeatureExtractor) -> None:
    small = extractor.extract(_views(1, shape=(84, 112)), PROMPT)
    large = extractor.extract(_views(1, shape=(720, 1280)), PROMPT)
    assert small.token_count == large.token_count


def test_batch_matches_single_with_padding(extractor: VLFeatureExtractor) -> None:
    """Samples of different lengths are left-padded; padding must not leak into the pooling."""
    samples = [(_views(3), PROMPT), (_views(1, seed=2), "Stop")]
    with torch.no_grad():
        batch = extractor.encode_batch(samples)
    assert batch.shape == (2, K, 64)
    for i, (views, prompt) in enumerate(samples):
        torch.testing.assert_close(batch[i].cpu(), extractor.extract(views, prompt).features, atol=1e-4, rtol=1e-4)


def test_mean_of_tokens_approximates_global_mean(extractor: VLFeatureExtractor) -> None:
    """The original system used the global mean over tokens; the mean of the K pooled tokens approximates it."""
    inputs = extractor.inputs.build([(_views(1), PROMPT)])
    with torch.no_grad():
        hidden = extractor._core_model()(**inputs.model_kwargs(), use_cache=False).last_hidden_state[0]
    pooled = extractor.extract(_views(1), PROMPT).features
    torch.testing.assert_close(pooled, masked_adaptive_avg_pool(hidden[None], None, K)[0])
    # Exact when K divides L; at realistic sizes (5 views at 640x360: L ~ 1521, K = 64) the
    # per-token weights of "mean of bins" deviate from 1/L by ~4% on average (bin-edge tokens).
    trimmed = hidden[: hidden.shape[0] // 4 * 4]
    torch.testing.assert_close(masked_adaptive_avg_pool(trimmed[None], None, 4)[0].mean(0), trimmed.mean(0))
    effective = adaptive_pool_weights(1521, 64).mean(0) * 1521
    assert (effective - 1).abs().mean() < 0.1
    data = torch.randn(1, 1521, 16) + torch.linspace(-3, 3, 1521)[None, :, None]
    torch.testing.assert_close(
        masked_adaptive_avg_pool(data, None, 64)[0].mean(0), data[0].mean(0), atol=0.02, rtol=0
    )


def test_feature_layer(tiny_qwen_dir: str, extractor: VLFeatureExtractor) -> None:
    views = _views(1)
    last = extractor.extract(views, PROMPT).features
    explicit_last = VLFeatureExtractor.from_pretrained(
        tiny_qwen_dir, image_size=SIZE, num_feature_tokens=K, feature_layer=2
    )
    assert torch.equal(explicit_last.extract(views, PROMPT).features, last)
    middle = VLFeatureExtractor.from_pretrained(tiny_qwen_dir, image_size=SIZE, num_feature_tokens=K, feature_layer=1)
    assert (middle.extract(views, PROMPT).features - last).abs().max() > 1e-3
    assert middle.model_id != extractor.model_id
    with pytest.raises(ValueError, match="feature_layer 5 out of range"):
        VLFeatureExtractor.from_pretrained(tiny_qwen_dir, feature_layer=5)


def test_identity_properties(tiny_qwen_dir: str, extractor: VLFeatureExtractor) -> None:
    assert extractor.model_id.startswith("tiny_qwen_vl@") and len(extractor.model_id.split("@")[1]) == 10
    assert extractor.adapter_id == ""
    assert extractor.feature_dim == 64
    again = VLFeatureExtractor.from_pretrained(tiny_qwen_dir, image_size=SIZE, num_feature_tokens=K)
    assert again.model_id == extractor.model_id  # stable across loads
    other = VLFeatureExtractor.from_pretrained(tiny_qwen_dir, image_size=(224, 224), num_feature_tokens=K)
    assert other.model_id != extractor.model_id  # feature settings are part of the id


def test_at_image_size_shares_the_model_and_matches_a_fresh_load(
        tiny_qwen_dir: str, extractor: VLFeatureExtractor) -> None:
    """The timing sweep's way to change view size: same model object, same features as an
    extractor loaded at that size, the other settings kept."""
    resized = extractor.at_image_size((224, 140))
    assert resized.model is extractor.model and resized.image_size == (224, 140)
    assert (resized.num_feature_tokens, resized.feature_layer) == (K, extractor.feature_layer)
    assert resized.tokens_per_view == expected_visual_tokens((224, 140)) != extractor.tokens_per_view
    fresh = VLFeatureExtractor.from_pretrained(tiny_qwen_dir, image_size=(224, 140), num_feature_tokens=K)
    assert resized.model_id == fresh.model_id
    views = _views(2)
    torch.testing.assert_close(resized.extract(views, PROMPT).features,
                               fresh.extract(views, PROMPT).features, atol=1e-5, rtol=1e-5)
    assert extractor.image_size == SIZE  # the original is unchanged


def test_vl_config_round_trip(tiny_qwen_dir: str, extractor: VLFeatureExtractor) -> None:
    cfg = extractor.vl_config(prompt=PROMPT)
    assert (cfg.image_width, cfg.image_height, cfg.num_feature_tokens) == (*SIZE, K)
    rebuilt = VLFeatureExtractor.from_vl_config(VLConfig.from_dict(cfg.to_dict()))
    assert rebuilt.model_id == extractor.model_id
    views = _views(1)
    assert torch.equal(rebuilt.extract(views, cfg.prompt).features, extractor.extract(views, PROMPT).features)


def test_default_size_gives_fixed_token_count(tiny_qwen_dir: str) -> None:
    ex = VLFeatureExtractor.from_pretrained(tiny_qwen_dir)  # 640x360, K=64
    assert ex.tokens_per_view == expected_visual_tokens((640, 360)) == 299
    result = ex.extract(_views(1, shape=(480, 640)), PROMPT)
    assert result.features.shape == (64, 64)
    assert result.token_count > 299


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "images, message",
    [
        ([], "no views given"),
        (_views(6, shape=(30, 30)), "6 views given, at most max_views=5"),
        ([np.zeros((84, 112, 4), np.uint8)], r"view 0 must be HxWx3 \(RGB\)"),
        ([np.zeros((84, 112), np.uint8)], r"view 0 must be HxWx3"),
        ([np.zeros((0, 112, 3), np.uint8)], "view 0 has zero size"),
        ([np.zeros((84, 112, 3), np.uint8), np.full((84, 112, 3), np.nan, np.float32)], "view 1 contains NaN"),
        ([np.zeros((84, 112, 3), np.float32)], "view 0 has dtype float32, expected uint8"),
        (np.zeros((84, 112, 3), np.uint8), "list of HxWx3 arrays"),
        (["not an image"], "view 0 must be a numpy array"),
    ],
)
def test_bad_images_raise(extractor: VLFeatureExtractor, images: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        extractor.extract(images, PROMPT)


def test_bad_prompt_raises(extractor: VLFeatureExtractor) -> None:
    with pytest.raises(ValueError, match="prompt must be a string"):
        extractor.extract(_views(1), None)
    with pytest.raises(ValueError, match="must not contain image placeholder"):
        extractor.extract(_views(1), "look at <|image_pad|>")


def test_missing_model_path_is_clear(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"/no/such/model.*not a local directory"):
        VLFeatureExtractor.from_pretrained("/no/such/model")
    with pytest.raises(FileNotFoundError, match="not in the Hugging Face cache"):
        VLFeatureExtractor.from_pretrained("nobody-xyz/not-a-cached-model")
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        VLFeatureExtractor.from_pretrained(str(tmp_path))


def test_dtype_resolution() -> None:
    assert resolve_dtype(None, torch.device("cpu")) == torch.float32
    assert resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert resolve_dtype("float16", torch.device("cpu")) == torch.float16
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_dtype("int8", torch.device("cpu"))


# ---------------------------------------------------------------- pooling
@pytest.mark.parametrize("length, k", [(7, 3), (8, 4), (5, 8), (64, 64), (300, 64)])
def test_pool_matches_adaptive_avg_pool(length: int, k: int) -> None:
    hidden = torch.randn(2, length, 5)
    ref = torch.nn.functional.adaptive_avg_pool1d(hidden.transpose(1, 2), k).transpose(1, 2)
    torch.testing.assert_close(masked_adaptive_avg_pool(hidden, None, k), ref)
    assert torch.allclose(adaptive_pool_weights(length, k).sum(1), torch.ones(k))


def test_pool_ignores_padding_on_either_side() -> None:
    hidden = torch.randn(3, 10, 4)
    mask = torch.ones(3, 10, dtype=torch.long)
    mask[0, :4] = 0  # left padding
    mask[1, 7:] = 0  # right padding
    pooled = masked_adaptive_avg_pool(hidden, mask, 3)
    torch.testing.assert_close(pooled[0], masked_adaptive_avg_pool(hidden[:1, 4:], None, 3)[0])
    torch.testing.assert_close(pooled[1], masked_adaptive_avg_pool(hidden[1:2, :7], None, 3)[0])
    torch.testing.assert_close(pooled[2], masked_adaptive_avg_pool(hidden[2:], None, 3)[0])
    with pytest.raises(ValueError, match="no valid token"):
        masked_adaptive_avg_pool(hidden, torch.zeros(3, 10), 3)
