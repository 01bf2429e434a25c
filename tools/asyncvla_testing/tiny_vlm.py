"""Offline stand-ins: a tiny random Qwen2.5-VL directory, tiny policy widths, the 3B architecture.

Why: nothing can be downloaded in CI or on the dev machines, yet the VL extractor, LoRA and the
profiler must be exercised through the *same* loading path a real ``Qwen2.5-VL-3B-Instruct``
directory takes. ``make_tiny_qwen_vl`` therefore writes a complete model directory - config.json,
model.safetensors, a real ``Qwen2Tokenizer`` (byte-level BPE trained in-process with the
``tokenizers`` library on a few sentences, plus the Qwen special tokens), the image processor's
``preprocessor_config.json`` and a Qwen-style ``chat_template.json`` - with random weights.
The features it produces are meaningless; shapes, code paths and timing structure are real.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch


QWEN_SPECIAL_TOKENS = (
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
ENDOFTEXT = "<|endoftext|>"
_COMPLETE_MARKER = ".asyncvla_tiny_complete"

# Same structure as Qwen2.5-VL's template: default system message, one turn per message, images
# and videos as vision_start/pad/end placeholders (expanded later by the input builder). No newline
# directly after a block tag: transformers renders templates with trim_blocks=True.
QWEN_STYLE_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}"
    "{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = (
    "Insert the needle through the trocar into the eye phantom model.",
    "You are a helpful assistant. Move the robot slowly and stop at the target.",
    "The force sensor and the OCT A-line show the tissue layers in front of the needle tip.",
    "system user assistant image video picture camera view left right top bottom",
    "0 1 2 3 4 5 6 7 8 9 10 100 mm degrees seconds",
)

# Preprocessor settings as in the Qwen2.5-VL repositories (CLIP mean/std, 14 px patches, 2x2 merge).
_PREPROCESSOR_CONFIG = {
    "min_pixels": 3136,
    "max_pixels": 12845056,
    "patch_size": 14,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "image_processor_type": "Qwen2VLImageProcessor",
    "processor_class": "Qwen2_5_VLProcessor",
}


def build_tiny_tokenizer(vocab_size: int = 512) -> Any:
    """A ``Qwen2Tokenizer`` with a byte-level BPE trained on a few sentences (offline, ~50 ms)."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[ENDOFTEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(list(_CORPUS) * 4, trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return Qwen2Tokenizer(
        vocab=model["vocab"],
        merges=merges,
        eos_token="<|im_end|>",
        pad_token=ENDOFTEXT,
        unk_token=None,
        extra_special_tokens=list(QWEN_SPECIAL_TOKENS),
    )


def special_token_ids(tokenizer: Any) -> dict[str, int]:
    """Ids the model config must agree with (image/video/vision start/end, bos/eos/pad)."""
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in (ENDOFTEXT, *QWEN_SPECIAL_TOKENS)}
    return {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "bos_token_id": ids[ENDOFTEXT],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids[ENDOFTEXT],
    }


