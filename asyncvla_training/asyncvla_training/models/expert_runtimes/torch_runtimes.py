"""Runtimes that execute ``ActionPolicy.infer`` with torch itself (no extra package but torchao)."""
from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import ClassVar

import numpy as np
import torch

from .base import ExpertRuntime, InferGraph, tensor_bytes




@contextlib.contextmanager
def mha_fastpath_off() -> Iterator[None]:
    """torch's fused TransformerEncoderLayer inference kernel has a fake (meta) kernel whose
    output strides inductor gets wrong (torch 2.13: an ``assert_size_stride`` failure at the first
    compiled call); compiled, the unfused layers are fused by the compiler anyway."""
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)

class TorchRuntime(ExpertRuntime):
    """Eager torch on ``self.module`` (the policy, or a converted copy), under ``no_grad``."""

    name = "torch_float32"
    summary = "plain torch, float32 weights (the reference)"
    tolerance = 0.0
    autocast: ClassVar[torch.dtype | None] = None

    def prepare(self) -> None:
        if self.threads:
            torch.set_num_threads(self.threads)
        self.module: torch.nn.Module = InferGraph(self.convert(self.policy)).eval()

    def convert(self, policy: torch.nn.Module) -> torch.nn.Module:
        """The policy as this runtime runs it (default: unchanged, sharing its weights)."""
        return policy

    @torch.no_grad()
    def run(self, vl: torch.Tensor, window: torch.Tensor, state: torch.Tensor) -> np.ndarray:
        device = self.policy.device.type
        with torch.autocast(device, dtype=self.autocast, enabled=self.autocast is not None):
            return self.module(vl, window, state).float().cpu().numpy()

    def weight_bytes(self) -> int:
        return tensor_bytes(self.module)


class TorchBf16Autocast(TorchRuntime):
    name = "torch_bf16_autocast"
    summary = "torch autocast to bfloat16 over float32 weights (expert_dtype: bfloat16)"
    tolerance = 5e-2  # tiny config; the full-size expert measures < 1e-2 (bench_expert_cpu.py)
    autocast = torch.bfloat16


def bf16_copy(policy: torch.nn.Module) -> torch.nn.Module:
    """A copy of the policy with bfloat16 networks; the normalisation stays float32."""
    out = copy.deepcopy(policy)
    out.sensor_encoder.to(torch.bfloat16)
    out.action_expert.to(torch.bfloat16)
    return out


class TorchBf16Weights(TorchRuntime):
    name = "torch_bf16_weights"
    summary = "torch with a bfloat16 copy of the weights (half the bytes per tick)"
    tolerance = 5e-2

    def convert(self, policy: torch.nn.Module) -> torch.nn.Module:
        return bf16_copy(policy)


class TorchaoInt8(TorchRuntime):
    """torchao's int8 weight-only quantisation of every ``nn.Linear`` (per-row scales).

    ``nn.MultiheadAttention`` keeps its packed input projection as a raw float32 parameter and
    the sensor encoder's convolutions are not Linear, so about a third of the bytes stay float32.
    """

    name = "torchao_int8"
    summary = "torchao int8 weight-only (Linear layers; attention input projections stay float32)"
    tolerance = 5e-2
    requires = (("torchao", "torchao"),)

    def convert(self, policy: torch.nn.Module) -> torch.nn.Module:
        from torchao.quantization import Int8WeightOnlyConfig, quantize_

        out = copy.deepcopy(policy)
        quantize_(out, Int8WeightOnlyConfig())
        return out

    def weight_bytes(self) -> int:
        total = 0
        for p in self.module.parameters():
            inner = getattr(p, "qdata", None)
            scale = getattr(p, "scale", None)
            if inner is not None:
                total += inner.numel() * inner.element_size()
                total += 0 if scale is None else scale.numel() * scale.element_size()
            else:
                total += p.numel() * p.element_size()
        return total


class TorchCompile(TorchRuntime):
    """``torch.compile`` (inductor) of the float32 graph.

    Compiled with the fused-attention fast path off: its fake kernel disagrees with the real one
    about output strides (torch 2.13), which fails the trace; inductor fuses the layers itself.
    """

    name = "torch_compile"
    summary = "torch.compile (inductor) of the float32 graph"
    tolerance = 1e-3

    def prepare(self) -> None:
        super().prepare()
        self.module = torch.compile(self.module, dynamic=False)
        self.run(*self.example_inputs())  # compile now, not at the first tick

    def run(self, vl: torch.Tensor, window: torch.Tensor, state: torch.Tensor) -> np.ndarray:
        # Off at every call: a recompile (a guard miss) traces again and must see it off too.
        with mha_fastpath_off():
            return super().run(vl, window, state)
