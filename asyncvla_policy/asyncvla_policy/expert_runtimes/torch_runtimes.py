"""Runtimes that execute the inference plan with torch itself (no extra package but torchao)."""
from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import ClassVar

import numpy as np
import torch

from ..inference_plan import InferencePlan
from .base import ExpertRuntime, tick_bytes




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
    """Eager torch on ``self.plan`` (the policy's plan, or a converted copy), under ``no_grad``."""

    name = "torch_float32"
    summary = "plain torch, float32 weights (the reference's function; rounding differs by < 1e-5)"
    tolerance = 1e-5
    autocast: ClassVar[torch.dtype | None] = None

    def prepare(self) -> None:
        if self.threads:
            torch.set_num_threads(self.threads)
        self.plan = self.convert(self.plan).eval()
        self.module: torch.nn.Module = self.plan

    def convert(self, plan: InferencePlan) -> InferencePlan:
        """The plan as this runtime runs it (default: unchanged, sharing the policy's weights)."""
        return plan

    def precision(self) -> contextlib.AbstractContextManager:
        return torch.autocast(self.policy.device.type, dtype=self.autocast,
                              enabled=self.autocast is not None)

    @torch.no_grad()
    def vl_context(self, vl: torch.Tensor) -> torch.Tensor:
        with self.precision():
            return self.plan.vl_context(vl)

    @torch.no_grad()
    def run(self, *inputs: torch.Tensor) -> np.ndarray:
        with self.precision():
            return self.module(*inputs).float().cpu().numpy()

    def weight_bytes(self) -> int:
        return tick_bytes(self.plan)


class TorchBf16Autocast(TorchRuntime):
    name = "torch_bf16_autocast"
    summary = "torch autocast to bfloat16 over float32 weights (expert_dtype: bfloat16)"
    tolerance = 5e-2  # tiny config; the full-size expert measures < 1e-2 (bench_expert_cpu.py)
    autocast = torch.bfloat16


def bf16_copy(plan: InferencePlan) -> InferencePlan:
    """A copy of the plan with bfloat16 networks; the normalisation stays float32."""
    out = copy.deepcopy(plan)
    for network in out.networks():
        network.to(torch.bfloat16)
    return out


class TorchBf16Weights(TorchRuntime):
    name = "torch_bf16_weights"
    summary = "torch with a bfloat16 copy of the weights (half the bytes per tick)"
    tolerance = 5e-2

    def convert(self, plan: InferencePlan) -> InferencePlan:
        return bf16_copy(plan)


class TorchaoInt8(TorchRuntime):
    """torchao's int8 weight-only quantisation of every ``nn.Linear`` (per-row scales).

    The self-attention layers of the decoder and the sensor encoder keep their packed input
    projections as raw float32 parameters and the sensor encoder's convolutions are not Linear,
    so those bytes stay float32 (the plan's own attention projections are Linear: quantised).
    """

    name = "torchao_int8"
    summary = "torchao int8 weight-only (Linear layers; attention input projections stay float32)"
    tolerance = 5e-2
    requires = (("torchao", "torchao"),)

    def convert(self, plan: InferencePlan) -> InferencePlan:
        from torchao.quantization import Int8WeightOnlyConfig, quantize_

        out = copy.deepcopy(plan)
        quantize_(out, Int8WeightOnlyConfig())
        return out

    def weight_bytes(self) -> int:
        return tick_bytes(self.plan, quantised_bytes)


def quantised_bytes(module: torch.nn.Module) -> int:
    """Bytes of a module's parameters as stored, int8 data and scales of torchao's tensors."""
    total = 0
    for p in module.parameters():
        inner = getattr(p, "qdata", None)
        scale = getattr(p, "scale", None)
        if inner is not None:
            total += inner.numel() * inner.element_size()
            total += 0 if scale is None else scale.numel() * scale.element_size()
        else:
            total += p.numel() * p.element_size()
    return total


class TorchCompile(TorchRuntime):
    """``torch.compile`` (inductor) of the plan's float32 tick.

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

    def run(self, *inputs: torch.Tensor) -> np.ndarray:
        # Off at every call: a recompile (a guard miss) traces again and must see it off too.
        with mha_fastpath_off():
            return super().run(*inputs)
