"""OpenVINO: the plan's tick converted to an OpenVINO model at load, compiled for its CPU plugin.

Two CPU plugin settings decide the arithmetic, and both are set explicitly so that a runtime
computes the same thing on every CPU kind:

* ``INFERENCE_PRECISION_HINT``: the plugin's default is bfloat16 on CPUs with native bfloat16
  (AVX-512 BF16, AMX), float32 elsewhere; every registered runtime asks for float32.
* ``DYNAMIC_QUANTIZATION_GROUP_SIZE``: on CPUs with VNNI or AMX the plugin quantises the
  activations of a matmul with int8 weights to int8 at run time, in groups of this many input
  values (default 32), and multiplies in int8; elsewhere it does not. Measured on the
  full-size expert (AVX-512 VNNI, 12 probe inputs): 2.0e-2 from float32 with it, 9.9e-3 without.
  ``openvino_int8`` sets 0 (off: weight-only everywhere, as its name says);
  ``openvino_int8_dynamic`` keeps 32 and is the faster, less accurate choice where it applies.
"""
from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import torch

from .base import ExpertRuntime

LOG = logging.getLogger("asyncvla.expert_runtime")


class OvFloat32(ExpertRuntime):
    name = "openvino_float32"
    summary = "OpenVINO CPU, float32"
    tolerance = 1e-3
    requires = (("openvino", "openvino"),)
    precision = "f32"
    #: The CPU plugin's DYNAMIC_QUANTIZATION_GROUP_SIZE (0: activations never quantised).
    dynamic_quantization: ClassVar[int] = 0
    #: The runtime whose converted model this one compiles (None: its own).
    converted_as: ClassVar[str | None] = None

    def prepare(self) -> None:
        import openvino as ov

        core = ov.Core()
        path = self.cache_path("xml", self.converted_as)
        if path is not None and path.exists():
            model = core.read_model(str(path))
        else:
            warn_if_telemetry_on()
            model = self.compress(float32_model(self, core))
            if path is not None and not path.exists():
                ov.save_model(model, str(path), compress_to_fp16=False)
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY",
                                  "INFERENCE_PRECISION_HINT": self.precision}
        if "DYNAMIC_QUANTIZATION_GROUP_SIZE" in core.get_property("CPU", "SUPPORTED_PROPERTIES"):
            config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = self.dynamic_quantization
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = self.threads
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self._bytes = _constant_bytes(model)

    def compress(self, model: Any) -> Any:
        """The converted model as this runtime stores its weights (default: unchanged)."""
        return model

    def run(self, *inputs: torch.Tensor) -> np.ndarray:
        result = self.request.infer([t.cpu().numpy() for t in inputs])
        return np.asarray(result[self.compiled.output(0)])

    def weight_bytes(self) -> int:
        return self._bytes


def float32_model(runtime: ExpertRuntime, core: Any) -> Any:
    """The converted float32 model: ``openvino_float32``'s cached file when there is one."""
    import openvino as ov

    path = runtime.cache_path("xml", OvFloat32.name)
    if path is not None and path.exists():
        return core.read_model(str(path))
    with torch.no_grad():  # torch.export: TorchScript tracing trips on the attention
        program = torch.export.export(runtime.plan.eval(), runtime.example_inputs())
    model = ov.convert_model(program)
    if path is not None:
        ov.save_model(model, str(path), compress_to_fp16=False)
        return core.read_model(str(path))  # a fresh copy: compress() may rewrite this one
    return model


def telemetry_consent() -> str:
    """This user's OpenVINO telemetry choice, as the conversion tools read it: "declined",
    "accepted", "undecided" (no choice recorded: model conversion and NNCF then send) or
    "absent" (openvino-telemetry is not installed: nothing is sent)."""
    try:
        from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker
    except ImportError:
        return "absent"
    result = OptInChecker().check(enable_opt_in_dialog=False, disable_in_ci=True)
    return {ConsentCheckResult.DECLINED: "declined", ConsentCheckResult.ACCEPTED: "accepted"}.get(
        result, "undecided")


def warn_if_telemetry_on() -> None:
    """Say so before a conversion that would send usage data: ``ov.convert_model`` and
    ``nncf.compress_weights`` send it, from processes forked off the action node, unless the user
    declined (``opt_in_out --opt_out``; ``./dev.sh setup`` declines it where no choice was made)."""
    consent = telemetry_consent()
    if consent in ("accepted", "undecided"):
        LOG.warning("OpenVINO/NNCF telemetry is %s for this user: converting the expert will try "
                    "to send usage data to Google Analytics from forked processes. Run "
                    "`opt_in_out --opt_out` to decline it (asyncvla_bringup/ROBOT_PC.md).",
                    "on" if consent == "accepted" else "on by default")


def _constant_bytes(model: Any) -> int:
    """Bytes of the model's constants (its weights, as stored)."""
    return sum(op.get_byte_size() for op in model.get_ops() if op.get_type_name() == "Constant")


class OvInt8(OvFloat32):
    """NNCF's documented weight compression (``nncf.compress_weights``, INT8_SYM, per output
    channel): int8 weights that the CPU plugin decompresses inside its matmul kernel; the
    activations stay float32 on every CPU (dynamic quantisation off).

    Symmetric, not asymmetric: on the full-size expert (12 probe inputs) 9.9e-3 from float32
    against 1.2e-2."""

    name = "openvino_int8"
    summary = "OpenVINO CPU, int8 weight-only (nncf.compress_weights), float32 activations"
    tolerance = 5e-2
    requires = (("openvino", "openvino"), ("nncf", "nncf"))

    def compress(self, model: Any) -> Any:
        import nncf

        return nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_SYM)


class OvInt8Dynamic(OvInt8):
    """``openvino_int8``'s model with the CPU plugin's dynamic quantisation on: on CPUs with VNNI
    or AMX, each matmul's activations are quantised to int8 at run time (groups of 32 input
    values) and multiplied in int8; elsewhere it computes as ``openvino_int8``."""

    name = "openvino_int8_dynamic"
    summary = ("OpenVINO CPU, int8 weights and, on VNNI/AMX CPUs, int8 activations quantised at "
               "run time")
    tolerance = 1e-1
    dynamic_quantization = 32
    converted_as = OvInt8.name
