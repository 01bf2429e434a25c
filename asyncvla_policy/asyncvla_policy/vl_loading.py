"""Loading a Qwen2.5-VL offline, and the identity of the features it computes.

Why apart from the extractor: what a model *is* (its config and the extraction settings, hashed
into ``model_id``) and where it comes from (a local directory or the HF cache, never a download)
are questions the VLM node, the training and the checkpoint checks all ask.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .vl_inputs import load_chat_template

# Keys of a transformers config that do not change what the model computes.
_VOLATILE_CONFIG_KEYS = frozenset(
    {"transformers_version", "dtype", "torch_dtype", "use_cache", "output_hidden_states",
     "output_attentions", "return_dict", "architectures"}
)


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


def short_hash(*parts: bytes) -> str:
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


def model_id_of(config_dict: dict[str, Any], name_or_path: str, settings: dict[str, Any]) -> str:
    """``<model name>@<hash of the model config and the extraction settings>``."""
    config_json = json.dumps(_strip_volatile(config_dict), sort_keys=True)
    return f"{_model_name(name_or_path)}@" + short_hash(
        config_json.encode(), json.dumps(settings, sort_keys=True).encode())
