"""`cross_attention` (default): the sensor+state query attends over the K VL tokens."""
from __future__ import annotations

import torch
from torch import nn

from .base import Fusion, FusionConfig



class CrossAttentionFusion(Fusion):
    """Sensor+state query attends over the K projected VL tokens; Linear over [query ; attended].

    Keeping the query next to the attention output means the sensor/state information survives
    even where attention learns to average VL tokens.
    """

    name = "cross_attention"

    @classmethod
    def build(cls, cfg: FusionConfig) -> "CrossAttentionFusion":
        return cls(cfg.vl_dim, cls.aux_dim(cfg), cfg.expert.hidden_dim, cfg.expert.fusion_heads,
                   cfg.expert.dropout)

    def __init__(self, vl_dim: int, aux_dim: int, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.query = nn.Linear(aux_dim, hidden)
        self.kv = nn.Linear(vl_dim, hidden)
        self.attn = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)
        self.out = nn.Linear(2 * hidden, hidden)

    def forward(self, vl: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
        q = self.query(aux).unsqueeze(1)  # (B, 1, h)
        kv = self.kv(vl)  # (B, K, h)
        attended, _ = self.attn(q, kv, kv, need_weights=False)
        return self.out(torch.cat([q, attended], dim=-1).squeeze(1))
