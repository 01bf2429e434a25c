"""Turn camera views + a prompt into Qwen2.5-VL model inputs.

Why not ``AutoProcessor``: in transformers 5.x the Qwen2.5-VL processor always builds a *video*
processor, which requires torchvision. We only feed still images, and the robot PCs and the ROS
nodes should not need torchvision. So we load the two parts we need (tokenizer and image processor)
and do the processor's one extra step ourselves: expand each ``<|image_pad|>`` placeholder into as
many tokens as the image yields (grid_t*grid_h*grid_w / merge_size**2). The result is the same
``input_ids``/``pixel_values``/``image_grid_thw`` the processor produces, plus ``mm_token_type_ids``
(1 on image tokens) that transformers 5.x uses for the 3D (mRoPE) positions.

The image processor is pinned to the PIL backend (``Qwen2VLImageProcessorPil``) so features do not
change between a training machine with torchvision and a robot PC without it.

``image_size`` (width, height) - 640x360 by default, as the original system's receiver used - fixes the
number of visual tokens: each view is resized once, straight to the 28-aligned size
((640->644) x (360->364) -> 23 x 13 = 299 tokens for 640x360), and the image processor's min/max
pixel bounds are set to that area, so its own resize is the identity regardless of the processor
defaults stored with the model.

Preprocessing (``preprocess``): ``"torch"`` (default) rescales, normalises and patchifies in torch
on the model's device (``fast_preprocess.TorchPatchifier``); ``"hf"`` calls the PIL image processor
(the plain transformers path, kept as the reference). Both give the same ``pixel_values`` to float32
rounding.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from .fast_preprocess import TorchPatchifier

PREPROCESS_MODES = ("torch", "hf")
#: Part of the VL model id: bump when preprocessing changes what the features are.
#: 2: one resize straight to the 28-aligned size (1: resize to image_size, then the processor's).
PREPROCESS_VERSION = 2

IMAGE_PAD = "<|image_pad|>"
VISION_TOKENS = ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>")


def validate_views(images: object, max_views: int) -> list[np.ndarray]:
    """Check a list of HxWx3 uint8 RGB views; raise ValueError naming the view and the problem."""
    if isinstance(images, np.ndarray):
        raise ValueError("images must be a list of HxWx3 arrays (one per view), got a single array")
    if not isinstance(images, Sequence):
        raise ValueError(f"images must be a list of numpy arrays, got {type(images).__name__}")
    if len(images) == 0:
        raise ValueError("no views given: need at least 1 image")
    if len(images) > max_views:
        raise ValueError(f"{len(images)} views given, at most max_views={max_views} are allowed")
    for i, img in enumerate(images):
        if not isinstance(img, np.ndarray):
            raise ValueError(f"view {i} must be a numpy array, got {type(img).__name__}")
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"view {i} must be HxWx3 (RGB), got shape {img.shape}")
        if img.shape[0] == 0 or img.shape[1] == 0:
            raise ValueError(f"view {i} has zero size {img.shape}")
        if np.issubdtype(img.dtype, np.floating) and not np.isfinite(img).all():
            raise ValueError(f"view {i} contains NaN or inf values")
        if img.dtype != np.uint8:
            raise ValueError(f"view {i} has dtype {img.dtype}, expected uint8 RGB (0..255)")
    return list(images)


def resize_view(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an HxWx3 uint8 view to ``size`` = (width, height); area filter when shrinking."""
    width, height = size
    if image.shape[1] == width and image.shape[0] == height:
        return np.ascontiguousarray(image)
    shrink = width * height < image.shape[0] * image.shape[1]
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(image), (width, height), interpolation=interp)


def aligned_size(size: tuple[int, int], factor: int) -> tuple[int, int]:
    """(width, height) rounded to multiples of ``factor``, at least one each (Qwen's smart_resize)."""
    width, height = size
    return (max(factor, round(width / factor) * factor),
            max(factor, round(height / factor) * factor))


