"""The chunk-blending strategy a node is configured with, picked by name from `blending.BLENDINGS`."""
from __future__ import annotations

from .blending import BLENDINGS
from .blending.base import ENSEMBLE_DECAY, HISTORY, OLD_WEIGHT
from .chunk import Chunk

#: The strategy a node joins chunks with unless told otherwise (the nodes' blending.mode).
DEFAULT_MODE = "latest_only"


class ChunkBlender:
    """The configured blending strategy (by name, from `blending.BLENDINGS`), stateful."""

    def __init__(self, mode: str = DEFAULT_MODE, old_weight: float = OLD_WEIGHT,
                 ensemble_decay: float = ENSEMBLE_DECAY, history: int = HISTORY) -> None:
        if mode not in BLENDINGS:
            raise ValueError(f"unknown chunk blending mode {mode!r}; expected one of "
                             f"{tuple(BLENDINGS)}")
        self.mode = mode
        self.strategy = BLENDINGS[mode](old_weight=old_weight, ensemble_decay=ensemble_decay,
                                        history=history)

    def reset(self) -> None:
        self.strategy.reset()

    def replace_published(self, chunk: Chunk) -> None:
        self.strategy.replace_published(chunk)

    def blend(self, new: Chunk) -> Chunk:
        return self.strategy.blend(new)


def blending_modes() -> tuple[str, ...]:
    """Names of the blending strategies, in table order (for parameter descriptions)."""
    return tuple(BLENDINGS)
