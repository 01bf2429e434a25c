"""Qwen2.5-VL image preprocessing in torch: rescale, normalise and patchify on the model's device.

Why: the PIL image processor in transformers spends about 49 ms on five 640x360 views on one CPU
core (measured here), which on a GPU machine would be most of the 50 ms budget for a whole VL
update. This does the same arithmetic as ``Qwen2VLImageProcessorPil`` (``rescale`` ->
``normalize`` -> ``patchify``, float32) on a uint8 batch: one host-to-device copy of the raw bytes
(pinned memory on CUDA), then a handful of tensor ops. On CPU it runs the same code.

Input views must already have the 28-aligned size (the builder resizes each view once, straight
to it, so the image processor's own resize would be the identity). The result matches the PIL
processor's ``pixel_values`` to float32 rounding (tested: max abs difference <= 1e-6).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


class TorchPatchifier:
    """uint8 RGB views (N x H x W x 3, H and W multiples of patch*merge) -> pixel_values, grid."""

    def __init__(self, patch_size: int, merge_size: int, temporal_patch_size: int,
                 image_mean: Sequence[float], image_std: Sequence[float],
                 rescale_factor: float = 1.0 / 255.0) -> None:
        self.patch_size = int(patch_size)
        self.merge_size = int(merge_size)
        self.temporal_patch_size = int(temporal_patch_size)
        self.rescale_factor = float(rescale_factor)
        self._mean = torch.tensor(list(image_mean), dtype=torch.float32).view(1, 3, 1, 1)
        self._std = torch.tensor(list(image_std), dtype=torch.float32).view(1, 3, 1, 1)
        self._stats_on: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def from_image_processor(cls, processor: object) -> TorchPatchifier:
        return cls(processor.patch_size, processor.merge_size, processor.temporal_patch_size,
                   processor.image_mean, processor.image_std,
                   getattr(processor, "rescale_factor", 1.0 / 255.0))

    def _stats(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) per channel on ``device``, shaped to broadcast over channels-last."""
        if device not in self._stats_on:
            self._stats_on[device] = (self._mean.view(3).to(device), self._std.view(3).to(device))
        return self._stats_on[device]

    def __call__(self, views: Sequence[np.ndarray], device: torch.device | str = "cpu"
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """(pixel_values (N*gh*gw, 3*T*P*P) float32 on ``device``, image_grid_thw (N, 3) int64)."""
        device = torch.device(device)
        batch = torch.from_numpy(np.ascontiguousarray(np.stack(views)))  # (N, H, W, 3) uint8
        n, height, width, channels = batch.shape
        p, m, t = self.patch_size, self.merge_size, self.temporal_patch_size
        if channels != 3 or height % (p * m) or width % (p * m):
            raise ValueError(f"views of shape {tuple(batch.shape[1:])}: need H x W x 3 with H and W "
                             f"multiples of {p * m}")
        if device.type == "cuda":
            batch = batch.pin_memory().to(device, non_blocking=True)
        gh, gw = height // p, width // p
        mean, std = self._stats(device)
        # Normalise while the layout is still contiguous channels-last (vectorises well), then
        # one copy into the processor's patch layout: (gh/m, gw/m, m, m, C, T, P, P) per image,
        # the single frame repeated over the temporal patch. (Measured on 2 CPU threads for five
        # 644x364 views: 6.6 ms, against 17.7 ms normalising channels-first.)
        x = batch.to(torch.float32).mul_(self.rescale_factor / std).sub_(mean / std)
        x = x.reshape(n, gh // m, m, p, gw // m, m, p, 3).permute(0, 1, 4, 2, 5, 7, 3, 6)
        x = x.unsqueeze(6).expand(n, gh // m, gw // m, m, m, 3, t, p, p)
        pixel_values = x.reshape(n * gh * gw, 3 * t * p * p)
        grid = torch.tensor([[1, gh, gw]] * n, dtype=torch.int64)
        return pixel_values, grid
