"""Action expert: fuse VL tokens, sensor features and robot state, decode an action chunk.

Differences from the original system (Najongs/Insertion_VLA), on purpose:

* **Robot state is a direct input.** The original system only saw the state through ``z_chunk`` and the
  targets; here a (B, S) state vector joins the sensor feature in every fusion mode except
  ``"none"``.
* **VL input is K tokens** (B, K, D) instead of one mean-pooled vector. ``concat``/``gated``/``none``
  mean-pool them (the mean of the extractor's K adaptively pooled tokens approximates the original system's
  global mean); ``cross_attention`` attends over the K tokens, so it is token-level.
* **``z_chunk`` defaults to zeros and must never hold the target.** The original system fed the ground-truth
  chunk as ``z_chunk`` during training (so the loss was |delta|^2 and the target leaked into the
  input) and zeros at inference. Training code must pass ``None`` (or a chunk known at inference
  time, e.g. the previous prediction), never the label.

Output: ``z_chunk + delta`` with delta from the decoder (B, H, action_dim). All values here are in
the policy's normalised units; :class:`ActionPolicy` handles (de)normalisation.
"""
from __future__ import annotations

import torch
from torch import nn

from .age_conditioning import AgeModulation
from .config import PolicyConfig
from .validation import check_shape


def build_fusion(cfg: PolicyConfig) -> nn.Module:
    """Fusion module for ``cfg.fusion`` from the table in ``fusions``."""
    from .fusions import FUSIONS

    if cfg.fusion not in FUSIONS:
        raise ValueError(f"unknown fusion {cfg.fusion!r}; expected one of {list(FUSIONS)}")
    return FUSIONS[cfg.fusion].build(cfg)


class ActionExpert(nn.Module):
    """(VL tokens, sensor feature, robot state[, z_chunk]) -> action chunk (B, H, A).

    Takes the whole :class:`PolicyConfig` because it needs the input widths (vl_dim, sensor_dim,
    robot_state_dim) and output shape (horizon, action_dim) as well as ``cfg.expert``.
    """

    def __init__(self, cfg: PolicyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        hidden = cfg.expert.hidden_dim
        self.fusion = build_fusion(cfg)
        #: FiLM of the fused condition by the VL features' age (``cfg.vl_age_input``), else None.
        self.age = AgeModulation(hidden) if cfg.vl_age_input else None
        self.queries = nn.Parameter(torch.randn(cfg.horizon, hidden) * 0.02)
        layer = nn.TransformerDecoderLayer(
            d_model=hidden,
            nhead=cfg.expert.num_heads,
            dim_feedforward=hidden * cfg.expert.ffn_mult,
            dropout=cfg.expert.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.decoder = nn.TransformerDecoder(layer, cfg.expert.num_layers)
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, cfg.action_dim)

    def condition(
        self, vl_tokens: torch.Tensor, sensor_features: torch.Tensor, robot_state: torch.Tensor,
        vl_age: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The fused conditioning token (B, 1, hidden) the decoder attends to; ``vl_age`` (B,)
        seconds, required when the expert takes the age, ignored otherwise."""
        cfg = self.cfg
        check_shape(vl_tokens, (None, cfg.vl_num_tokens, cfg.vl_dim), "vl_tokens", "(B, K, D)")
        batch = vl_tokens.shape[0]
        check_shape(sensor_features, (batch, cfg.sensor_dim), "sensor_features", "(B, sensor_dim)")
        check_shape(robot_state, (batch, cfg.robot_state_dim), "robot_state", "(B, S)")
        aux = torch.cat([sensor_features, robot_state], dim=-1)
        if self.age is None:
            return self.fusion(vl_tokens, aux).unsqueeze(1)
        if vl_age is None:
            raise ValueError("this policy takes the VL features' age (vl_age_input): pass vl_age")
        check_shape(vl_age.reshape(-1), (batch,), "vl_age", "(B,)")
        if self.fusion.modulates_vl:  # the age modulates what the picture says
            return self.fusion(vl_tokens, aux, lambda seen: self.age(seen, vl_age)).unsqueeze(1)
        return self.age(self.fusion(vl_tokens, aux), vl_age).unsqueeze(1)

    def forward(
        self,
        vl_tokens: torch.Tensor,
        sensor_features: torch.Tensor,
        robot_state: torch.Tensor,
        z_chunk: torch.Tensor | None = None,
        vl_age: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``z_chunk + delta``; ``z_chunk`` = zeros unless given (never pass the training target)."""
        memory = self.condition(vl_tokens, sensor_features, robot_state, vl_age)
        batch = memory.shape[0]
        queries = self.queries.unsqueeze(0).expand(batch, -1, -1)
        delta = self.head(self.norm(self.decoder(queries, memory)))
        if z_chunk is None:
            return delta
        check_shape(z_chunk, (batch, self.cfg.horizon, self.cfg.action_dim), "z_chunk", "(B, H, A)")
        return z_chunk.to(delta.dtype) + delta
