"""Learning-rate schedule: linear warmup, then cosine decay to ``min_lr_ratio`` of each group's lr.

A pure function of the optimiser step, applied to every parameter group before the step; the
schedule's state is therefore just the step number (saved with the training state).
"""

from __future__ import annotations

import math

import torch


def lr_factor(step: int, warmup_steps: int, total_steps: int, min_lr_ratio: float) -> float:
    """Multiplier for optimiser step ``step`` (0-based): (step+1)/warmup, then cosine to the floor."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, max(0.0, (step - warmup_steps) / decay_steps))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def apply_lr(
    optimizer: torch.optim.Optimizer, step: int, warmup_steps: int, total_steps: int, min_lr_ratio: float
) -> float:
    """Set every group's lr to ``base_lr * lr_factor``; returns the factor."""
    factor = lr_factor(step, warmup_steps, total_steps, min_lr_ratio)
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor
    return factor
