"""TrainConfig: every setting of a stage 1 / stage 2 run, JSON round trip, validated.

Why one dataclass: the config is written next to every checkpoint (``train_config.json`` and the
policy metadata) and read back by ``--resume``; a typo in a JSON file or an override must fail
loudly (unknown keys are rejected) instead of silently training with a default.

Defaults follow the original system: lr 1e-4 (action expert), vl_lr 1e-5 (LoRA),
sensor_lr 5e-4 (sensor encoder), AdamW weight decay 0.01, grad accumulation 8, batch 2 per GPU,
clip 1.0, cosine to 1e-6 (min_lr_ratio 0.01 of 1e-4), warmup 3 % (300 of 10000 steps), LoRA r 16 /
alpha 32 / dropout 0.05, step period 0.1 s (10 Hz action clock). Where the original system reused
VL features for 3 steps (an age counted in steps), training here draws each sample's VL age in
milliseconds (``vl_age_ms``, ``vl_age_source``) and gives it to the expert (``vl_age_input``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any

from asyncvla_core.conventions import MAX_VIEWS
from asyncvla_policy.config import JsonFileConfig

LOSSES = ("mse", "smooth_l1")
POLICY_SIZES = ("full", "tiny")
#: Older names of the sizes, still read from configs written before the rename.
POLICY_SIZE_ALIASES = {"seed": "full"}
LORA_TARGETS = ("all", "attention")
PAYLOAD_DTYPES = ("float16", "bfloat16", "float32")
TRAIN_CONFIG_NAME = "train_config.json"
VL_AGE_SOURCES = ("range", "recorded")
LOG = logging.getLogger("asyncvla.train")


def _positive_int(name: str, value: Any, allow_zero: bool = False) -> None:
    ok = (
        isinstance(value, int) and not isinstance(value, bool) and (value >= 0 if allow_zero else value > 0)
    )
    if not ok:
        raise ValueError(
            f"{name} must be a {'non-negative' if allow_zero else 'positive'} integer, got {value!r}"
        )


def _positive_float(name: str, value: Any, allow_zero: bool = False) -> None:
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value >= 0 if allow_zero else value > 0)
    )
    if not ok:
        raise ValueError(
            f"{name} must be a {'non-negative' if allow_zero else 'positive'} number, got {value!r}"
        )


def _str_list(name: str, value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError(f"{name} must be a list of strings, got {value!r}")
    for item in value:
        if not isinstance(item, str) or not item:
            raise ValueError(f"{name} must hold non-empty strings, got {item!r}")
    return list(value)


def _optional_str(name: str, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError(f"{name} must be null or a non-empty string, got {value!r}")


@dataclass
class TrainConfig(JsonFileConfig):
    """One training run. ``stage`` 1: frozen VLM, cached features; 2: LoRA on the VLM's LM."""

    stage: int = 1
    # ---------------------------------------------------------------- data
    bags: list[str] = field(default_factory=list)
    """rosbag2 directories (or folders holding several) read into training episodes."""
    val_bags: list[str] = field(default_factory=list)
    """Validation recordings; when empty, ``val_fraction`` of the episodes is held out (by episode)."""
    val_fraction: float = 0.1
    synthetic_episodes: int = 0
    """> 0: train on that many generated episodes instead of bags (smoke tests, CI, tutorials)."""
    synthetic_length: int = 40
    views: list[str] | None = None
    """Camera views to read from the bags, in the VLM node's order (None: every recorded view)."""
    dataset: dict[str, Any] | None = None
    """A ``data.BagDatasetConfig`` dict (topics, alignment limits, prompt); ``views``,
    ``step_period`` and ``action_space`` above win, horizon / window follow the policy."""
    skip_bad_bags: bool = False
    action_space: str = "ee_delta"
    step_period: float = 0.1
    """Seconds between action ticks; must equal every episode's ``step_period``."""
    prompt: str | None = None
    """Task prompt for the VLM; None = each episode's recorded prompt."""
    # ---------------------------------------------------------------- VL model
    vl_model_path: str = "Qwen/Qwen2.5-VL-3B-Instruct"
    vl_cache_dir: str | None = None
    """Stage 1: directory of the VL feature cache (data/vl_cache.py, ``asyncvla-cache-vl``);
    None = extract in memory once per frame set."""
    vl_cache_fill: bool = False
    """Load the VLM and extract cache misses (single process); false = the cache must be complete."""
    vl_cache_model_id: str | None = None
    """Which model's features to read when the cache holds several (default: the only one)."""
    image_width: int = 640
    image_height: int = 360
    max_views: int = MAX_VIEWS
    num_feature_tokens: int = 64
    feature_layer: int = -1
    vl_dtype: str = "auto"
    """Weights dtype of the VLM: auto = bf16 on CUDA, fp32 on CPU."""
    vl_payload_dtype: str = "float16"
    """Stage 2: live features are rounded to this dtype (straight-through) before the expert, as
    the VLM node's ``payload_dtype`` rounds them on the wire; stage-1 caches store float16."""
    # ---------------------------------------------------------------- policy
    policy: dict[str, Any] | None = None
    """A PolicyConfig dict; None = ``policy_size`` widths. vl_dim / vl_num_tokens come from the VLM."""
    policy_size: str = "full"
    init_from: str | None = None
    """Policy checkpoint to start from (stage 2: the stage-1 result; its config and statistics win)."""
    # ---------------------------------------------------------------- optimisation
    lr: float = 1e-4
    vl_lr: float = 1e-5
    sensor_lr: float = 5e-4
    weight_decay: float = 0.01
    adam_betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 300
    total_steps: int = 10000
    min_lr_ratio: float = 0.01
    grad_accum_steps: int = 8
    batch_size: int = 2
    max_grad_norm: float = 1.0
    loss: str = "mse"
    smooth_l1_beta: float = 1.0
    vl_age_ms: list[float] = field(default_factory=lambda: [0.0, 700.0])
    """[low, high] ms: each sample's VL age is drawn uniformly from this range (``vl_age_source``
    "range"). The default covers what the action node meets with five views (300-700 ms: the
    VLM's compute, transport and the wait for the next update) and the fresh end a fast VLM
    reaches; [0, 0] trains on the freshest features only."""
    vl_age_source: str = "range"
    """"range": uniform over ``vl_age_ms``; "recorded": the ages a recorded action node met, from
    the training bags' own VLFeatures stamps (``Episode.recorded_vl_ages_ns``)."""
    vl_age_input: bool = True
    """The expert takes the VL age as an input (``PolicyConfig.vl_age_input``) for a new policy."""
    reuse: int | None = None
    """Deprecated: reuse k periods became ``vl_age_ms = [0, (k - 1) * step_period]``."""
    bf16: bool | str = "auto"
    """bf16 autocast: "auto" = on when training on CUDA; never on CPU."""
    gradient_checkpointing: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target: str = "all"
    """"all" = q/k/v/o + MLP projections of the LM; "attention" = q/k/v/o only (original docs)."""
    # ---------------------------------------------------------------- bookkeeping
    eval_every: int = 500
    save_every: int = 500
    log_every: int = 10
    val_max_samples: int = 512
    seed: int = 0
    device: str = "auto"
    out_dir: str = "runs/asyncvla"

    def __post_init__(self) -> None:
        if isinstance(self.adam_betas, list):
            self.adam_betas = tuple(self.adam_betas)
        if self.stage not in (1, 2) or isinstance(self.stage, bool):
            raise ValueError(f"stage must be 1 or 2, got {self.stage!r}")
        self.bags = _str_list("bags", self.bags)
        self.val_bags = _str_list("val_bags", self.val_bags)
        if self.views is not None:
            self.views = _str_list("views", self.views)
        if not (isinstance(self.val_fraction, (int, float)) and 0.0 <= self.val_fraction < 1.0):
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction!r}")
        for name in ("synthetic_episodes",):
            _positive_int(name, getattr(self, name), allow_zero=True)
        for name in (
            "synthetic_length",
            "image_width",
            "image_height",
            "max_views",
            "num_feature_tokens",
            "total_steps",
            "grad_accum_steps",
            "batch_size",
            "lora_r",
            "lora_alpha",
            "log_every",
            "val_max_samples",
        ):
            _positive_int(name, getattr(self, name))
        for name in ("warmup_steps", "eval_every", "save_every", "seed"):
            _positive_int(name, getattr(self, name), allow_zero=True)
        if self.reuse is not None:
            _positive_int("reuse", self.reuse)
            self.vl_age_ms = [0.0, round((self.reuse - 1) * self.step_period * 1e3, 6)]
            LOG.warning("TrainConfig: 'reuse' is deprecated; reuse %d is read as vl_age_ms %s "
                        "(set vl_age_ms instead)", self.reuse, self.vl_age_ms)
            self.reuse = None
        if (not isinstance(self.vl_age_ms, (list, tuple)) or len(self.vl_age_ms) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                           and math.isfinite(v) for v in self.vl_age_ms)
                or not 0 <= self.vl_age_ms[0] <= self.vl_age_ms[1]):
            raise ValueError(f"vl_age_ms must be [low, high] with 0 <= low <= high (ms), "
                             f"got {self.vl_age_ms!r}")
        self.vl_age_ms = [float(v) for v in self.vl_age_ms]
        if self.vl_age_source not in VL_AGE_SOURCES:
            raise ValueError(f"vl_age_source must be one of {list(VL_AGE_SOURCES)}, "
                             f"got {self.vl_age_source!r}")
        if self.warmup_steps > self.total_steps:
            raise ValueError(f"warmup_steps ({self.warmup_steps}) exceeds total_steps ({self.total_steps})")
        if isinstance(self.feature_layer, bool) or not isinstance(self.feature_layer, int):
            raise ValueError(f"feature_layer must be an integer, got {self.feature_layer!r}")
        for name in ("lr", "vl_lr", "sensor_lr", "step_period", "max_grad_norm", "smooth_l1_beta"):
            _positive_float(name, getattr(self, name))
        _positive_float("weight_decay", self.weight_decay, allow_zero=True)
        if not (isinstance(self.min_lr_ratio, (int, float)) and 0.0 <= self.min_lr_ratio <= 1.0):
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}")
        if len(self.adam_betas) != 2 or not all(
            isinstance(b, (int, float)) and 0.0 <= b < 1.0 for b in self.adam_betas
        ):
            raise ValueError(f"adam_betas must be two numbers in [0, 1), got {self.adam_betas!r}")
        if not (isinstance(self.lora_dropout, (int, float)) and 0.0 <= self.lora_dropout < 1.0):
            raise ValueError(f"lora_dropout must be in [0, 1), got {self.lora_dropout!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {list(LOSSES)}, got {self.loss!r}")
        self.policy_size = POLICY_SIZE_ALIASES.get(self.policy_size, self.policy_size)
        if self.policy_size not in POLICY_SIZES:
            raise ValueError(f"policy_size must be one of {list(POLICY_SIZES)}, got {self.policy_size!r}")
        if self.lora_target not in LORA_TARGETS:
            raise ValueError(f"lora_target must be one of {list(LORA_TARGETS)}, got {self.lora_target!r}")
        if self.bf16 not in ("auto", True, False):
            raise ValueError(f"bf16 must be \"auto\", true or false, got {self.bf16!r}")
        for name in ("gradient_checkpointing", "skip_bad_bags", "vl_cache_fill", "vl_age_input"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        from asyncvla_core.conventions import ACTION_SPACES

        if self.action_space not in ACTION_SPACES:
            raise ValueError(
                f"action_space must be one of {sorted(ACTION_SPACES)}, got {self.action_space!r}"
            )
        if self.vl_payload_dtype not in PAYLOAD_DTYPES:
            raise ValueError(f"vl_payload_dtype must be one of {sorted(PAYLOAD_DTYPES)}, "
                             f"got {self.vl_payload_dtype!r}")
        for name in ("policy", "dataset"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), dict):
                raise ValueError(f"{name} must be null or a JSON object, got {getattr(self, name)!r}")
        for name in ("vl_cache_dir", "init_from", "prompt", "vl_cache_model_id"):
            _optional_str(name, getattr(self, name))
        for name in ("vl_model_path", "vl_dtype", "device", "out_dir"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty string, got {getattr(self, name)!r}")

    # ---------------------------------------------------------------- derived
    @property
    def warmup_ratio(self) -> float:
        return self.warmup_steps / self.total_steps

    def use_bf16(self, device_type: str) -> bool:
        """bf16 autocast only on CUDA ("auto" or true); CPU autocast is slow and changes numerics."""
        return device_type == "cuda" and self.bf16 in ("auto", True)

    # ---------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["adam_betas"] = list(self.adam_betas)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> TrainConfig:
        if not isinstance(data, dict):
            raise ValueError(f"TrainConfig expects a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig key(s) {unknown}; known keys: {sorted(known)}")
        return cls(**data)


    def with_overrides(self, overrides: dict[str, Any] | list[str]) -> TrainConfig:
        """A copy with ``key=value`` strings (value parsed as JSON, else taken as a string) or a dict."""
        if isinstance(overrides, dict):
            updates = dict(overrides)
        else:
            updates = {}
            for item in overrides:
                if "=" not in item:
                    raise ValueError(f"override {item!r} must look like key=value")
                key, raw = item.split("=", 1)
                try:
                    value = json.loads(raw)
                except json.JSONDecodeError:
                    value = raw
                updates[key.strip()] = value
        data = self.to_dict()
        unknown = sorted(set(updates) - set(data))
        if unknown:
            raise ValueError(f"unknown TrainConfig key(s) {unknown}")
        data.update(updates)
        return TrainConfig.from_dict(data)
