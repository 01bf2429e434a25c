"""`concat`: a Linear over [mean-pooled VL ; sensor ; state]."""
from __future__ import annotations

import torch
from torch import nn

from .base import FusionConfig, MeanPooledFusion



class ConcatFusion(MeanPooledFusion):
    """Linear over [mean-pooled VL ; sensor ; state] (the original system's concat plus the state)."""

    name = "concat"

    @classmethod
    def build(cls, cfg: FusionConfig) -> "ConcatFusion":
        return cls(cfg.vl_dim, cls.aux_dim(cfg), cfg.expert.hidden_dim)

    def __init__(self, vl_dim: int, aux_dim: int, hidden: int) -> None:
        super().__init__()
        self.proj = nn.Linear(vl_dim + aux_dim, hidden)

    def forward(self, vl: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
        return self.proj(torch.cat([vl.mean(dim=1), aux], dim=-1))
