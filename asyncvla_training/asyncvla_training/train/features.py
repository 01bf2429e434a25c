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

from collections.abc import Callable, Sequence
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


class ZeroFeatureProvider:
    """The VL-ablated input: zeros of the wrapped provider's shape, whatever the sample.

    Why: a policy trained on these (the "VL-ablated twin") shows what the sensor window and robot
    state alone can predict; the gap to the same policy trained on real features is what vision
    and prompt contribute. The ids are the wrapped provider's, so the checkpoint still names the
    VL model it would run with.
    """

    def __init__(self, provider: FeatureProvider) -> None:
        self.provider = provider
        self.model_id = provider.model_id
        self.adapter_id = getattr(provider, "adapter_id", "")
        self._zeros: np.ndarray | None = None

    def __call__(self, episode: Episode, index: int) -> np.ndarray:
        if self._zeros is None:
            self._zeros = np.zeros_like(np.asarray(self.provider(episode, index), dtype=np.float32))
        return self._zeros


class ShuffledFeatureProvider:
    """Each sample gets the features of another sample, by a fixed seeded permutation.

    Why: evaluating a policy with features shuffled across samples keeps their distribution but
    breaks their link to the sample; the error rise measures how much the policy relies on them.
    ``episodes`` fixes the pool of samples; a sample outside it is an error (a silent fallback
    would make the ablation meaningless). Staleness still applies first (``stale_index``), then
    the shuffle.
    """

    def __init__(self, provider: FeatureProvider, episodes: Sequence[Episode], seed: int = 0) -> None:
        self.provider = provider
        self.model_id = provider.model_id
        self.adapter_id = getattr(provider, "adapter_id", "")
        pairs = [(ep, i) for ep in episodes for i in range(len(ep))]
        if len(pairs) < 2:
            raise ValueError("shuffling needs at least two samples")
        # One random cycle through all samples: every sample gets another sample's features.
        order = [int(j) for j in np.random.default_rng(seed).permutation(len(pairs))]
        self._source = {}
        for m, j in enumerate(order):
            ep, i = pairs[j]
            self._source[(id(ep), i)] = pairs[order[(m + 1) % len(order)]]

    def __call__(self, episode: Episode, index: int) -> np.ndarray:
        try:
            source_episode, source_index = self._source[(id(episode), int(index))]
        except KeyError:
            raise KeyError(f"sample {index} of {episode.name!r} is not in the shuffled pool") from None
        return self.provider(source_episode, source_index)
