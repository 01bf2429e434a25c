"""`none`: VL only, an ablation (sensor and state are ignored)."""
from __future__ import annotations

import torch
from torch import nn

from .base import FusionConfig, MeanPooledFusion



class VLOnlyFusion(MeanPooledFusion):
    """VL only (ablation): sensor and state are ignored."""

    name = "none"
    uses_sensor = False

    @classmethod
    def build(cls, cfg: FusionConfig) -> "VLOnlyFusion":
        return cls(cfg.vl_dim, cfg.expert.hidden_dim)

    def __init__(self, vl_dim: int, hidden: int) -> None:
        super().__init__()
        self.proj = nn.Linear(vl_dim, hidden)

    def forward(self, vl: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
        return self.proj(vl.mean(dim=1))
