"""`cross_attention` (default): the sensor+state query attends over the K VL tokens."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..inference_plan import attention_projections
from .base import Fusion, FusionConfig



class CrossAttentionFusion(Fusion):
    """Sensor+state query attends over the K projected VL tokens; Linear over [query ; attended].

    Keeping the query next to the attention output means the sensor/state information survives
    even where attention learns to average VL tokens. With ``token_positions`` each token's
    projection gets a learned embedding of its place among the K pooled tokens (image tokens
    come in raster order): the attended value is then a weighted mean of places as well as of
    contents, a population code of where the attended things are in the picture.
    """

    name = "cross_attention"

    @classmethod
    def build(cls, cfg: FusionConfig) -> "CrossAttentionFusion":
        return cls(cfg.vl_dim, cls.aux_dim(cfg), cfg.expert.hidden_dim, cfg.expert.fusion_heads,
                   cfg.expert.dropout,
                   cfg.vl_num_tokens if getattr(cfg, "vl_token_positions", False) else 0)

    def __init__(self, vl_dim: int, aux_dim: int, hidden: int, heads: int, dropout: float,
                 num_tokens: int = 0) -> None:
        super().__init__()
        self.query = nn.Linear(aux_dim, hidden)
        self.kv = nn.Linear(vl_dim, hidden)
        #: (K, h) learned embedding of each token's place, or None (configs written before it).
        self.places = nn.Parameter(torch.randn(num_tokens, hidden) * 0.02) if num_tokens else None
        self.attn = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)
        self.out = nn.Linear(2 * hidden, hidden)

    def forward(self, vl: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
        q = self.query(aux).unsqueeze(1)  # (B, 1, h)
        kv = project_tokens(self.kv, self.places, vl)  # (B, K, h)
        attended, _ = self.attn(q, kv, kv, need_weights=False)
        return self.out(torch.cat([q, attended], dim=-1).squeeze(1))

    def split(self) -> tuple[nn.Module, nn.Module]:
        """VL part: the attention's keys and values of the K tokens; tick part: the query side."""
        query, key, value = attention_projections(self.attn)
        return VLKeysValues(self.kv, self.places, key, value), AttendQuery(self, query)


def project_tokens(linear: nn.Linear, places: torch.Tensor | None, vl: torch.Tensor) -> torch.Tensor:
    """(B, K, D) VL tokens -> (B, K, h): the shared projection, plus each token's place."""
    tokens = linear(vl)
    return tokens if places is None else tokens + places


class VLKeysValues(nn.Module):
    """(B, K, D) VL tokens -> (B, K, 2h): the fusion attention's keys, then its values."""

    def __init__(self, kv: nn.Linear, places: torch.Tensor | None, key: nn.Linear,
                 value: nn.Linear) -> None:
        super().__init__()
        self.kv, self.places, self.key, self.value = kv, places, key, value

    def forward(self, vl: torch.Tensor) -> torch.Tensor:
        tokens = project_tokens(self.kv, self.places, vl)
        return torch.cat([self.key(tokens), self.value(tokens)], dim=-1)


class AttendQuery(nn.Module):
    """``CrossAttentionFusion.forward`` from precomputed keys and values (eval mode)."""

    def __init__(self, fusion: CrossAttentionFusion, query_projection: nn.Linear) -> None:
        super().__init__()
        self.query, self.query_projection = fusion.query, query_projection
        self.out_proj, self.out = fusion.attn.out_proj, fusion.out
        self.heads = fusion.attn.num_heads

    def forward(self, keys_values: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
        q = self.query(aux)  # (B, h)
        batch, hidden = q.shape
        width = hidden // self.heads

        def heads(x: torch.Tensor) -> torch.Tensor:  # (B, N, h) -> (B, heads, N, h / heads)
            return x.reshape(batch, x.shape[1], self.heads, width).transpose(1, 2)

        keys, values = keys_values.split(hidden, dim=-1)
        attended = F.scaled_dot_product_attention(
            heads(self.query_projection(q).unsqueeze(1)), heads(keys), heads(values))
        attended = self.out_proj(attended.transpose(1, 2).reshape(batch, hidden))
        return self.out(torch.cat([q, attended], dim=-1))
