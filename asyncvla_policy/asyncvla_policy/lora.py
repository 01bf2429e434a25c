"""LoRA on the Qwen2.5-VL *language model only* (stage 2 fine-tuning).

Why a regex: the vision tower's MLP linears are also called ``gate_proj``/``up_proj``/``down_proj``
(``model.visual.blocks.N.mlp.*``), so the usual leaf-name list would silently put LoRA on the
vision encoder too. We target module paths under ``language_model.layers.N`` and, before
attaching, check the matches against the model's real module names (at least one match, none in the
vision tower).

Defaults r=16, alpha=32, dropout=0.05 follow the original system docs. Target: all seven LM projections
(``LM_LORA_TARGET``, common practice); the original system docs named q/k/v/o only, available as
``LM_ATTENTION_LORA_TARGET``.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from torch import nn

from .vl_loading import short_hash

_LM_PREFIX = r"(?:.*\.)?language_model\.layers\.\d+\."
LM_LORA_TARGET = _LM_PREFIX + r"(?:self_attn\.(?:q|k|v|o)_proj|mlp\.(?:gate|up|down)_proj)"
LM_ATTENTION_LORA_TARGET = _LM_PREFIX + r"self_attn\.(?:q|k|v|o)_proj"
_VISION_PARTS = frozenset({"visual", "vision_tower", "vision_model"})


def _is_vision_module(name: str) -> bool:
    return not _VISION_PARTS.isdisjoint(name.split("."))


def lora_target_names(model: nn.Module, target: str = LM_LORA_TARGET) -> list[str]:
    """Module names of ``model`` that ``target`` (full-match regex, as peft uses it) selects.

    Raises ValueError if nothing matches or a vision module would be hit.
    """
    pattern = re.compile(target)
    names = [n for n, m in model.named_modules() if n and pattern.fullmatch(n) and isinstance(m, nn.Linear)]
    if not names:
        sample = [n for n, _ in model.named_modules() if n.endswith("q_proj")][:3]
        raise ValueError(
            f"LoRA target {target!r} matches no nn.Linear in {type(model).__name__} "
            f"(example module names: {sample})"
        )
    vision = [n for n in names if _is_vision_module(n)]
    if vision:
        raise ValueError(f"LoRA target {target!r} would hit vision modules: {vision[:5]}")
    return names


def lora_layer_names(model: nn.Module) -> list[str]:
    """Names of modules that carry a LoRA adapter (for checks and logging)."""
    from peft.tuners.lora import LoraLayer

    return [n for n, m in model.named_modules() if isinstance(m, LoraLayer)]


def _check_no_vision_lora(model: nn.Module, source: str) -> None:
    vision = [n for n in lora_layer_names(model) if _is_vision_module(n)]
    if vision:
        raise ValueError(f"{source} puts LoRA on vision modules {vision[:5]}; only the LM is supported")


def attach_lora(
    model: nn.Module,
    r: int = 16,
    alpha: int = 32,
    dropout: float = 0.05,
    target: str = LM_LORA_TARGET,
) -> nn.Module:
    """Wrap ``model`` (a ``Qwen2_5_VLForConditionalGeneration``) in a trainable peft LoRA model.

    Every non-LoRA parameter is frozen by peft. The model is modified in place (peft injects the
    LoRA layers into the existing modules) and the returned ``PeftModel`` wraps it.
    """
    from peft import LoraConfig, get_peft_model

    if r <= 0 or alpha <= 0 or not 0.0 <= dropout < 1.0:
        raise ValueError(f"invalid LoRA settings r={r}, alpha={alpha}, dropout={dropout}")
    lora_target_names(model, target)  # fail early and clearly
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target, bias="none")
    peft_model = get_peft_model(model, config)
    _check_no_vision_lora(peft_model, "attach_lora")
    return peft_model


def load_lora_adapter(model: nn.Module, adapter_path: str | Path, trainable: bool = False) -> nn.Module:
    """Load a saved adapter directory (``adapter_config.json`` + weights) onto ``model``."""
    from peft import PeftModel

    path = Path(adapter_path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"LoRA adapter directory not found: {path}")
    if not (path / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{path} has no adapter_config.json (not a peft adapter directory)")
    peft_model = PeftModel.from_pretrained(model, str(path), is_trainable=trainable)
    _check_no_vision_lora(peft_model, f"adapter {path}")
    return peft_model


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold the LoRA weights into the base linears; returns the plain transformers model.

    Merged inference is faster (no extra matmuls) and numerically equal up to float rounding.
    """
    from peft import PeftModel

    if not isinstance(model, PeftModel):
        raise ValueError(f"merge_lora expects a peft PeftModel, got {type(model).__name__}")
    return model.merge_and_unload()


class LoRAMixin:
    """LoRA on the extractor's language model: attach (train), load, save, merge.

    Mixed into VLFeatureExtractor, whose ``model`` it wraps; ``adapter_id`` names the adapter
    (saved adapters: directory name + hash of their files)."""

    model: Any
    _adapter_id: str

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
        self._adapter_id = f"{path.name}@" + short_hash(*(p.read_bytes() for p in files))

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
