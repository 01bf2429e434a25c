"""Stage-1 VL feature providers: (episode, sample index) -> (K, D) features of that frame set.

Stage 1 keeps the VLM frozen, so VL features depend only on the frame set (the episode's
``frame_set_key``), the prompt and the VL model. The trainer asks a provider for the features of
the frame set a drawn VL age selects (``Episode.stale_frame_set``), never for images.

Interface (:class:`FeatureProvider`): a callable ``provider(episode, frame_set) -> np.ndarray (K, D)``
(``frame_set`` indexes ``episode.frame_sets_ns``)
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

    def __call__(self, episode: Episode, frame_set: int) -> np.ndarray: ...


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

    def key(self, episode: Episode, frame_set: int) -> tuple:
        return (episode.name, episode.frame_set_key(frame_set), episode_prompt(episode, self.prompt))

    def __call__(self, episode: Episode, frame_set: int) -> np.ndarray:
        key = self.key(episode, frame_set)
        cached = self._memo.get(key)
        if cached is None:
            result = self.extractor.extract(episode.load_frames(frame_set), key[2])
            cached = result.features.numpy().astype(np.float32, copy=False)
            self._memo[key] = cached
            self.extractions += 1
        return cached

    def __len__(self) -> int:
        return len(self._memo)


class CachedFeatureProvider:
    """Adapter for a feature store: ``lookup(episode, frame_set)`` plus the ids it was built with."""

    def __init__(
        self, lookup: Callable[[Episode, int], np.ndarray], model_id: str, adapter_id: str = ""
    ) -> None:
        if not model_id:
            raise ValueError("a cached feature provider needs the model_id the features came from")
        self.lookup = lookup
        self.model_id = model_id
        self.adapter_id = adapter_id

    def __call__(self, episode: Episode, frame_set: int) -> np.ndarray:
        return np.asarray(self.lookup(episode, frame_set), dtype=np.float32)


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

    def __call__(self, episode: Episode, frame_set: int) -> np.ndarray:
        if self._zeros is None:
            self._zeros = np.zeros_like(np.asarray(self.provider(episode, frame_set),
                                                   dtype=np.float32))
        return self._zeros


class ShuffledFeatureProvider:
    """Each frame set gets the features of another frame set, by a fixed seeded permutation.

    Why: evaluating a policy with features shuffled across frame sets keeps their distribution
    but breaks their link to the sample; the error rise measures how much the policy relies on
    them. ``episodes`` fixes the pool of frame sets; one outside it is an error (a silent
    fallback would make the ablation meaningless). Staleness still applies first (the frame set
    a VL age selects), then the shuffle.
    """

    def __init__(self, provider: FeatureProvider, episodes: Sequence[Episode], seed: int = 0) -> None:
        self.provider = provider
        self.model_id = provider.model_id
        self.adapter_id = getattr(provider, "adapter_id", "")
        pairs = [(ep, s) for ep in episodes for s in range(ep.num_frame_sets)]
        if len(pairs) < 2:
            raise ValueError("shuffling needs at least two frame sets")
        # One random cycle through all frame sets: each gets another one's features.
        order = [int(j) for j in np.random.default_rng(seed).permutation(len(pairs))]
        self._source = {}
        for m, j in enumerate(order):
            ep, i = pairs[j]
            self._source[(id(ep), i)] = pairs[order[(m + 1) % len(order)]]

    def __call__(self, episode: Episode, frame_set: int) -> np.ndarray:
        try:
            source_episode, source_set = self._source[(id(episode), int(frame_set))]
        except KeyError:
            raise KeyError(f"frame set {frame_set} of {episode.name!r} is not in the shuffled "
                           "pool") from None
        return self.provider(source_episode, source_set)
