"""The VL features' age as an input of the action expert (feature-wise linear modulation).

Why: the action node acts on VL features that are hundreds of milliseconds old (transport, the
VLM's compute, the wait for the next update). Where the scene moves on its own, what the picture
showed is no longer where things are, and only the elapsed time says how far they have moved.
An expert that is not told the age can at best learn the mean correction over the ages it saw in
training; told the age, it can apply the right one.

How: the age ``a`` (seconds, exactly the quantity the action node checks against ``max_vl_age``:
tick time minus the stamp of the newest camera frame behind the features) becomes the features
``[a, a^2]`` (clipped to ``[0, MAX_AGE_S]``: a negative age within the node's future tolerance
is 0, and no checkpoint is asked to extrapolate beyond what a node would accept), and scales and
shifts the fused condition, channel by channel (FiLM, Perez et al. 2018, "FiLM: Visual Reasoning
with a General Conditioning Layer"): ``memory * (1 + W_s phi) + W_b phi``. The product with the
condition is what lets the expert turn "the target moves at v" (from the picture) and "a seconds
have passed" into "it moved by v a", which a concatenated scalar could only approximate through
the decoder's nonlinearities. The projection starts at zero, so an untrained modulation is the
identity and a policy trained without ages is the same function at every age.
"""
from __future__ import annotations

import torch
from torch import nn

#: Ages are clipped to [0, MAX_AGE_S] before they enter the network (seconds).
MAX_AGE_S = 2.0
#: Width of the age features (a, a^2).
AGE_FEATURES = 2


def age_features(age_s: torch.Tensor) -> torch.Tensor:
    """(B,) or (B, 1) ages in seconds -> (B, 2) features ``[a, a^2]`` after clipping."""
    a = age_s.reshape(-1, 1).clamp(0.0, MAX_AGE_S)
    return torch.cat([a, a * a], dim=-1)


class AgeModulation(nn.Module):
    """``memory (B, h), age (B,) s -> memory * (1 + scale(age)) + shift(age)``."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.proj = nn.Linear(AGE_FEATURES, 2 * hidden)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, memory: torch.Tensor, age_s: torch.Tensor) -> torch.Tensor:
        phi = age_features(age_s.to(memory.dtype))
        scale, shift = self.proj(phi).split(self.hidden, dim=-1)
        return memory * (1.0 + scale) + shift
