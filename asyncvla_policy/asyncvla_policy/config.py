"""Configuration dataclasses for the AsyncVLA model stack.

Why dataclasses + explicit validation: the configs are written to ``config.json`` next to every
checkpoint and read back by the ROS nodes, possibly by a newer or older version of this code. Every
field is checked when a config is built, so a bad value fails loudly at load time with a message
that names the field instead of as a shape error deep inside a forward pass.

Defaults reproduce the original system model: sensor window 65 x 1026 (1 force + 1025 OCT
A-line values), conv widths 1026->512->1024->1024->1024, 2-layer pre-norm transformer, action expert
hidden 1024 with a 4-layer decoder, horizon 8, action dim 7, VL dim 2048 (Qwen2.5-VL-3B hidden size).
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncvla_core.conventions import DEFAULT_PROMPT, MAX_VIEWS

CONFIG_SCHEMA_VERSION = 1
"""Version of the JSON layout written by :meth:`PolicyConfig.to_dict` and ``save_policy``.

Bump it whenever a field is renamed/removed or its meaning changes; ``check_schema_version`` then
refuses checkpoints written by a newer layout instead of misreading them.
"""



def check_schema_version(value: Any, where: str = "config") -> None:
    """Raise ValueError unless ``value`` is the schema version this code understands."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(
            f"{where}: schema_version must be an integer, got {value!r}; this file was not written "
            "by asyncvla_policy (or is corrupted)"
        )
    if value > CONFIG_SCHEMA_VERSION:
        raise ValueError(
            f"{where}: schema_version {value} is newer than the supported version "
            f"{CONFIG_SCHEMA_VERSION}; upgrade asyncvla_policy to read it"
        )
    if value != CONFIG_SCHEMA_VERSION:
        raise ValueError(
            f"{where}: unknown schema_version {value} (supported: {CONFIG_SCHEMA_VERSION})"
        )


