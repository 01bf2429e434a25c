"""The chunk-blending strategies, one class per module; this table is the only list of them.

Adding a strategy: a module with a `BlendingStrategy` subclass, and one line below.
"""
from __future__ import annotations

from .base import BlendingStrategy
from .latest_only import LatestOnly
from .rtc_soft_mask import RtcSoftMask
from .temporal_ensemble import TemporalEnsemble
from .weighted_blend import WeightedBlend

BLENDINGS: dict[str, type[BlendingStrategy]] = {cls.name: cls for cls in (
    LatestOnly,
    WeightedBlend,
    TemporalEnsemble,
    RtcSoftMask,
)}

__all__ = ["BLENDINGS", "BlendingStrategy"]
