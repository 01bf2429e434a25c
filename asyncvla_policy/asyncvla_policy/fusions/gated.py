"""`gated`: a learned sigmoid gate mixing the VL mean and the sensor+state."""
from __future__ import annotations

import torch
from torch import nn

from .base import FusionConfig, MeanPooledFusion



class GatedFusion(MeanPooledFusion):
    """Learned sigmoid gate mixing the projected VL mean and the projected sensor+state."""

    name = "gated"

    @classmethod
    def build(cls, cfg: FusionConfig) -> "GatedFusion":
        return cls(cfg.vl_dim, cls.aux_dim(cfg), cfg.expert.hidden_dim)

    def __init__(self, vl_dim: int, aux_dim: int, hidden: int) -> None:
        super().__init__()
        self.vl = nn.Linear(vl_dim, hidden)
        self.aux = nn.Linear(aux_dim, hidden)
        self.gate = nn.Linear(2 * hidden, hidden)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, vl: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
        v = self.vl(vl.mean(dim=1))
        a = self.aux(aux)
        g = torch.sigmoid(self.gate(torch.cat([v, a], dim=-1)))
        return self.out(g * v + (1.0 - g) * a)
