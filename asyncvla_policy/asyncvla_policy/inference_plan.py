"""The action expert's inference plan: ``ActionPolicy.infer`` cut where its inputs change at
different rates, without the arithmetic that cannot change the result.

Why: at batch 1 on a CPU the expert's time is its arithmetic and the weights it reads, and a
third of both went into work that is the same at every tick or has no effect:

* **VL context once per VL message.** The VL features change every few hundred ms while the
  action loop ticks at 10-100 Hz. The default ``cross_attention`` fusion projected the 64 VL
  tokens to keys and values (0.54 GFLOP of the original-size expert's 2.02) at every tick; here
  ``vl_context`` does it once per VL message and every tick reuses it (``VLContextCache``).
* **A one-token memory needs no attention.** The decoder's cross-attention attends over a
  memory of one token (the fused condition), so its softmax is exactly 1 and its output is
  ``out_proj(v_proj(memory))`` for every query, computed once for the memory token: the query
  and key projections are dead work. (The two matrices are kept apart, not folded into one:
  their product quantises worse to int8, measured 1.05e-2 against 8.1e-3.)
* **The first layer's self-attention is a constant.** It reads only the learned queries; it is
  computed once when the plan is built.

The plan shares the policy's weights (it copies only the split attention projections and the
constant), so building it is cheap and the checkpoint stays the only source of the weights. It is for
inference in eval mode only: dropout and autograd are the training path's business
(``ActionPolicy.forward``), and ``test_inference_plan.py`` holds the two to the same function.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

#: The normalisation statistics the plan copies from the policy (float32 at any network dtype).
NORMALISATION_BUFFERS = ("sensor_mean", "sensor_std", "state_mean", "state_std", "action_mean",
                         "action_std")


def linear_from(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    """An ``nn.Linear`` holding copies of ``weight`` (out, in) and ``bias`` (zeros when None), on
    the weight's device and in its dtype (a policy on CUDA gets a plan on CUDA)."""
    layer = nn.Linear(weight.shape[1], weight.shape[0], device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is None:
            layer.bias.zero_()
        else:
            layer.bias.copy_(bias)
    return layer


def attention_projections(mha: nn.MultiheadAttention) -> tuple[nn.Linear, nn.Linear, nn.Linear]:
    """The query, key and value input projections of ``mha`` as three ``nn.Linear`` copies.

    ValueError for the variants whose attention is not just the three projections (extra key and
    value biases, a zero-attention slot): the plan would compute something else."""
    if mha.bias_k is not None or mha.add_zero_attn:
        raise ValueError("the inference plan supports attention without add_bias_kv/add_zero_attn")
    h = mha.embed_dim
    if mha._qkv_same_embed_dim:
        weights = mha.in_proj_weight.detach().split(h)
    else:
        weights = (mha.q_proj_weight.detach(), mha.k_proj_weight.detach(),
                   mha.v_proj_weight.detach())
    biases = ((None,) * 3 if mha.in_proj_bias is None else mha.in_proj_bias.detach().split(h))
    q, k, v = (linear_from(w, b) for w, b in zip(weights, biases))
    return q, k, v


def single_token_attention(mha: nn.MultiheadAttention) -> nn.Module:
    """``mha(x, m, m)`` for a memory ``m`` of one token, as a function of ``m`` alone.

    Softmax over a single key is exactly 1, so every query gets ``out_proj(v_proj(m))``."""
    _, _, value = attention_projections(mha)
    return nn.Sequential(value, mha.out_proj)


class DecoderStep(nn.Module):
    """One pre-norm ``nn.TransformerDecoderLayer`` for a one-token memory, in eval mode."""

    def __init__(self, layer: nn.TransformerDecoderLayer, with_self_attention: bool) -> None:
        super().__init__()
        if not layer.norm_first:
            raise ValueError("the inference plan follows pre-norm decoder layers (norm_first=True)")
        self.norm1 = layer.norm1 if with_self_attention else None
        self.self_attn = layer.self_attn if with_self_attention else None
        self.memory = single_token_attention(layer.multihead_attn)
        self.norm3, self.linear1, self.linear2 = layer.norm3, layer.linear1, layer.linear2
        self.activation: Callable[[torch.Tensor], torch.Tensor] = layer.activation

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """``x`` (B, H, h) queries, ``memory`` (B, h) -> (B, H, h)."""
        if self.self_attn is not None:
            s = self.norm1(x)
            x = x + self.self_attn(s, s, s, need_weights=False)[0]
        x = x + self.memory(memory).unsqueeze(1)
        return x + self.linear2(self.activation(self.linear1(self.norm3(x))))


class SingleMemoryDecoder(nn.Module):
    """The expert's decoder stack for its one-token memory, first self-attention precomputed."""

    def __init__(self, queries: torch.Tensor, decoder: nn.TransformerDecoder) -> None:
        super().__init__()
        if decoder.norm is not None:
            raise ValueError("the inference plan expects the decoder without a final norm")
        layers = list(decoder.layers)
        first = layers[0]
        with torch.no_grad():
            q = queries.detach().unsqueeze(0)
            s = first.norm1(q)
            self.register_buffer("start", q + first.self_attn(s, s, s, need_weights=False)[0])
        self.steps = nn.ModuleList(DecoderStep(layer, with_self_attention=i > 0)
                                   for i, layer in enumerate(layers))

    def forward(self, memory: torch.Tensor) -> torch.Tensor:
        """(B, h) fused condition -> (B, H, h) decoded queries."""
        x = self.start.expand(memory.shape[0], -1, -1)
        for step in self.steps:
            x = step(x, memory)
        return x


class InferencePlan(nn.Module):
    """``vl_context(vl)`` once per VL message, then ``forward(context, window, state)`` per tick:
    physical units in and out, the same function as ``ActionPolicy.infer``."""

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        policy.eval()
        expert = policy.action_expert
        for name in NORMALISATION_BUFFERS:
            self.register_buffer(name, getattr(policy, name).detach().clone())
        self.sensor_encoder = policy.sensor_encoder
        self.vl_part, self.fuse = expert.fusion.split()
        self.decoder = SingleMemoryDecoder(expert.queries, expert.decoder)
        self.norm, self.head = expert.norm, expert.head
        #: The expert's age modulation (None: the policy does not take the VL age, and the
        #: tick has three inputs, as before the age existed).
        self.age = expert.age
        self.modulates_vl = bool(expert.fusion.modulates_vl)
        self.eval()

    @property
    def takes_age(self) -> bool:
        """Whether ``forward`` takes a fourth input, the VL features' age (B,) in seconds."""
        return self.age is not None

    @property
    def dtype(self) -> torch.dtype:
        """The networks' dtype (inputs are cast to it after normalisation, as in the policy)."""
        return self.head.weight.dtype

    def networks(self) -> list[nn.Module]:
        """The submodules holding weights (what a precision change converts; not the statistics)."""
        networks = [self.sensor_encoder, self.vl_part, self.fuse, self.decoder, self.norm, self.head]
        return networks + ([self.age] if self.age is not None else [])

    def tick_networks(self) -> list[nn.Module]:
        """The submodules a tick runs (their weights are the bytes a tick reads)."""
        return [n for n in self.networks() if n is not self.vl_part]

    def vl_context(self, vl_tokens: torch.Tensor) -> torch.Tensor:
        """Physical VL tokens (B, K, D) -> the fusion's VL context."""
        return self.vl_part(vl_tokens.to(self.dtype))

    def forward(self, vl_context: torch.Tensor, sensor_window: torch.Tensor,
                robot_state: torch.Tensor, vl_age: torch.Tensor | None = None) -> torch.Tensor:
        """VL context, physical (B, T, C) window, (B, S) state [and (B,) VL age in seconds, when
        ``takes_age``] -> physical float32 (B, H, A)."""
        dtype = self.dtype
        window = ((sensor_window - self.sensor_mean) / self.sensor_std).to(dtype)
        state = ((robot_state - self.state_mean) / self.state_std).to(dtype)
        sensor = self.sensor_encoder.encode(window)
        aux = torch.cat([sensor, state], dim=-1)
        if self.age is None:
            memory = self.fuse(vl_context, aux)
        elif self.modulates_vl:
            memory = self.fuse(vl_context, aux, lambda seen: self.age(seen, vl_age))
        else:
            memory = self.age(self.fuse(vl_context, aux), vl_age)
        actions = self.head(self.norm(self.decoder(memory))).float()
        return actions * self.action_std + self.action_mean


class VLContextCache:
    """The VL context of the newest VL tokens, recomputed only when the tokens change.

    Keyed by the tokens' values (``torch.equal``, microseconds for 64 x 2048), not by a message
    id the caller could get wrong: equal tokens give the same context by construction."""

    def __init__(self) -> None:
        self._tokens: torch.Tensor | None = None
        self._context: torch.Tensor | None = None
        #: How many times the context was computed (a new VL message, or the first tick).
        self.computed = 0

    def get(self, tokens: torch.Tensor,
            compute: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        if (self._context is None or self._tokens is None or self._tokens.shape != tokens.shape
                or self._tokens.dtype != tokens.dtype or not torch.equal(self._tokens, tokens)):
            self._context = compute(tokens)
            self._tokens = tokens.detach().clone()
            self.computed += 1
        return self._context
