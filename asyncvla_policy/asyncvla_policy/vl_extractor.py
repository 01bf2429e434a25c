"""VL feature extraction with Qwen2.5-VL: camera views + prompt -> (K, D) feature tokens.

What the features are: the hidden state of ``feature_layer`` (-1 = the language model's final,
normed output, as in the original system) over *every* token of the sequence (system text, image tokens,
prompt), reduced to exactly ``num_feature_tokens`` = K tokens by adaptive average pooling along the
sequence (see ``pooling``). The original system instead mean-pooled everything into one vector; the mean of our
K tokens approximates that vector, while the action expert's cross-attention fusion can still see
coarse positions. In padded batches the padding is masked out of the pooling.

Input formatting follows the original system: one user chat message holding every view as an image item and
then the prompt, rendered with the model's chat template without a generation prompt. Views are
resized to ``image_size`` (640x360 by default) first; see ``vl_inputs`` for the fixed token count.

Loading is strictly offline (``local_files_only=True``, ``vl_loading``): a local directory or a
model already in the Hugging Face cache; LoRA is the ``lora.LoRAMixin`` part. ``make_tiny_qwen_vl`` writes a directory that goes through exactly the same
path, which is how the tests run without a download.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .config import VLConfig
from .devices import resolve_device, resolve_dtype
from .lora import LoRAMixin
from . import vision_attention
from .pooling import masked_adaptive_avg_pool
from .vl_inputs import PREPROCESS_VERSION, QwenVLInputBuilder, QwenVLInputs
from .vl_loading import load_processing_components, model_id_of, resolve_model_source

@dataclass
class VLFeatureResult:
    """One extraction: ``features`` (K, D) float32 on CPU, plus what it cost."""

    features: torch.Tensor
    token_count: int
    compute_time: float
    feature_dim: int
    num_views: int = 0


class VLFeatureExtractor(LoRAMixin, nn.Module):
    """Qwen2.5-VL wrapped as a feature extractor (frozen by default; optional LoRA).

    An ``nn.Module`` so training code can call ``.train()``, move it, and hand its trainable (LoRA)
    parameters to an optimiser; ``forward`` is :meth:`encode_batch`.
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        image_processor: Any,
        chat_template: str,
        *,
        name_or_path: str,
        image_size: tuple[int, int] = (640, 360),
        max_views: int = 5,
        num_feature_tokens: int = 64,
        feature_layer: int = -1,
        optimized: bool = True,
    ) -> None:
        super().__init__()
        if getattr(model.config, "model_type", None) != "qwen2_5_vl":
            raise ValueError(
                f"expected a Qwen2.5-VL model (model_type 'qwen2_5_vl'), got {model.config.model_type!r}"
            )
        if num_feature_tokens < 1:
            raise ValueError(f"num_feature_tokens must be >= 1, got {num_feature_tokens}")
        if max_views < 1:
            raise ValueError(f"max_views must be >= 1, got {max_views}")
        num_layers = int(model.config.text_config.num_hidden_layers)
        if not -(num_layers + 1) <= feature_layer <= num_layers:
            raise ValueError(
                f"feature_layer {feature_layer} out of range for {num_layers} layers "
                f"(hidden states -{num_layers + 1}..{num_layers}; -1 = last)"
            )
        self.model = model
        self.inputs = QwenVLInputBuilder(tokenizer, image_processor, chat_template, image_size, max_views)
        self.optimized = optimized
        self.name_or_path = str(name_or_path)
        self.num_feature_tokens = int(num_feature_tokens)
        self.feature_layer = int(feature_layer)
        self._num_layers = num_layers
        settings = {
            "image_size": list(self.image_size),
            "num_feature_tokens": self.num_feature_tokens,
            "feature_layer": self.feature_layer % (num_layers + 1),
            "pooling": "masked_adaptive_avg",
            "preprocess_version": PREPROCESS_VERSION,
        }
        self._model_id = model_id_of(model.config.to_dict(), self.name_or_path, settings)
        self._adapter_id = ""

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(
        cls,
        model_path: str,
        adapter_path: str | None = None,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype | None = None,
        image_size: tuple[int, int] = (640, 360),
        max_views: int = 5,
        num_feature_tokens: int = 64,
        feature_layer: int = -1,
        attn_implementation: str = "sdpa",
        optimized: bool = True,
    ) -> VLFeatureExtractor:
        """Load model, tokenizer, image processor (and an optional LoRA adapter) offline.

        ``model_path``: a local model directory or a hub id already in the HF cache (never
        downloaded). ``image_size`` is (width, height) every view is resized to.
        ``feature_layer`` indexes the hidden-state tuple (0 = embeddings, -1 = final normed output).
        """
        from transformers import AutoConfig, Qwen2_5_VLForConditionalGeneration

        source = resolve_model_source(model_path)
        dev = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, dev)
        config = AutoConfig.from_pretrained(source, local_files_only=True)
        if config.model_type != "qwen2_5_vl":
            raise ValueError(f"{model_path} is a {config.model_type!r} model, expected 'qwen2_5_vl'")
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(
            source, dtype=torch_dtype, attn_implementation=attn_implementation, local_files_only=True
        )
        tokenizer, image_processor, template = load_processing_components(source)
        name = model_path if not Path(model_path).expanduser().is_dir() else source
        extractor = cls(
            model,
            tokenizer,
            image_processor,
            template,
            name_or_path=name,
            image_size=image_size,
            max_views=max_views,
            num_feature_tokens=num_feature_tokens,
            feature_layer=feature_layer,
            optimized=optimized,
        )
        if adapter_path is not None:
            extractor.load_adapter(adapter_path)
        extractor.requires_grad_(False)
        return extractor.to(dev).eval()

    @classmethod
    def from_vl_config(
        cls,
        cfg: VLConfig,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype | None = None,
        attn_implementation: str = "sdpa",
    ) -> VLFeatureExtractor:
        """``from_pretrained`` with the settings of a :class:`VLConfig` (e.g. from checkpoint metadata)."""
        return cls.from_pretrained(
            cfg.model_path,
            adapter_path=cfg.adapter_path,
            device=device,
            dtype=dtype,
            image_size=(cfg.image_width, cfg.image_height),
            max_views=cfg.max_views,
            num_feature_tokens=cfg.num_feature_tokens,
            feature_layer=cfg.feature_layer,
            attn_implementation=attn_implementation,
        )

    def vl_config(self, prompt: str, adapter_path: str | None = None) -> VLConfig:
        """The :class:`VLConfig` describing these features (store it with the policy checkpoint)."""
        return VLConfig(
            model_path=self.name_or_path,
            adapter_path=adapter_path,
            image_width=self.image_size[0],
            image_height=self.image_size[1],
            max_views=self.max_views,
            num_feature_tokens=self.num_feature_tokens,
            feature_layer=self.feature_layer,
            prompt=prompt,
        )

    def at_image_size(self, image_size: tuple[int, int]) -> VLFeatureExtractor:
        """An extractor over the *same* model (no copy, no reload) whose views are resized to
        ``image_size`` = (width, height): what a timing sweep over view sizes needs, since a
        3B model is built once per run. Other settings and the attached adapter carry over."""
        other = type(self)(
            self.model,
            self.inputs.tokenizer,
            self.inputs.image_processor,
            self.inputs.chat_template,
            name_or_path=self.name_or_path,
            image_size=image_size,
            max_views=self.max_views,
            num_feature_tokens=self.num_feature_tokens,
            feature_layer=self.feature_layer,
            optimized=self.optimized,
        )
        other._adapter_id = self._adapter_id
        return other

    # ------------------------------------------------------------------ identity
    @property
    def model_id(self) -> str:
        """Model name + hash of its architecture config and of the feature settings.

        Changes whenever features would change for the same weights name (image size, K, layer),
        so a feature cache keyed by it cannot mix incompatible features. Not a hash of weights.
        """
        return self._model_id

    @property
    def adapter_id(self) -> str:
        """"" without adapter; adapter name + hash of its files; ``in-memory-...`` while training."""
        return self._adapter_id

    @property
    def feature_dim(self) -> int:
        return int(self.model.config.text_config.hidden_size)

    @property
    def image_size(self) -> tuple[int, int]:
        return self.inputs.image_size

    @property
    def max_views(self) -> int:
        return self.inputs.max_views

    @property
    def tokens_per_view(self) -> int:
        return self.inputs.tokens_per_view

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def tokenizer(self) -> Any:
        return self.inputs.tokenizer

    # ------------------------------------------------------------------ speed
    @property
    def optimized(self) -> bool:
        """True: torch preprocessing on the model's device, vision attention batched per window
        size (with SDPA; ``vision_attention.py``) and no LM layers past the feature layer.

        False: the plain transformers path (PIL image processor, every layer, hidden states
        collected), kept as the reference the optimised path is tested and profiled against.
        Both give the same features (see tests); switching does not change ``model_id``.
        """
        return self._optimized

    @optimized.setter
    def optimized(self, value: bool) -> None:
        self._optimized = bool(value)
        self.inputs.preprocess = "torch" if self._optimized else "hf"
        if self._optimized and self._attn_implementation() == "sdpa":
            vision_attention.install(self.model)
        else:
            vision_attention.uninstall(self.model)

    def _attn_implementation(self) -> str:
        config = getattr(self.model.config, "vision_config", self.model.config)
        return str(getattr(config, "_attn_implementation", "sdpa"))

    @contextlib.contextmanager
    def _language_model_up_to(self, layer: int):
        """Run only the first ``layer`` decoder layers, without the final norm, inside the block.

        The hidden state after layer ``layer`` is then the model's ``last_hidden_state``: the
        layers above it, whose outputs the features never use, are not computed at all.
        """
        if not self._optimized or layer >= self._num_layers:
            yield False
            return
        lm = self._core_model().language_model
        layers, norm = lm.layers, lm.norm
        lm.layers, lm.norm = nn.ModuleList(list(layers)[:layer]), nn.Identity()
        try:
            yield True
        finally:
            lm.layers, lm.norm = layers, norm

    # ------------------------------------------------------------------ features
    def _core_model(self) -> nn.Module:
        """The ``Qwen2_5_VLModel`` (no LM head); LoRA layers live inside it after peft injection."""
        model = self.model
        if hasattr(model, "get_base_model"):
            model = model.get_base_model()
        return model.model

    def _build(self, samples: Sequence[tuple[Sequence[np.ndarray], str]]) -> QwenVLInputs:
        self.inputs.pixel_device = self.device
        return self.inputs.build(samples)

    def _features(self, inputs: QwenVLInputs) -> torch.Tensor:
        inputs = inputs.to(self.device, self.dtype)
        layer = self.feature_layer % (self._num_layers + 1)
        with self._language_model_up_to(layer) as truncated:
            use_last = truncated or layer == self._num_layers
            out = self._core_model()(
                **inputs.model_kwargs(),
                use_cache=False,
                output_hidden_states=not use_last,
                return_dict=True,
            )
        hidden = out.last_hidden_state if use_last else out.hidden_states[layer]
        return masked_adaptive_avg_pool(hidden.float(), inputs.attention_mask, self.num_feature_tokens)

    def encode_batch(self, samples: Sequence[tuple[Sequence[np.ndarray], str]]) -> torch.Tensor:
        """(B, K, D) float32 features on the model device for training.

        ``samples`` = [(views, prompt), ...]. Gradients flow into trainable (LoRA) parameters when
        grad mode is on; the caller controls train/eval mode.
        """
        return self._features(self._build(samples))

    def forward(self, samples: Sequence[tuple[Sequence[np.ndarray], str]]) -> torch.Tensor:
        return self.encode_batch(samples)

    @torch.no_grad()
    def extract(self, images: list[np.ndarray], prompt: str) -> VLFeatureResult:
        """Inference for one observation: views (HxWx3 uint8 RGB) + prompt -> (K, D) features.

        Runs in eval mode (restored afterwards); ``compute_time`` covers preprocessing, the model
        and pooling (wall clock, CUDA synchronised).
        """
        start = time.perf_counter()
        inputs = self._build([(images, prompt)])
        was_training = self.training
        self.eval()
        try:
            features = self._features(inputs)[0].cpu()
        finally:
            self.train(was_training)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return VLFeatureResult(
            features=features,
            token_count=int(inputs.attention_mask.sum()),
            compute_time=time.perf_counter() - start,
            feature_dim=self.feature_dim,
            num_views=len(images),
        )
