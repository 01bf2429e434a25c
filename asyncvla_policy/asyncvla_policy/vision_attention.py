"""Qwen2.5-VL vision attention with one SDPA call per window *size* instead of per window.

Why: with SDPA, transformers' vision attention splits the sequence at ``cu_seqlens`` and calls
attention once per window in a Python loop. Five 640x360 views make 120 windows per windowed
layer and 28 such layers: about 3400 small attention calls per VL update, which on a GPU are
bound by Python and kernel launches, not arithmetic (the issue's 136 ms vision tower). Windows of
equal length need no mask to be batched, so here they are gathered into one (B, heads, n, d)
batch per distinct length (interior windows all have the same size; edge windows a few others),
attended in one call each, and scattered back. The arithmetic per window is unchanged, so the
result equals the loop's up to kernel rounding (tested on the tiny model).

The replacement is installed per module instance (``install``/``uninstall``), never globally,
and only while the extractor's optimised path is on.
"""
from __future__ import annotations

import threading
import types
from collections import defaultdict

import torch
import torch.nn.functional as F
from torch import nn


class _GroupPlan:
    """Gather indices per distinct chunk length, built once per ``cu_seqlens``."""

    def __init__(self, cu_seqlens: torch.Tensor) -> None:
        bounds = cu_seqlens.tolist()
        by_length: dict[int, list[int]] = defaultdict(list)
        for start, end in zip(bounds[:-1], bounds[1:]):
            if end > start:
                by_length[end - start].append(start)
        device = cu_seqlens.device
        self.groups = []
        for length, starts in by_length.items():
            offsets = torch.arange(length, device=device)
            index = (torch.tensor(starts, device=device)[:, None] + offsets[None, :]).reshape(-1)
            self.groups.append((length, len(starts), index))


_PLANS: list[tuple[torch.Tensor, _GroupPlan]] = []  # the last few cu_seqlens seen, by identity
_PLANS_LOCK = threading.Lock()


def _plan_for(cu_seqlens: torch.Tensor) -> _GroupPlan:
    """One plan per ``cu_seqlens`` tensor: every layer of a forward passes the same two objects
    (windows, whole images), so each is planned once per forward, not once per layer."""
    with _PLANS_LOCK:
        for tensor, plan in _PLANS:
            if tensor is cu_seqlens:
                return plan
        plan = _GroupPlan(cu_seqlens)
        _PLANS.append((cu_seqlens, plan))
        del _PLANS[:-4]
        return plan


def _grouped_forward(self: nn.Module, hidden_states: torch.Tensor, cu_seqlens: torch.Tensor,
                     position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
                     max_seqlen: int | None = None, **kwargs) -> torch.Tensor:
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import apply_rotary_pos_emb_vision

    seq_length = hidden_states.shape[0]
    q, k, v = (self.qkv(hidden_states).reshape(seq_length, 3, self.num_heads, -1)
               .permute(1, 0, 2, 3).unbind(0))  # each (seq, heads, head_dim)
    cos, sin = position_embeddings
    q, k = apply_rotary_pos_emb_vision(q, k, cos, sin)
    plan = _plan_for(cu_seqlens)
    out = torch.empty_like(q)
    heads, head_dim = q.shape[1], q.shape[2]
    dropout = self.attention_dropout if self.training else 0.0
    for length, count, index in plan.groups:
        def batch(t: torch.Tensor) -> torch.Tensor:
            return t.index_select(0, index).view(count, length, heads, head_dim).transpose(1, 2)

        attended = F.scaled_dot_product_attention(batch(q), batch(k), batch(v),
                                                  dropout_p=dropout, scale=self.scaling)
        out.index_copy_(0, index, attended.transpose(1, 2).reshape(count * length, heads,
                                                                   head_dim))
    return self.proj(out.reshape(seq_length, -1))


def vision_attention_modules(model: nn.Module) -> list[nn.Module]:
    """The vision tower's attention modules (Qwen2_5_VLVisionAttention instances)."""
    return [m for m in model.modules() if type(m).__name__ == "Qwen2_5_VLVisionAttention"]


def install(model: nn.Module) -> int:
    """Use grouped attention in every vision attention module of ``model``; returns how many."""
    modules = vision_attention_modules(model)
    for module in modules:
        if "forward" not in module.__dict__:
            module.forward = types.MethodType(_grouped_forward, module)
    return len(modules)


def uninstall(model: nn.Module) -> None:
    """Back to transformers' own forward."""
    for module in vision_attention_modules(model):
        module.__dict__.pop("forward", None)
