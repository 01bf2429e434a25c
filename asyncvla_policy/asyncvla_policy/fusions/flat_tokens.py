"""`flat_tokens`: every VL token through a small shared projection, all of them side by side.

Why: where something is in the picture is which image tokens show it. A mean over tokens, or an
attention-weighted mean, blurs that into "what"; a linear map over the tokens laid side by side
keeps it (the VLM's pooled tokens come in the sequence's order, image tokens in raster order).
A per-token projection to ``FLAT_WIDTH`` first keeps the map small: K x FLAT_WIDTH inputs instead
of K x D (64 x 32 for Qwen2.5-VL-3B's 64 x 2048).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .base import Fusion, FusionConfig

#: Width each VL token is projected to before the tokens are laid side by side.
FLAT_WIDTH = 32


class FlatTokens(nn.Module):
    """(B, K, D) -> (B, K * FLAT_WIDTH): the per-token projection, flattened (the VL part)."""

    def __init__(self, vl_dim: int) -> None:
        super().__init__()
        self.project = nn.Linear(vl_dim, FLAT_WIDTH)

    def forward(self, vl: torch.Tensor) -> torch.Tensor:
        return self.project(vl).flatten(1)


class FlatTokensFusion(Fusion):
    """``out(GELU(age_film(vl_map(flat tokens)) + aux_map(sensor ; state)))``: the VL features'
    age (when the policy takes it) modulates what the picture says, not what the sensors say."""

    name = "flat_tokens"
    modulates_vl = True

    @classmethod
    def build(cls, cfg: FusionConfig) -> "FlatTokensFusion":
        return cls(cfg.vl_dim, cfg.vl_num_tokens, cls.aux_dim(cfg), cfg.expert.hidden_dim)

    def __init__(self, vl_dim: int, num_tokens: int, aux_dim: int, hidden: int) -> None:
        super().__init__()
        self.tokens = FlatTokens(vl_dim)
        self.tick = FlatTokensTick(num_tokens * FLAT_WIDTH, aux_dim, hidden)

    def forward(self, vl: torch.Tensor, aux: torch.Tensor,
                age_film: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        return self.tick(self.tokens(vl), aux, age_film)

    def split(self) -> tuple[nn.Module, nn.Module]:
        return self.tokens, self.tick


class FlatTokensTick(nn.Module):
    """The per-tick part: from the flattened tokens (computed once per VL message) and aux."""

    def __init__(self, flat_dim: int, aux_dim: int, hidden: int) -> None:
        super().__init__()
        self.vl_map = nn.Linear(flat_dim, hidden)
        self.aux_map = nn.Linear(aux_dim, hidden)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, flat: torch.Tensor, aux: torch.Tensor,
                age_film: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        seen = self.vl_map(flat)
        if age_film is not None:
            seen = age_film(seen)
        return self.out(nn.functional.gelu(seen + self.aux_map(aux)))
