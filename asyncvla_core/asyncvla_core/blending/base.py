"""What every chunk-blending strategy is: a class that turns the new chunk into the published one.

The strategies (one per module in this package, listed in ``BLENDINGS``) share the bookkeeping
here: the chunk last published (what `weighted_blend` mixes with) and the reset after any refusal,
so a chunk is never blended with one from before a gap.
"""
from __future__ import annotations

from typing import ClassVar

from ..chunk import Chunk

#: The strategies' shared parameters and their defaults (the nodes' blending.* parameters start
#: from these): weighted_blend's weight of the previously published chunk, temporal_ensemble's
#: exp(-decay * k) weights (k = 0 oldest), and how many chunks a strategy may keep.
OLD_WEIGHT = 0.3
ENSEMBLE_DECAY = 0.1
HISTORY = 8


class BlendingStrategy:
    """Base class: subclasses set `name` and implement `combine(new)`."""

    name: ClassVar[str] = ""

    def __init__(self, old_weight: float = OLD_WEIGHT, ensemble_decay: float = ENSEMBLE_DECAY,
                 history: int = HISTORY) -> None:
        """Every strategy takes the same keyword parameters and uses those it needs."""
        self._published: Chunk | None = None

    def reset(self) -> None:
        """Forget history (after a pause, an e-stop or stale features): never blend across it."""
        self._published = None

    def replace_published(self, chunk: Chunk) -> None:
        """The chunk that actually went out differs from the blend (the output guard clamped it)."""
        if self._published is not None:
            self._published = chunk

    def blend(self, new: Chunk) -> Chunk:
        out = self.combine(new)
        self._published = out
        return out

    def combine(self, new: Chunk) -> Chunk:
        raise NotImplementedError
