"""Input checks shared by the model modules.

Why a module of its own: the policy runs on live robot data, where a dropped sensor packet or a
mis-wired topic shows up as NaN or a wrong width. Those must fail with a ValueError that names the
input and the problem, never as a silent NaN action or a cryptic matmul shape error.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def to_float_tensor(value: object, name: str) -> torch.Tensor:
    """Convert numpy arrays / tensors / nested lists to a float32 tensor (copying numpy input)."""
    if isinstance(value, torch.Tensor):
        tensor = value
    elif isinstance(value, np.ndarray):
        if value.dtype == object:
            raise ValueError(f"{name} has dtype object; expected a numeric array")
        tensor = torch.from_numpy(np.array(value, dtype=np.float32, copy=True))
    else:
        try:
            tensor = torch.as_tensor(np.asarray(value, dtype=np.float32))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} cannot be converted to a float array: {exc}") from exc
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise ValueError(f"{name} has dtype {tensor.dtype}; expected a real floating point array")
    return tensor.float()


def check_shape(tensor: torch.Tensor, expected: Sequence[int | None], name: str, dims: str) -> None:
    """Raise ValueError unless ``tensor.shape`` matches ``expected`` (None = any size)."""
    shape = tuple(tensor.shape)
    if len(shape) != len(expected) or any(
        e is not None and s != e for s, e in zip(shape, expected)
    ):
        pretty = tuple("*" if e is None else e for e in expected)
        raise ValueError(f"{name} must have shape {dims} = {pretty}, got {shape}")


def check_finite(tensor: torch.Tensor, name: str) -> None:
    """Raise ValueError if ``tensor`` holds NaN or +-inf, saying how many and which kind."""
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        n_nan = int(torch.isnan(tensor).sum())
        n_inf = int(torch.isinf(tensor).sum())
        raise ValueError(
            f"{name} contains non-finite values ({n_nan} NaN, {n_inf} inf) out of {tensor.numel()}"
        )
