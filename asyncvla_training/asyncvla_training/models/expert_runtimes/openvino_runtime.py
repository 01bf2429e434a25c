"""OpenVINO: the plan's tick converted to an OpenVINO model at load, compiled for its CPU plugin."""
from __future__ import annotations

import logging
from typing import Any

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

    def prepare(self) -> None:
        import openvino as ov

        core = ov.Core()
        path = self.cache_path("xml")
        if path is not None and path.exists():
            model = core.read_model(str(path))
        else:
            warn_if_telemetry_on()
            model = self.compress(float32_model(self, core))
            if path is not None and not path.exists():
                ov.save_model(model, str(path), compress_to_fp16=False)
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY",
                                  "INFERENCE_PRECISION_HINT": self.precision}
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
    """NNCF's documented weight compression (``nncf.compress_weights``, INT8_ASYM, per output
    channel): int8 weights that the CPU plugin decompresses inside its matmul kernel."""

    name = "openvino_int8"
    summary = "OpenVINO CPU, int8 weight-only (nncf.compress_weights)"
    tolerance = 5e-2
    requires = (("openvino", "openvino"), ("nncf", "nncf"))

    def compress(self, model: Any) -> Any:
        import nncf

        return nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
