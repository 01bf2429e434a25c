"""ONNX Runtime: the plan's tick exported to ONNX at load, run by ORT's CPU provider."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from .base import ExpertRuntime

#: The tick's input names, in order; the VL age only when the plan takes it.
_INPUTS = ("vl_context", "sensor_window", "robot_state", "vl_age")


def float32_onnx(runtime: ExpertRuntime, tmp: str) -> Path:
    """The float32 export: ``ort_float32``'s cached file when there is one, else a new one."""
    path = runtime.cache_path("onnx", OrtFloat32.name) or Path(tmp) / "plain.onnx"
    if not path.exists():
        export_onnx(runtime.plan, runtime.example_inputs(), path)
    return path


def export_onnx(plan: torch.nn.Module, inputs: tuple[torch.Tensor, ...], path: Path) -> None:
    """The plan's tick at batch 1 as an ONNX file (weights in one external data file)."""
    with torch.no_grad():
        torch.onnx.export(plan.eval(), inputs, str(path), input_names=list(_INPUTS[:len(inputs)]),
                          output_names=["actions"], dynamo=True, external_data=True,
                          verbose=False)


class OrtFloat32(ExpertRuntime):
    name = "ort_float32"
    summary = "ONNX Runtime, float32"
    tolerance = 1e-3
    requires = (("onnxruntime", "onnxruntime"), ("onnx", "onnx"), ("onnxscript", "onnxscript"))

    def prepare(self) -> None:
        import onnxruntime as ort

        with tempfile.TemporaryDirectory() as tmp:
            path = self.cache_path("onnx") or Path(tmp) / "expert.onnx"
            if not path.exists():
                self.convert(path)
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            self.session = ort.InferenceSession(str(path), options,
                                                providers=["CPUExecutionProvider"])
            self._bytes = sum(os.path.getsize(p) for p in path.parent.glob(path.name + "*"))

    def convert(self, path: Path) -> None:
        export_onnx(self.plan, self.example_inputs(), path)

    def run(self, *inputs: torch.Tensor) -> np.ndarray:
        feeds = dict(zip(_INPUTS, (t.cpu().numpy() for t in inputs)))
        return self.session.run(None, feeds)[0]

    def weight_bytes(self) -> int:
        return self._bytes


class OrtInt8(OrtFloat32):
    """Every MatMul's weight as int8 (symmetric, blocks of 128 along K, ``MatMulNBits``);
    activations stay float32 (weight-only)."""

    name = "ort_int8"
    summary = "ONNX Runtime, int8 weight-only MatMulNBits (float32 activations)"
    tolerance = 5e-2

    def convert(self, path: Path) -> None:
        import onnx
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

        with tempfile.TemporaryDirectory() as tmp:
            quant = MatMulNBitsQuantizer(onnx.load(str(float32_onnx(self, tmp))), bits=8, block_size=128,
                                         is_symmetric=True)
            quant.process()
            quant.model.save_model_to_file(str(path), use_external_data_format=True)
