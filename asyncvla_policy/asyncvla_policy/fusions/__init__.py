"""The fusion strategies of the action expert, one class per module; this table is the only list.

Adding a strategy: a module with a `Fusion` subclass, and one line below. `PolicyConfig.fusion`
names the entry; checkpoints store the name.
"""
from __future__ import annotations

from .base import Fusion
from .concat import ConcatFusion
from .cross_attention import CrossAttentionFusion
from .flat_tokens import FlatTokensFusion
from .gated import GatedFusion
from .vl_only import VLOnlyFusion

FUSIONS: dict[str, type[Fusion]] = {cls.name: cls for cls in (
    ConcatFusion,
    CrossAttentionFusion,
    FlatTokensFusion,
    GatedFusion,
    VLOnlyFusion,
)}

FUSION_MODES = tuple(FUSIONS)

__all__ = ["FUSIONS", "FUSION_MODES", "Fusion"]
