"""Masked adaptive average pooling of a token sequence to a fixed number of tokens.

Why: the original system mean-pooled the VLM's last hidden state over the whole sequence into a single vector.
We keep K tokens instead (so the action expert can attend over coarse positions), reduced by
adaptive average pooling along the sequence: bin i averages tokens [floor(i*L/K), ceil((i+1)*L/K)),
exactly like ``torch.nn.functional.adaptive_avg_pool1d``. The plain mean of the K pooled tokens
approximates the original system's global mean (it is exact when K divides L; otherwise tokens on bin edges
are counted twice). With padded batches the pooling must ignore padding positions, which
``adaptive_avg_pool1d`` cannot do - hence this implementation as a (B, K, L) weight matrix.
"""
from __future__ import annotations

import torch


def adaptive_pool_weights(length: int, num_tokens: int, device: torch.device | None = None) -> torch.Tensor:
    """(num_tokens, length) averaging matrix of adaptive average pooling (rows sum to 1)."""
    if length < 1 or num_tokens < 1:
        raise ValueError(f"need length >= 1 and num_tokens >= 1, got {length}, {num_tokens}")
    i = torch.arange(num_tokens, device=device)
    start = torch.div(i * length, num_tokens, rounding_mode="floor")
    end = torch.div((i + 1) * length + num_tokens - 1, num_tokens, rounding_mode="floor")
    pos = torch.arange(length, device=device)
    inside = (pos[None, :] >= start[:, None]) & (pos[None, :] < end[:, None])
    weights = inside.float()
    return weights / weights.sum(dim=1, keepdim=True)


def masked_adaptive_avg_pool(
    hidden: torch.Tensor, attention_mask: torch.Tensor | None, num_tokens: int
) -> torch.Tensor:
    """Pool (B, L, D) -> (B, K, D) over the valid positions of each row (mask 1 = valid).

    Valid positions need not be contiguous or aligned (left or right padding both work); each row
    is pooled as if its valid tokens were the whole sequence. Differentiable w.r.t. ``hidden``.
    """
    if hidden.dim() != 3:
        raise ValueError(f"hidden must be (B, L, D), got {tuple(hidden.shape)}")
    batch, length, _ = hidden.shape
    if attention_mask is None:
        weights = adaptive_pool_weights(length, num_tokens, hidden.device)
        return torch.einsum("kl,bld->bkd", weights.to(hidden.dtype), hidden)
    if attention_mask.shape != (batch, length):
        raise ValueError(
            f"attention_mask must be (B, L) = {(batch, length)}, got {tuple(attention_mask.shape)}"
        )
    mask = attention_mask.bool()
    full = torch.zeros(batch, num_tokens, length, device=hidden.device, dtype=hidden.dtype)
    for b in range(batch):
        idx = mask[b].nonzero(as_tuple=True)[0]
        if idx.numel() == 0:
            raise ValueError(f"row {b} of attention_mask has no valid token")
        full[b][:, idx] = adaptive_pool_weights(idx.numel(), num_tokens, hidden.device).to(hidden.dtype)
    return torch.bmm(full, hidden)
