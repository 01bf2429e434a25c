"""What every fusion strategy is: VL tokens (B, K, D) and the sensor + state vector
(B, sensor_dim + S) in, one (B, hidden) vector out, built from the policy config."""
from __future__ import annotations

from typing import Any, ClassVar, Protocol

from torch import nn


class FusionConfig(Protocol):
    """What a fusion is built from: the fields of models.config.PolicyConfig it reads (a protocol,
    so this package never imports the config module, which validates names against it)."""

    vl_dim: int
    sensor_dim: int
    robot_state_dim: int
    expert: Any


class Fusion(nn.Module):
    """Base class: subclasses set `name` (the config value) and implement `build` / `forward`."""

    name: ClassVar[str] = ""
    #: False when the strategy ignores the sensor and state (DDP must then look for parameters
    #: that get no gradient: the sensor encoder's).
    uses_sensor: ClassVar[bool] = True

    @classmethod
    def build(cls, cfg: FusionConfig) -> "Fusion":
        raise NotImplementedError

    @staticmethod
    def aux_dim(cfg: FusionConfig) -> int:
        return cfg.sensor_dim + cfg.robot_state_dim
