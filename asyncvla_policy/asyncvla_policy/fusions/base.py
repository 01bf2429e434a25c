"""What every fusion strategy is: VL tokens (B, K, D) and the sensor + state vector
(B, sensor_dim + S) in, one (B, hidden) vector out, built from the policy config."""
from __future__ import annotations

from typing import Any, ClassVar, Protocol

import torch
from torch import nn


class FusionConfig(Protocol):
    """What a fusion is built from: the fields of models.config.PolicyConfig it reads (a protocol,
    so this package never imports the config module, which validates names against it)."""

    vl_dim: int
    vl_num_tokens: int
    vl_token_positions: bool
    sensor_dim: int
    robot_state_dim: int
    expert: Any


class Fusion(nn.Module):
    """Base class: subclasses set `name` (the config value) and implement `build` / `forward`."""

    name: ClassVar[str] = ""
    #: False when the strategy ignores the sensor and state (DDP must then look for parameters
    #: that get no gradient: the sensor encoder's).
    uses_sensor: ClassVar[bool] = True
    #: True when ``forward`` (and its tick part) take ``age_film``: a function applied to what
    #: the VL features say (a (B, hidden) summary) before it meets the sensor and state, so the
    #: VL features' age modulates the picture's contribution alone (``age_conditioning``).
    #: Otherwise the expert modulates the fused condition as a whole.
    modulates_vl: ClassVar[bool] = False

    @classmethod
    def build(cls, cfg: FusionConfig) -> "Fusion":
        raise NotImplementedError

    @staticmethod
    def aux_dim(cfg: FusionConfig) -> int:
        return cfg.sensor_dim + cfg.robot_state_dim

    def split(self) -> tuple[nn.Module, nn.Module]:
        """``(vl_part, tick_part)`` with ``tick_part(vl_part(vl), aux) == forward(vl, aux)`` in eval
        mode: the VL tokens change every few hundred ms, the sensor every tick, so inference
        (``models.inference_plan``) runs ``vl_part`` once per VL message. Default: no VL part."""
        return nn.Identity(), self


class MeanTokens(nn.Module):
    """(B, K, D) -> (B, 1, D): the token mean, kept as one token so ``forward`` takes it as is."""

    def forward(self, vl: torch.Tensor) -> torch.Tensor:
        return vl.mean(dim=1, keepdim=True)


class MeanPooledFusion(Fusion):
    """A fusion that reads the VL tokens only through their mean: its VL part is the mean."""

    def split(self) -> tuple[nn.Module, nn.Module]:
        return MeanTokens(), self