def _qwen_config(text: dict[str, Any], vision: dict[str, Any], ids: dict[str, int]) -> Any:
    from transformers import Qwen2_5_VLConfig

    text = dict(text)
    text.update({k: ids[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id")})
    return Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["image_token_id"],
        video_token_id=ids["video_token_id"],
        vision_start_token_id=ids["vision_start_token_id"],
        vision_end_token_id=ids["vision_end_token_id"],
        tie_word_embeddings=True,
    )


def tiny_qwen_vl_config(ids: dict[str, int], vocab_size: int, hidden: int = 64) -> Any:
    """LM hidden 64, 2 layers, 4 heads / 2 KV heads; vision depth 2, hidden 32, window attention."""
    heads = 4
    head_dim = hidden // heads
    half = head_dim // 2  # mRoPE sections must sum to head_dim / 2
    mrope = [half - 2 * (half * 3 // 8), half * 3 // 8, half * 3 // 8]
    text = {
        "vocab_size": vocab_size,
        "hidden_size": hidden,
        "intermediate_size": 2 * hidden,
        "num_hidden_layers": 2,
        "num_attention_heads": heads,
        "num_key_value_heads": 2,
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": mrope},
    }
    vision = {
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "out_hidden_size": hidden,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 56,  # 2x2 merged tokens per window: exercises the windowed attention path
        "fullatt_block_indexes": [1],
        "tokens_per_second": 2,
    }
    return _qwen_config(text, vision, ids)


def qwen25_vl_3b_config(token_ids: dict[str, int] | None = None) -> Any:
    """The Qwen2.5-VL-3B-Instruct architecture (3.75B params) for random-weight timing runs.

    ``token_ids`` overrides the special token ids (use ``special_token_ids(tiny_tokenizer)`` to
    pair the 3B-shaped model with the tiny tokenizer, so no download is needed).
    """
    ids = {
        "image_token_id": 151655,
        "video_token_id": 151656,
        "vision_start_token_id": 151652,
        "vision_end_token_id": 151653,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "pad_token_id": 151643,
    }
    ids.update(token_ids or {})
    text = {
        "vocab_size": 151936,
        "hidden_size": 2048,
        "intermediate_size": 11008,
        "num_hidden_layers": 36,
        "num_attention_heads": 16,
        "num_key_value_heads": 2,
        "max_position_embeddings": 128000,
        "max_window_layers": 70,
        "rms_norm_eps": 1e-6,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
    }
    vision = {
        "depth": 32,
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "out_hidden_size": 2048,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [7, 15, 23, 31],
        "tokens_per_second": 2,
    }
    return _qwen_config(text, vision, ids)


#: Architectures ``random_qwen_vl_config`` builds: the tiny test model and Qwen2.5-VL-3B.
RANDOM_ARCHS = ("tiny", "3b")


def random_qwen_vl_config(arch: str, tokenizer: Any) -> Any:
    """Config of a random-weight model of ``arch`` whose special tokens match ``tokenizer``.

    Why one function for both: timing runs build the 3B architecture and their CPU tests the
    tiny one through the same construction path (``build_random_qwen_vl``), so the tests cover
    everything but the size.
    """
    ids = special_token_ids(tokenizer)
    if arch == "3b":
        return qwen25_vl_3b_config(ids)
    if arch == "tiny":
        vocab_size = -(-len(tokenizer) // 64) * 64  # room for every token, padded like real vocabs
        return tiny_qwen_vl_config(ids, vocab_size)
    raise ValueError(f"unknown architecture {arch!r}; use one of {', '.join(RANDOM_ARCHS)}")


def build_random_qwen_vl(
    config: Any,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    attn_implementation: str = "sdpa",
    seed: int = 0,
) -> Any:
    """Instantiate ``Qwen2_5_VLForConditionalGeneration`` with random weights directly on ``device``."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(seed)
        model = Qwen2_5_VLForConditionalGeneration._from_config(
            config, dtype=dtype, attn_implementation=attn_implementation
        )
    return model.eval()


def make_tiny_qwen_vl(directory: str | Path, seed: int = 0) -> str:
    """Write a tiny random-weight Qwen2.5-VL model directory (a few seconds on CPU); returns it.

    Loadable with ``VLFeatureExtractor.from_pretrained(directory)`` exactly like the real model.
    """
    from transformers import GenerationConfig

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer()
    ids = special_token_ids(tokenizer)
    config = random_qwen_vl_config("tiny", tokenizer)
    model = build_random_qwen_vl(config, seed=seed)
    model.generation_config = GenerationConfig(
        bos_token_id=ids["bos_token_id"], eos_token_id=ids["eos_token_id"], pad_token_id=ids["pad_token_id"]
    )
    model.save_pretrained(str(directory), safe_serialization=True)
    tokenizer.save_pretrained(str(directory))
    (directory / "preprocessor_config.json").write_text(json.dumps(_PREPROCESSOR_CONFIG, indent=2) + "\n")
    (directory / "chat_template.json").write_text(
        json.dumps({"chat_template": QWEN_STYLE_CHAT_TEMPLATE}, indent=2) + "\n"
    )
    return str(directory)


def ensure_tiny_qwen_vl(directory: str | Path) -> str:
    """``make_tiny_qwen_vl`` unless ``directory`` already holds a complete tiny model (reuse).

    Built in a sibling temp directory and renamed into place, so a crashed build is never reused.
    """
    directory = Path(directory)
    if (directory / _COMPLETE_MARKER).is_file():
        return str(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    make_tiny_qwen_vl(staging)
    (staging / _COMPLETE_MARKER).write_text("ok\n")
    try:
        staging.rename(directory)
    except OSError:  # built concurrently by another process: keep theirs
        shutil.rmtree(staging, ignore_errors=True)
    return str(directory)


if __name__ == "__main__":
    # python tools/asyncvla_testing/tiny_vlm.py DIR: write (or reuse) the tiny model in DIR.
    if len(sys.argv) != 2:
        sys.exit("usage: python tools/asyncvla_testing/tiny_vlm.py DIRECTORY")
    print(ensure_tiny_qwen_vl(sys.argv[1]))
