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

Loading is strictly offline (``local_files_only=True``): a local directory or a model already in
the Hugging Face cache. ``make_tiny_qwen_vl`` writes a directory that goes through exactly the same
path, which is how the tests run without a download.
"""
from __future__ import annotations

import contextlib

import hashlib
import json
import os
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
from .lora import LM_LORA_TARGET, attach_lora, load_lora_adapter, lora_layer_names, merge_lora
from . import vision_attention
from .pooling import masked_adaptive_avg_pool
from .vl_inputs import PREPROCESS_VERSION, QwenVLInputBuilder, QwenVLInputs, load_chat_template

# Keys of a transformers config that do not change what the model computes.
_VOLATILE_CONFIG_KEYS = frozenset(
    {"transformers_version", "dtype", "torch_dtype", "use_cache", "output_hidden_states",
     "output_attentions", "return_dict", "architectures"}
)


@dataclass
class VLFeatureResult:
    """One extraction: ``features`` (K, D) float32 on CPU, plus what it cost."""

    features: torch.Tensor
    token_count: int
    compute_time: float
    feature_dim: int
    num_views: int = 0


def _model_name(source: str) -> str:
    """Readable model name: hub id tail, or the directory name (cache snapshots -> repo name)."""
    path = Path(source)
    if path.parent.name == "snapshots" and path.parent.parent.name.startswith("models--"):
        return path.parent.parent.name.split("--")[-1]
    return path.name or source


def _strip_volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _strip_volatile(v)
            for k, v in sorted(value.items())
            if not str(k).startswith("_") and k not in _VOLATILE_CONFIG_KEYS
        }
    if isinstance(value, (list, tuple)):
        return [_strip_volatile(v) for v in value]
    return value


def _short_hash(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()[:10]


def resolve_model_source(model_path: str) -> str:
    """Local directory for ``model_path`` (a directory or a hub id already in the HF cache).

    Never downloads. Raises FileNotFoundError naming the path when the model is not available.
    """
    path = Path(model_path).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} has no config.json: not a transformers model directory")
        return str(path)
    if path.exists():
        raise FileNotFoundError(f"{path} is a file; expected a model directory")
    looks_like_hub_id = (
        model_path.count("/") == 1 and not model_path.startswith(("/", ".", "~")) and " " not in model_path
    )
    if looks_like_hub_id:
        from transformers.utils import cached_file

        try:
            config_file = cached_file(model_path, "config.json", local_files_only=True)
        except OSError:
            config_file = None
        if config_file:
            return str(Path(config_file).parent)
    raise FileNotFoundError(
        f"VL model not found: '{model_path}' is not a local directory"
        + (" and not in the Hugging Face cache" if looks_like_hub_id else "")
        + ". Nothing is downloaded (offline); fetch it on a networked machine "
        "(e.g. `hf download Qwen/Qwen2.5-VL-3B-Instruct`) or pass the model directory."
    )


def load_processing_components(model_source: str) -> tuple[Any, Any, str]:
    """(tokenizer, PIL image processor, chat template) from a local model directory."""
    from transformers import AutoTokenizer, Qwen2VLImageProcessorPil

    tokenizer = AutoTokenizer.from_pretrained(model_source, local_files_only=True)
    image_processor = Qwen2VLImageProcessorPil.from_pretrained(model_source, local_files_only=True)
    return tokenizer, image_processor, load_chat_template(model_source, tokenizer)


class VLFeatureExtractor(nn.Module):
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
        config_json = json.dumps(_strip_volatile(model.config.to_dict()), sort_keys=True)
        self._model_id = f"{_model_name(self.name_or_path)}@" + _short_hash(
            config_json.encode(), json.dumps(settings, sort_keys=True).encode()
        )
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

    # ------------------------------------------------------------------ LoRA
    def attach_lora(
        self, r: int = 16, alpha: int = 32, dropout: float = 0.05, target: str = LM_LORA_TARGET
    ) -> list[str]:
        """Add trainable LoRA to the language model (only); returns the adapted module names."""
        if self.has_lora:
            raise ValueError("a LoRA adapter is already attached")
        self.model = attach_lora(self.model, r=r, alpha=alpha, dropout=dropout, target=target)
        self._adapter_id = f"in-memory-lora-r{r}-a{alpha}"
        return lora_layer_names(self.model)

    def load_adapter(self, adapter_path: str | os.PathLike[str], trainable: bool = False) -> None:
        """Load a saved LoRA adapter directory; ``adapter_id`` becomes name + hash of its files."""
        if self.has_lora:
            raise ValueError("a LoRA adapter is already attached")
        path = Path(adapter_path).expanduser()
        self.model = load_lora_adapter(self.model, path, trainable=trainable)
        files = sorted(p for p in path.iterdir() if p.is_file() and p.name.startswith("adapter_"))
        self._adapter_id = f"{path.name}@" + _short_hash(*(p.read_bytes() for p in files))

    def save_adapter(self, directory: str | os.PathLike[str]) -> Path:
        """Write the LoRA adapter (peft format: adapter_config.json + adapter_model.safetensors)."""
        if not self.has_lora:
            raise ValueError("no LoRA adapter attached")
        directory = Path(directory)
        self.model.save_pretrained(str(directory), safe_serialization=True)
        return directory

    def merge_lora(self) -> None:
        """Fold the adapter into the base weights (faster inference; ``adapter_id`` is kept)."""
        self.model = merge_lora(self.model)

    @property
    def has_lora(self) -> bool:
        return hasattr(self.model, "peft_config")

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def enable_gradient_checkpointing(self) -> None:
        """Trade compute for memory in LoRA training (non-reentrant: frozen inputs are fine)."""
        model = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
