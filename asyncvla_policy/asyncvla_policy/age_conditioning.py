"""The VL features' age as an input of the action expert (feature-wise linear modulation).

Why: the action node acts on VL features that are hundreds of milliseconds old (transport, the
VLM's compute, the wait for the next update). Where the scene moves on its own, what the picture
showed is no longer where things are, and only the elapsed time says how far they have moved.
An expert that is not told the age can at best learn the mean correction over the ages it saw in
training; told the age, it can apply the right one.

How: the age ``a`` (seconds, exactly the quantity the action node checks against ``max_vl_age``:
tick time minus the stamp of the newest camera frame behind the features) becomes the features
``[u, u^2]`` with ``u = a / AGE_UNIT_S`` (clipped to ``[0, MAX_AGE_S]`` first: a negative age
within the node's future tolerance is 0, and no checkpoint is asked to extrapolate beyond what a
node would accept), and scales and shifts, channel by channel (FiLM, Perez et al. 2018, "FiLM: Visual Reasoning with a General
Conditioning Layer"), what the picture says: ``h * (1 + W_s phi) + W_b phi`` where ``h`` is the
fusion's summary of the VL features before it meets the sensor and state (fusions with
``modulates_vl``, e.g. ``flat_tokens``), else the fused condition as a whole. Modulating the
whole condition let the age disturb the force/OCT path too: on the staleness benchmark the
vertical error of an age-aware expert (which only the OCT window decides) was 3x that of one
without the age. The product with the
condition is what lets the expert turn "the target moves at v" (from the picture) and "a seconds
have passed" into "it moved by v a", which a concatenated scalar could only approximate through
the decoder's nonlinearities. The projection starts at zero, so an untrained modulation is the
identity and a policy trained without ages is the same function at every age.

Why the unit: the modulation must grow from zero to a scale of order ``g * a`` (the share of the
remaining offset a servo of gain ``g`` covers in ``a``): with ages in seconds (0.3 s typical)
its weights had to reach about 2, which a learning rate of 1e-3 under a cosine schedule does not
give in a few thousand steps (the staleness benchmark's first run: an age-aware expert whose
error still fell from 0 to 450 ms). In units of a quarter second the same correction needs
weights near 0.5.
"""
from __future__ import annotations

import torch
from torch import nn

#: Ages are clipped to [0, MAX_AGE_S] before they enter the network (seconds).
MAX_AGE_S = 4.0
#: The unit ages are expressed in inside the network (seconds).
AGE_UNIT_S = 0.25
#: Width of the age features (a, a^2).
AGE_FEATURES = 2


def age_features(age_s: torch.Tensor) -> torch.Tensor:
    """(B,) or (B, 1) ages in seconds -> (B, 2) features ``[u, u^2]``, ``u`` the clipped age in
    units of ``AGE_UNIT_S``."""
    u = age_s.reshape(-1, 1).clamp(0.0, MAX_AGE_S) / AGE_UNIT_S
    return torch.cat([u, u * u], dim=-1)


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
