"""Sensor encoder: a (T, C) force/OCT window -> one feature vector.

The original architecture: strided Conv1d blocks over time (BatchNorm, GELU,
dropout), an optional pre-norm transformer encoder, global average pooling over time and a
Linear -> LayerNorm -> GELU -> dropout -> Linear projection. Widths come from
:class:`SensorEncoderConfig`, so tests and the CPU demo can use tiny ones.

No positional embedding (as in the original system): the conv stack already encodes local order and the pooled
output must not depend on a fixed absolute position. The window length is nevertheless checked
against ``cfg.window`` because normalisation statistics and training used exactly that length; a
short window at node start-up must be padded by the caller, not silently accepted.
"""
from __future__ import annotations

import torch
from torch import nn

from .config import SensorEncoderConfig
from .validation import check_finite, check_shape


class SensorEncoder(nn.Module):
    """(B, T, C) sensor window -> (B, sensor_dim) feature."""

    def __init__(self, cfg: SensorEncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        blocks: list[nn.Module] = []
        c_in = cfg.in_channels
        for c_out in cfg.conv_channels:
            blocks += [
                nn.Conv1d(c_in, c_out, cfg.kernel_size, stride=cfg.stride, padding=cfg.padding),
                nn.BatchNorm1d(c_out),
                nn.GELU(),
                nn.Dropout(cfg.dropout),
            ]
            c_in = c_out
        self.conv = nn.Sequential(*blocks)
        width = cfg.conv_channels[-1]
        self.transformer: nn.Module | None = None
        if cfg.use_transformer:
            layer = nn.TransformerEncoderLayer(
                d_model=width,
                nhead=cfg.transformer_heads,
                dim_feedforward=width * cfg.transformer_ffn_mult,
                dropout=cfg.dropout,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            # Pre-norm layers leave the residual stream un-normalised: close with a LayerNorm.
            self.transformer = nn.TransformerEncoder(
                layer, cfg.transformer_layers, norm=nn.LayerNorm(width), enable_nested_tensor=False
            )
        self.proj = nn.Sequential(
            nn.Linear(width, cfg.sensor_dim),
            nn.LayerNorm(cfg.sensor_dim),
            nn.GELU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.sensor_dim, cfg.sensor_dim),
        )

    def validate_input(self, window: torch.Tensor) -> None:
        """Raise ValueError on a wrong shape (B, T, C) or non-finite values."""
        if not isinstance(window, torch.Tensor):
            raise ValueError(f"sensor window must be a torch.Tensor, got {type(window).__name__}")
        if window.dim() == 3 and window.shape[2] != self.cfg.in_channels:
            raise ValueError(
                f"sensor window has {window.shape[2]} channels, expected {self.cfg.in_channels} "
                "(1 force value + OCT A-line samples per time step)"
            )
        check_shape(window, (None, self.cfg.window, self.cfg.in_channels), "sensor window", "(B, T, C)")
        if window.shape[0] == 0:
            raise ValueError("sensor window batch is empty (B = 0)")
        check_finite(window, "sensor window")

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        self.validate_input(window)
        return self.encode(window)

    def encode(self, window: torch.Tensor) -> torch.Tensor:
        """The computation alone, for inputs already validated: no data-dependent checks, so
        ``torch.compile``/ONNX/OpenVINO can trace it (see ``expert_runtimes``)."""
        x = self.conv(window.transpose(1, 2))  # (B, C', T')
        x = x.transpose(1, 2)  # (B, T', C')
        if self.transformer is not None:
            x = self.transformer(x)
        return self.proj(x.mean(dim=1))
