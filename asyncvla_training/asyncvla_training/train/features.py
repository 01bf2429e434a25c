"""Stage-1 VL feature providers: (episode, sample index) -> (K, D) features of that frame set.

Stage 1 keeps the VLM frozen, so a sample's VL features depend only on its frame set (the
episode's ``frame_key``), the prompt and the VL model. The trainer asks a provider for the
features of the *stale* index (``Episode.stale_index(i, k)``), never for images.

Interface (:class:`FeatureProvider`): a callable ``provider(episode, index) -> np.ndarray (K, D)``
with the attributes ``model_id`` (the extractor's id: written into the checkpoint as
``vl_model_id``, which the action node checks features against) and ``adapter_id``. Implementations:

* :class:`ExtractorFeatureProvider` - runs a :class:`VLFeatureExtractor` once per distinct
  (episode, frame key, prompt) and keeps the result in memory (tests, small datasets, or filling a
  cache);
* :class:`CachedFeatureProvider` - wraps any ``lookup(episode, index) -> array`` (e.g. the on-disk
  VL feature cache of ``data/vl_cache.py``) with the ids it was computed with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from ..data.episode import Episode


@runtime_checkable
class FeatureProvider(Protocol):
    model_id: str
    adapter_id: str

    def __call__(self, episode: Episode, index: int) -> np.ndarray: ...


def episode_prompt(episode: Episode, prompt: str | None) -> str:
    """The prompt a sample is encoded with: the run's prompt if set, else the episode's."""
    return prompt if prompt is not None else episode.prompt


class ExtractorFeatureProvider:
    """Features from a (frozen) extractor, computed once per distinct frame set and memoised."""

    def __init__(self, extractor, prompt: str | None = None) -> None:
        self.extractor = extractor
        self.prompt = prompt
        self.model_id = extractor.model_id
        self.adapter_id = extractor.adapter_id
        self._memo: dict[tuple, np.ndarray] = {}
        self.extractions = 0

    def key(self, episode: Episode, index: int) -> tuple:
        return (episode.name, episode.frame_key(index), episode_prompt(episode, self.prompt))

    def __call__(self, episode: Episode, index: int) -> np.ndarray:
        key = self.key(episode, index)
        cached = self._memo.get(key)
        if cached is None:
            result = self.extractor.extract(episode.load_frames(index), key[2])
            cached = result.features.numpy().astype(np.float32, copy=False)
            self._memo[key] = cached
            self.extractions += 1
        return cached

    def __len__(self) -> int:
        return len(self._memo)


class CachedFeatureProvider:
    """Adapter for a feature store: ``lookup(episode, index)`` plus the ids it was built with."""

    def __init__(
        self, lookup: Callable[[Episode, int], np.ndarray], model_id: str, adapter_id: str = ""
    ) -> None:
        if not model_id:
            raise ValueError("a cached feature provider needs the model_id the features came from")
        self.lookup = lookup
        self.model_id = model_id
        self.adapter_id = adapter_id

    def __call__(self, episode: Episode, index: int) -> np.ndarray:
        return np.asarray(self.lookup(episode, index), dtype=np.float32)
