"""What every fusion strategy is: VL tokens (B, K, D) and the sensor + state vector
(B, sensor_dim + S) in, one (B, hidden) vector out, built from the PolicyConfig."""
from __future__ import annotations

from typing import ClassVar

from torch import nn

from ..config import PolicyConfig


class Fusion(nn.Module):
    """Base class: subclasses set `name` (the config value) and implement `build` / `forward`."""

    name: ClassVar[str] = ""
    #: False when the strategy ignores the sensor and state (DDP must then look for parameters
    #: that get no gradient: the sensor encoder's).
    uses_sensor: ClassVar[bool] = True

    @classmethod
    def build(cls, cfg: PolicyConfig) -> "Fusion":
        raise NotImplementedError

    @staticmethod
    def aux_dim(cfg: PolicyConfig) -> int:
        return cfg.sensor_dim + cfg.robot_state_dim