def load_chat_template(model_path: str, tokenizer: object) -> str:
    """The chat template: the tokenizer's own, else ``chat_template.jinja``/``.json`` in the model.

    Qwen2.5-VL repositories ship it as ``chat_template.json`` (older) or ``.jinja`` (newer).
    """
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, str) and template:
        return template
    from transformers.utils import cached_file

    for name in ("chat_template.jinja", "chat_template.json"):
        path = cached_file(
            model_path,
            name,
            local_files_only=True,
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
        )
        if path is None:
            continue
        text = Path(path).read_text(encoding="utf-8")
        if name.endswith(".json"):
            text = json.loads(text).get("chat_template", "")
        if text:
            return text
    raise ValueError(f"no chat template found for {model_path} (tokenizer, chat_template.jinja/.json)")


@dataclass
class QwenVLInputs:
    """Model-ready tensors for a batch plus the mask used for pooling."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    mm_token_type_ids: torch.Tensor
    pixel_values: torch.Tensor
    image_grid_thw: torch.Tensor

    def to(self, device: torch.device | str, pixel_dtype: torch.dtype) -> QwenVLInputs:
        return QwenVLInputs(
            input_ids=self.input_ids.to(device),
            attention_mask=self.attention_mask.to(device),
            mm_token_type_ids=self.mm_token_type_ids.to(device),
            pixel_values=self.pixel_values.to(device=device, dtype=pixel_dtype),
            image_grid_thw=self.image_grid_thw.to(device),
        )

    def model_kwargs(self) -> dict[str, torch.Tensor]:
        return {
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
            "mm_token_type_ids": self.mm_token_type_ids,
            "pixel_values": self.pixel_values,
            "image_grid_thw": self.image_grid_thw,
        }


class QwenVLInputBuilder:
    """Chat-format, tokenise and patchify (views, prompt) samples for Qwen2.5-VL."""

    def __init__(
        self,
        tokenizer: object,
        image_processor: object,
        chat_template: str,
        image_size: tuple[int, int],
        max_views: int,
        preprocess: str = "torch",
    ) -> None:
        if preprocess not in PREPROCESS_MODES:
            raise ValueError(f"preprocess must be one of {PREPROCESS_MODES}, got {preprocess!r}")
        self.preprocess = preprocess
        #: Where "torch" preprocessing puts pixel_values (the extractor sets its device).
        self.pixel_device = torch.device("cpu")
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.chat_template = chat_template
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.max_views = int(max_views)
        self.image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_PAD)
        if self.image_token_id is None or self.image_token_id == getattr(tokenizer, "unk_token_id", -1):
            raise ValueError(f"tokenizer has no {IMAGE_PAD} token: not a Qwen2.5-VL tokenizer")
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        patch, merge = int(image_processor.patch_size), int(image_processor.merge_size)
        factor = patch * merge
        if min(self.image_size) < factor:
            raise ValueError(f"image_size {self.image_size} must be at least {factor} px per side")
        if max(self.image_size) / min(self.image_size) > 100:
            raise ValueError(f"image_size {self.image_size} has an extreme aspect ratio (> 100)")
        self.merge_length = merge**2
        self.aligned_size = aligned_size(self.image_size, factor)
        pixels = self.aligned_size[0] * self.aligned_size[1]
        self.size_kwargs = {"shortest_edge": pixels, "longest_edge": pixels}
        self.patchifier = TorchPatchifier.from_image_processor(image_processor)
        self.tokens_per_view = expected_visual_tokens(self.image_size, patch, merge)

    def chat_text(self, num_views: int, prompt: str) -> str:
        """One user message: every view as an image item, then the prompt; no generation prompt."""
        content = [{"type": "image"} for _ in range(num_views)] + [{"type": "text", "text": prompt}]
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": content}],
            chat_template=self.chat_template,
            tokenize=False,
            add_generation_prompt=False,
        )

    def build(self, samples: Sequence[tuple[Sequence[np.ndarray], str]]) -> QwenVLInputs:
        """Validate, resize, patchify and tokenise a batch of (views, prompt) samples."""
        if len(samples) == 0:
            raise ValueError("empty batch: need at least one (views, prompt) sample")
        texts: list[str] = []
        all_views: list[np.ndarray] = []
        counts: list[int] = []
        for i, sample in enumerate(samples):
            if not isinstance(sample, (tuple, list)) or len(sample) != 2:
                raise ValueError(f"sample {i} must be a (views, prompt) pair")
            views, prompt = sample
            if not isinstance(prompt, str):
                raise ValueError(f"sample {i}: prompt must be a string, got {type(prompt).__name__}")
            bad = [t for t in VISION_TOKENS if t in prompt]
            if bad:
                raise ValueError(f"sample {i}: prompt must not contain image placeholder tokens {bad}")
            views = validate_views(views, self.max_views)
            all_views += [resize_view(v, self.aligned_size) for v in views]
            counts.append(len(views))
            texts.append(self.chat_text(len(views), prompt))
        if self.preprocess == "torch":
            pixel_values, grid = self.patchifier(all_views, self.pixel_device)
        else:
            image_inputs = self.image_processor(
                images=all_views, size=self.size_kwargs, return_tensors="pt"
            )
            pixel_values, grid = image_inputs["pixel_values"], image_inputs["image_grid_thw"]
        tokens_per_image = (grid.prod(dim=-1) // self.merge_length).tolist()
        for text, count in zip(texts, counts):
            if text.count(IMAGE_PAD) != count:
                raise ValueError(
                    f"chat template produced {text.count(IMAGE_PAD)} {IMAGE_PAD} placeholders for "
                    f"{count} views"
                )
        if self.preprocess == "torch":
            input_ids, attention_mask = self._tokenize_expanding_ids(texts, tokens_per_image)
        else:
            input_ids, attention_mask = self._tokenize_expanding_text(texts, tokens_per_image)
        enc = {"input_ids": input_ids, "attention_mask": attention_mask}
        input_ids = enc["input_ids"]
        n_image_tokens = int((input_ids == self.image_token_id).sum())
        if n_image_tokens != sum(tokens_per_image):
            raise ValueError(
                f"tokenised {n_image_tokens} image tokens but the images need {sum(tokens_per_image)}; "
                "the prompt must not contain image placeholder tokens"
            )
        return QwenVLInputs(
            input_ids=input_ids,
            attention_mask=enc["attention_mask"],
            mm_token_type_ids=(input_ids == self.image_token_id).to(torch.int32),
            pixel_values=pixel_values,
            image_grid_thw=grid,
        )



    def _tokenize_expanding_text(self, texts: list[str], tokens_per_image: list[int]
                                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """The processor's way: repeat each placeholder in the text, tokenise the long string."""
        expanded, cursor = [], 0
        for text in texts:
            parts = text.split(IMAGE_PAD)
            pieces = [parts[0]]
            for j in range(len(parts) - 1):
                pieces.append(IMAGE_PAD * int(tokens_per_image[cursor + j]) + parts[j + 1])
            cursor += len(parts) - 1
            expanded.append("".join(pieces))
        enc = self.tokenizer(expanded, return_tensors="pt", padding=True, add_special_tokens=False)
        return enc["input_ids"], enc["attention_mask"]

    def _tokenize_expanding_ids(self, texts: list[str], tokens_per_image: list[int]
                                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokenise with one placeholder per image, then repeat its id (same ids, ~20x faster:
        the tokenizer never sees the ~1500 placeholder tokens of five views)."""
        rows, cursor = [], 0
        for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]:
            ids = torch.tensor(ids, dtype=torch.long)
            is_pad = ids == self.image_token_id
            repeats = torch.ones_like(ids)
            n = int(is_pad.sum())
            repeats[is_pad] = torch.tensor(tokens_per_image[cursor:cursor + n], dtype=torch.long)
            cursor += n
            rows.append(torch.repeat_interleave(ids, repeats))
        width = max(len(r) for r in rows)
        pad_id = self.tokenizer.pad_token_id
        input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):  # left padding, as the tokenizer is configured
            input_ids[i, width - len(row):] = row
            attention_mask[i, width - len(row):] = 1
        return input_ids, attention_mask

def expected_visual_tokens(image_size: tuple[int, int], patch_size: int = 14, merge_size: int = 2) -> int:
    """Visual tokens per view at ``image_size`` (299 for 640x360)."""
    factor = patch_size * merge_size
    w, h = aligned_size(image_size, factor)
    return (w // factor) * (h // factor)


__all__ = [
    "IMAGE_PAD",
    "QwenVLInputBuilder",
    "QwenVLInputs",
    "expected_visual_tokens",
    "load_chat_template",
    "resize_view",
    "validate_views",
]