def _require_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _require_probability(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")


def _from_dict(cls: type, data: Any, overrides: dict[str, Any] | None = None) -> Any:
    """Build dataclass ``cls`` from a dict, rejecting unknown keys (typos must not pass silently)."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}.from_dict expects a dict, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(
            f"unknown field(s) {unknown} for {cls.__name__}; known fields: {sorted(known)}"
        )
    kwargs = dict(data)
    kwargs.update(overrides or {})
    return cls(**kwargs)


@dataclass
class VLConfig:
    """How VL features are extracted (what the policy's ``vl_tokens`` input means).

    Not part of the policy weights: store it in the checkpoint metadata so the VLM node can check
    that it produces the features the policy was trained on.
    """

    model_path: str = "Qwen/Qwen2.5-VL-3B-Instruct"
    adapter_path: str | None = None
    image_width: int = 640
    image_height: int = 360
    max_views: int = MAX_VIEWS
    num_feature_tokens: int = 64
    feature_layer: int = -1
    prompt: str = DEFAULT_PROMPT

    def __post_init__(self) -> None:
        if not isinstance(self.model_path, str) or not self.model_path:
            raise ValueError(f"model_path must be a non-empty string, got {self.model_path!r}")
        if self.adapter_path is not None and (
            not isinstance(self.adapter_path, str) or not self.adapter_path
        ):
            raise ValueError(f"adapter_path must be None or a non-empty string, got {self.adapter_path!r}")
        for name in ("image_width", "image_height", "max_views", "num_feature_tokens"):
            _require_positive_int(name, getattr(self, name))
        if isinstance(self.feature_layer, bool) or not isinstance(self.feature_layer, int):
            raise ValueError(f"feature_layer must be an integer, got {self.feature_layer!r}")
        if not isinstance(self.prompt, str):
            raise ValueError(f"prompt must be a string, got {self.prompt!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VLConfig:
        return _from_dict(cls, data)


@dataclass
class SensorEncoderConfig:
    """Conv + transformer encoder over a (T, C) force/OCT window (original architecture)."""

    window: int = 65
    in_channels: int = 1026
    conv_channels: tuple[int, ...] = (512, 1024, 1024, 1024)
    kernel_size: int = 3
    stride: int = 2
    padding: int = 1
    dropout: float = 0.1
    use_transformer: bool = True
    transformer_layers: int = 2
    transformer_heads: int = 8
    transformer_ffn_mult: int = 4
    sensor_dim: int = 2048

    def __post_init__(self) -> None:
        if isinstance(self.conv_channels, list):
            self.conv_channels = tuple(self.conv_channels)
        for name in ("window", "in_channels", "kernel_size", "stride", "sensor_dim"):
            _require_positive_int(name, getattr(self, name))
        if isinstance(self.padding, bool) or not isinstance(self.padding, int) or self.padding < 0:
            raise ValueError(f"padding must be a non-negative integer, got {self.padding!r}")
        if not isinstance(self.conv_channels, tuple) or not self.conv_channels:
            raise ValueError(f"conv_channels must be a non-empty list of ints, got {self.conv_channels!r}")
        for i, c in enumerate(self.conv_channels):
            _require_positive_int(f"conv_channels[{i}]", c)
        _require_probability("dropout", self.dropout)
        if not isinstance(self.use_transformer, bool):
            raise ValueError(f"use_transformer must be a bool, got {self.use_transformer!r}")
        if self.use_transformer:
            for name in ("transformer_layers", "transformer_heads", "transformer_ffn_mult"):
                _require_positive_int(name, getattr(self, name))
            if self.conv_channels[-1] % self.transformer_heads:
                raise ValueError(
                    f"last conv width {self.conv_channels[-1]} must be divisible by "
                    f"transformer_heads={self.transformer_heads}"
                )
        if self.output_length() < 1:
            raise ValueError(
                f"window={self.window} is too short for {len(self.conv_channels)} conv layers "
                f"(kernel {self.kernel_size}, stride {self.stride}, padding {self.padding})"
            )

    def output_length(self) -> int:
        """Time steps left after the conv stack (must be >= 1)."""
        length = self.window
        for _ in self.conv_channels:
            length = math.floor((length + 2 * self.padding - self.kernel_size) / self.stride) + 1
        return length

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["conv_channels"] = list(self.conv_channels)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SensorEncoderConfig:
        return _from_dict(cls, data)


@dataclass
class ActionExpertConfig:
    """Transformer decoder that turns one conditioning token into an action chunk (original sizes)."""

    hidden_dim: int = 1024
    num_layers: int = 4
    num_heads: int = 8
    ffn_mult: int = 4
    dropout: float = 0.1
    fusion_heads: int = 8

    def __post_init__(self) -> None:
        for name in ("hidden_dim", "num_layers", "num_heads", "ffn_mult", "fusion_heads"):
            _require_positive_int(name, getattr(self, name))
        _require_probability("dropout", self.dropout)
        for name in ("num_heads", "fusion_heads"):
            if self.hidden_dim % getattr(self, name):
                raise ValueError(
                    f"hidden_dim={self.hidden_dim} must be divisible by {name}={getattr(self, name)}"
                )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ActionExpertConfig:
        return _from_dict(cls, data)



class JsonFileConfig:
    """``to_json``/``from_json``/``save``/``load`` for a config class with ``to_dict``/``from_dict``.

    One implementation for every config written next to checkpoints and runs, so they all share
    the same JSON layout (indented, sorted keys) and the same error for a file that is not JSON.
    """

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{cls.__name__} is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path):
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


@dataclass
class PolicyConfig(JsonFileConfig):
    """Everything needed to rebuild an :class:`ActionPolicy` (shapes, widths, fusion).

    ``vl_dim``/``vl_num_tokens`` describe the VL feature input (K tokens of D values, see
    ``VLFeatureExtractor``); ``robot_state_dim`` is an input the original system did not have (layout in
    ``asyncvla_core.conventions``).

    ``vl_age_input``: the expert also takes the VL features' age in seconds (``age_conditioning``).
    ``vl_token_positions``: the ``cross_attention`` fusion adds a learned embedding of each VL
    token's place in the pooled sequence to its keys and values, so attention can tell *where*
    in the picture (which image tokens) something is, not only what it is: without it the
    attended value is a content-weighted mean that is the same wherever a marker sits. Both are on
    for new policies; a ``config.json`` written before a field existed has no such key and loads
    with it off, so an old checkpoint builds the same network and runs unchanged.
    """

    sensor: SensorEncoderConfig = field(default_factory=SensorEncoderConfig)
    expert: ActionExpertConfig = field(default_factory=ActionExpertConfig)
    robot_state_dim: int = 13  # conventions.ROBOT_STATE_DIM: 6 joints + EE position + quaternion
    horizon: int = 8
    action_dim: int = 7
    vl_dim: int = 2048
    vl_num_tokens: int = 64
    fusion: str = "cross_attention"
    vl_age_input: bool = True
    vl_token_positions: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.sensor, dict):
            self.sensor = SensorEncoderConfig.from_dict(self.sensor)
        if isinstance(self.expert, dict):
            self.expert = ActionExpertConfig.from_dict(self.expert)
        if not isinstance(self.sensor, SensorEncoderConfig):
            raise ValueError(f"sensor must be a SensorEncoderConfig, got {type(self.sensor).__name__}")
        if not isinstance(self.expert, ActionExpertConfig):
            raise ValueError(f"expert must be an ActionExpertConfig, got {type(self.expert).__name__}")
        for name in ("robot_state_dim", "horizon", "action_dim", "vl_dim", "vl_num_tokens"):
            _require_positive_int(name, getattr(self, name))
        for name in ("vl_age_input", "vl_token_positions"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        from .fusions import FUSIONS  # the table of strategies (imports torch)

        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {list(FUSIONS)}, got {self.fusion!r}")

    @property
    def sensor_dim(self) -> int:
        return self.sensor.sensor_dim

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict, including ``schema_version`` so a stray file is self-describing."""
        return {
            "schema_version": CONFIG_SCHEMA_VERSION,
            "sensor": self.sensor.to_dict(),
            "expert": self.expert.to_dict(),
            "robot_state_dim": self.robot_state_dim,
            "horizon": self.horizon,
            "action_dim": self.action_dim,
            "vl_dim": self.vl_dim,
            "vl_num_tokens": self.vl_num_tokens,
            "fusion": self.fusion,
            "vl_age_input": self.vl_age_input,
            "vl_token_positions": self.vl_token_positions,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyConfig:
        """Inverse of :meth:`to_dict`; missing fields take defaults, unknown ones are errors."""
        if not isinstance(data, dict):
            raise ValueError(f"PolicyConfig.from_dict expects a dict, got {type(data).__name__}")
        data = dict(data)
        if "schema_version" in data:
            check_schema_version(data.pop("schema_version"), "PolicyConfig")
        # Written before these inputs existed: those networks have none.
        data.setdefault("vl_age_input", False)
        data.setdefault("vl_token_positions", False)
        return _from_dict(cls, data)


def tiny_policy_config(
    vl_dim: int,
    vl_num_tokens: int = 8,
    robot_state_dim: int = 13,
    fusion: str = "cross_attention",
    window: int = 65,
    in_channels: int = 1026,
    horizon: int = 8,
    action_dim: int = 7,
    vl_age_input: bool = True,
    vl_token_positions: bool = True,
) -> PolicyConfig:
    """Full-shaped inputs/outputs (65x1026 window, 8x7 chunk) with tiny widths (CPU forward ~ms)."""
    return PolicyConfig(
        sensor=SensorEncoderConfig(
            window=window,
            in_channels=in_channels,
            conv_channels=(16, 32),
            dropout=0.1,
            use_transformer=True,
            transformer_layers=1,
            transformer_heads=4,
            transformer_ffn_mult=2,
            sensor_dim=32,
        ),
        expert=ActionExpertConfig(
            hidden_dim=32, num_layers=2, num_heads=4, ffn_mult=2, dropout=0.1, fusion_heads=4
        ),
        robot_state_dim=robot_state_dim,
        horizon=horizon,
        action_dim=action_dim,
        vl_dim=vl_dim,
        vl_num_tokens=vl_num_tokens,
        fusion=fusion,
        vl_age_input=vl_age_input,
        vl_token_positions=vl_token_positions,
    )
