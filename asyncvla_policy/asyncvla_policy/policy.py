"""ActionPolicy: sensor encoder + action expert + normalisation, in physical units at the edges.

Why normalisation lives inside the module (as buffers): the statistics are part of the model. They
are saved in the same safetensors file as the weights, so the ROS action node cannot pair a
checkpoint with the wrong statistics (the original system had no normalisation at all).

Units: ``forward``/``predict`` take robot state and sensor windows in physical units and return
actions in physical units. Internally everything is normalised ``(x - mean) / std``. The base chunk
``z_chunk`` defaults to zeros *in normalised space*, i.e. the dataset's mean action; the network
predicts the deviation from it.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from .action_expert import ActionExpert
from .config import PolicyConfig
from .sensor_encoder import SensorEncoder
from .validation import check_finite, check_shape, to_float_tensor

_NORM_NAMES = ("state", "sensor", "action")
#: Precisions ``predict`` can compute in: weights stay float32; "bfloat16" runs matmuls and
#: convolutions under autocast (about 2.2x faster on a 2-core AVX-512 CPU for the original system-size
#: expert, outputs within about 1e-2 of float32 in normalised units).
INFERENCE_DTYPES = {"float32": None, "bfloat16": torch.bfloat16}


class ActionPolicy(nn.Module):
    """VL tokens (B,K,D) + sensor window (B,T,C) + robot state (B,S) -> actions (B,H,A)."""

    def __init__(self, cfg: PolicyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.sensor_encoder = SensorEncoder(cfg.sensor)
        self.action_expert = ActionExpert(cfg)
        sizes = {
            "state": cfg.robot_state_dim,
            "sensor": cfg.sensor.in_channels,
            "action": cfg.action_dim,
        }
        for name in _NORM_NAMES:
            self.register_buffer(f"{name}_mean", torch.zeros(sizes[name]))
            self.register_buffer(f"{name}_std", torch.ones(sizes[name]))
        self.inference_dtype: torch.dtype | None = None

    def set_inference_dtype(self, name: str) -> None:
        """Precision of ``predict``: "float32" (default, exact) or "bfloat16" (autocast)."""
        if name not in INFERENCE_DTYPES:
            raise ValueError(f"inference dtype must be one of {sorted(INFERENCE_DTYPES)}, got {name!r}")
        self.inference_dtype = INFERENCE_DTYPES[name]

    # ------------------------------------------------------------------ normalisation
    def set_normalization(
        self,
        state_mean: object | None = None,
        state_std: object | None = None,
        sensor_mean: object | None = None,
        sensor_std: object | None = None,
        action_mean: object | None = None,
        action_std: object | None = None,
    ) -> None:
        """Set any subset of the statistics (others unchanged). Std must be finite and > 0."""
        given = {
            "state_mean": state_mean,
            "state_std": state_std,
            "sensor_mean": sensor_mean,
            "sensor_std": sensor_std,
            "action_mean": action_mean,
            "action_std": action_std,
        }
        checked: dict[str, torch.Tensor] = {}
        for key, value in given.items():
            if value is None:
                continue
            buf: torch.Tensor = getattr(self, key)
            tensor = to_float_tensor(value, key).detach()
            if tensor.shape != buf.shape:
                raise ValueError(f"{key} must have shape {tuple(buf.shape)}, got {tuple(tensor.shape)}")
            check_finite(tensor, key)
            if key.endswith("_std") and bool((tensor <= 0).any()):
                raise ValueError(f"{key} must be > 0 everywhere (got min {float(tensor.min())})")
            checked[key] = tensor
        with torch.no_grad():  # all checks passed: apply together
            for key, tensor in checked.items():
                getattr(self, key).copy_(tensor)

    def normalization_dict(self) -> dict[str, np.ndarray]:
        """The six statistics as float32 numpy arrays (e.g. for logging or checkpoint metadata)."""
        return {
            f"{n}_{s}": getattr(self, f"{n}_{s}").detach().cpu().numpy().copy()
            for n in _NORM_NAMES
            for s in ("mean", "std")
        }

    def load_normalization(self, stats: Mapping[str, object]) -> None:
        """``set_normalization(**stats)`` with a check for unknown keys."""
        unknown = set(stats) - {f"{n}_{s}" for n in _NORM_NAMES for s in ("mean", "std")}
        if unknown:
            raise ValueError(f"unknown normalisation key(s): {sorted(unknown)}")
        self.set_normalization(**stats)

    def normalize_actions(self, actions: torch.Tensor) -> torch.Tensor:
        return (actions - self.action_mean) / self.action_std

    def denormalize_actions(self, actions: torch.Tensor) -> torch.Tensor:
        return actions * self.action_std + self.action_mean

    def normalize_state(self, state: torch.Tensor) -> torch.Tensor:
        return (state - self.state_mean) / self.state_std

    def normalize_sensor(self, window: torch.Tensor) -> torch.Tensor:
        return (window - self.sensor_mean) / self.sensor_std

    # ------------------------------------------------------------------ forward
    def forward_normalized(
        self,
        vl_tokens: torch.Tensor,
        sensor_window: torch.Tensor,
        robot_state: torch.Tensor,
        z_chunk_normalized: torch.Tensor | None = None,
        vl_age: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Normalised actions (B,H,A); inputs in physical units. For a loss in normalised space.

        ``vl_age``: (B,) seconds from the newest camera frame behind each sample's VL features
        to the sample's time; required when ``cfg.vl_age_input``, ignored otherwise."""
        self.sensor_encoder.validate_input(sensor_window)  # before normalising: report raw NaNs
        check_shape(robot_state, (None, self.cfg.robot_state_dim), "robot_state", "(B, S)")
        check_finite(robot_state, "robot_state")
        check_finite(vl_tokens, "vl_tokens")
        if vl_age is not None:
            check_finite(vl_age, "vl_age")
        return self._normalized(vl_tokens, sensor_window, robot_state, z_chunk_normalized, vl_age)

    def _normalized(self, vl: torch.Tensor, window: torch.Tensor, state: torch.Tensor,
                    z_norm: torch.Tensor | None = None,
                    vl_age: torch.Tensor | None = None) -> torch.Tensor:
        """``forward_normalized`` without its finiteness checks. Normalisation runs in float32;
        the networks get their own parameter dtype (bfloat16 weights take bfloat16 inputs)."""
        dtype = self.action_expert.queries.dtype
        sensor = self.sensor_encoder.encode(self.normalize_sensor(window).to(dtype))
        return self.action_expert(vl.to(dtype), sensor, self.normalize_state(state).to(dtype),
                                  z_norm, vl_age)

    def infer(self, vl_tokens: torch.Tensor, sensor_window: torch.Tensor,
              robot_state: torch.Tensor, vl_age: torch.Tensor | None = None) -> torch.Tensor:
        """Physical (B,K,D), (B,T,C), (B,S) [and (B,) age in s] -> physical float32 actions
        (B,H,A), for inputs that ``validated_inputs`` passed: the graph that the expert runtimes
        compile, export or quantise (no data-dependent checks inside, so it traces)."""
        return self.denormalize_actions(self._normalized(vl_tokens, sensor_window,
                                                         robot_state, None, vl_age).float())

    def forward(
        self,
        vl_tokens: torch.Tensor,
        sensor_window: torch.Tensor,
        robot_state: torch.Tensor,
        z_chunk: torch.Tensor | None = None,
        vl_age: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Actions (B,H,A) in physical units.

        ``z_chunk`` (physical units) is the base chunk the expert corrects; None means the mean
        action. Never pass the training target here (see ``action_expert`` module docs).
        ``vl_age``: (B,) seconds, as in ``forward_normalized``.
        """
        z_norm = None if z_chunk is None else self.normalize_actions(z_chunk)
        out = self.forward_normalized(vl_tokens, sensor_window, robot_state, z_norm, vl_age)
        return self.denormalize_actions(out)

    @property
    def device(self) -> torch.device:
        return self.action_mean.device

    def validated_inputs(self, vl_tokens: object, sensor_window: object,
                         robot_state: object) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``predict``'s input checks: (K,D), (T,C), (S,) shapes and finiteness (ValueError).

        Returns float32 CPU-or-device tensors with a batch dimension of 1, ready for ``infer``.
        Every expert runtime calls this, so a bad input fails the same way whatever runs it.
        """
        cfg = self.cfg
        vl = to_float_tensor(vl_tokens, "vl_tokens")
        window = to_float_tensor(sensor_window, "sensor_window")
        state = to_float_tensor(robot_state, "robot_state")
        check_shape(vl, (cfg.vl_num_tokens, cfg.vl_dim), "vl_tokens", "(K, D)")
        check_shape(window, (cfg.sensor.window, cfg.sensor.in_channels), "sensor_window", "(T, C)")
        check_shape(state, (cfg.robot_state_dim,), "robot_state", "(S,)")
        for tensor, name in ((vl, "vl_tokens"), (window, "sensor_window"), (state, "robot_state")):
            check_finite(tensor, name)
        dev = self.device
        return vl.to(dev)[None], window.to(dev)[None], state.to(dev)[None]

    def validated_age(self, vl_age: object) -> torch.Tensor | None:
        """``predict``'s check of the VL age (seconds, a finite number): a (1,) float32 tensor on
        the policy's device when the policy takes the age, None when it does not (an old
        checkpoint ignores the age it is given). ValueError when the policy needs it and it is
        missing: acting as if fresh features were fresh would be a silent wrong action."""
        if not self.cfg.vl_age_input:
            return None
        if vl_age is None:
            raise ValueError("this policy takes the VL features' age (vl_age_input): pass vl_age "
                             "in seconds")
        age = to_float_tensor(vl_age, "vl_age").reshape(-1)
        check_shape(age, (1,), "vl_age", "a single number")
        check_finite(age, "vl_age")
        return age.to(self.device)

    @torch.no_grad()
    def predict(self, vl_tokens: object, sensor_window: object, robot_state: object,
                vl_age: object = None) -> np.ndarray:
        """Single-sample inference: (K,D), (T,C), (S,) [, age in s] -> float32 numpy (H,A) in
        physical units.

        Accepts numpy arrays or tensors; validates shapes and finiteness (ValueError). Runs in eval
        mode (restoring the previous mode afterwards), so the result is deterministic.
        """
        vl, window, state = self.validated_inputs(vl_tokens, sensor_window, robot_state)
        age = self.validated_age(vl_age)
        was_training = self.training
        self.eval()
        autocast = torch.autocast(self.device.type, dtype=self.inference_dtype,
                                  enabled=self.inference_dtype is not None)
        try:
            with autocast:
                out = self.infer(vl, window, state, age)
        finally:
            self.train(was_training)
        return out[0].float().cpu().numpy().astype(np.float32, copy=False)
