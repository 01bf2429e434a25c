"""Episodes and stage-1 feature providers for the CLIs: bags, the VL feature cache, or generated data.

Bags are read with ``asyncvla_training.data`` (``load_episodes`` + ``BagDatasetConfig``): the run's
``views``, ``step_period`` and ``action_space`` and the policy's horizon and sensor window are put
into the dataset config, so the episodes always match the model. Validation: ``val_bags`` when
given, else whole recordings held out by ``data.split_episodes``.

VL cache (stage 1, ``vl_cache_dir``): built beforehand with ``asyncvla-cache-vl`` (or filled here
with ``vl_cache_fill``, single process). Read-only by default: every frame set of every episode
must be present, checked before training starts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..data.episode import Episode
from ..data.errors import CacheError
from ..data.stats import split_episodes
from .config import TrainConfig
from .features import CachedFeatureProvider
from ..data.synthetic import make_synthetic_episodes

SYNTHETIC_IMAGE_SIZE = (56, 56)


def synthetic_episodes(count: int, length: int, seed: int, cfg: TrainConfig) -> list[Episode]:
    views = tuple(cfg.views) if cfg.views else ("top",)
    return make_synthetic_episodes(
        count,
        length=length,
        seed=seed,
        views=views,
        image_size=SYNTHETIC_IMAGE_SIZE,
        step_period=cfg.step_period,
        action_space=cfg.action_space,
    )


def policy_shapes(cfg: TrainConfig) -> dict[str, int]:
    """Horizon and sensor window the episodes must have: from ``init_from`` or ``policy`` if set."""
    from asyncvla_policy.checkpoint import read_checkpoint_config
    from asyncvla_policy.config import PolicyConfig

    if cfg.init_from:
        policy = read_checkpoint_config(cfg.init_from)[0]
    elif cfg.policy is not None:
        policy = PolicyConfig.from_dict(dict(cfg.policy))
    else:
        return {}
    return {"horizon": policy.horizon, "sensor_window": policy.sensor.window}


def dataset_config(cfg: TrainConfig, shapes: dict[str, int] | None = None):
    """The ``BagDatasetConfig`` of a run (``cfg.dataset`` with the run's settings put in)."""
    from ..data.bag_dataset import BagDatasetConfig

    data: dict[str, Any] = json.loads(json.dumps(cfg.dataset or {}))
    alignment = dict(data.pop("alignment", None) or {})
    wanted = {"step_period": cfg.step_period, "action_space": cfg.action_space}
    wanted.update(policy_shapes(cfg) if shapes is None else shapes)
    for key, value in wanted.items():
        if key in alignment and alignment[key] != value:
            raise ValueError(
                f"dataset.alignment.{key}={alignment[key]!r} contradicts the run's {key}={value!r}"
            )
        alignment[key] = value
    data["alignment"] = alignment
    if cfg.views:
        data["views"] = list(cfg.views)
    return BagDatasetConfig.from_dict(data)


def load_bag_episodes(
    paths: Sequence[str], cfg: TrainConfig, shapes: dict[str, int] | None = None
) -> list[Episode]:
    """Episodes of the rosbag2 recordings at ``paths`` (bag directories, files or folders of bags)."""
    from ..data.bag_dataset import load_episodes

    return load_episodes(list(paths), dataset_config(cfg, shapes), skip_errors=cfg.skip_bad_bags)


def load_run_episodes(cfg: TrainConfig) -> tuple[list[Episode], list[Episode]]:
    """(train, validation) episodes of a run: synthetic, or bags + val bags (else split by recording)."""
    if cfg.synthetic_episodes > 0:
        episodes = synthetic_episodes(cfg.synthetic_episodes, cfg.synthetic_length, cfg.seed, cfg)
        return split_episodes(episodes, cfg.val_fraction, cfg.seed)
    if not cfg.bags:
        raise ValueError("no training data: give bags (--bag) or synthetic_episodes (--synthetic N)")
    train = load_bag_episodes(cfg.bags, cfg)
    if cfg.val_bags:
        return train, load_bag_episodes(cfg.val_bags, cfg)
    return split_episodes(train, cfg.val_fraction, cfg.seed)


def cached_model_ids(cache_dir: str | Path) -> list[tuple[str, str]]:
    """(model_id, adapter_id) pairs present in a VL cache directory (from its key.json files)."""
    found = set()
    for key_file in Path(cache_dir).glob("*/*/prompt-*/key.json"):
        try:
            key = json.loads(key_file.read_text())
            found.add((str(key["model_id"]), str(key.get("adapter_id", ""))))
        except (OSError, ValueError, KeyError):
            continue
    return sorted(found)


def cache_feature_provider(
    cfg: TrainConfig,
    episodes: Sequence[Episode],
    *,
    extractor: Any = None,
    model_id: str | None = None,
    adapter_id: str | None = None,
    fill_option: str | None = None,
) -> CachedFeatureProvider:
    """Stage-1 provider over ``cfg.vl_cache_dir``, checked complete for ``episodes``.

    With ``extractor`` (or ``cfg.vl_cache_fill``) misses are extracted and stored; otherwise the
    model id is ``model_id``, ``cfg.vl_cache_model_id`` or the only one in the cache, and a cache
    without every frame set raises CacheError naming the cache, the episodes and the fix
    (``fill_option``: the caller's option that fills misses, when it has one).
    """
    from ..data.vl_cache import VLFeatureCache

    if extractor is None and cfg.vl_cache_fill:
        from asyncvla_policy.devices import resolve_device
        from .trainer import load_vl_extractor

        extractor = load_vl_extractor(cfg, resolve_device(cfg.device))
    if extractor is not None:
        cache = VLFeatureCache(cfg.vl_cache_dir, extractor, cfg.prompt, progress=False)
        cache.build(list(episodes))
    else:
        model_id = model_id or cfg.vl_cache_model_id
        candidates = cached_model_ids(cfg.vl_cache_dir)
        if model_id is None:
            ids = sorted({m for m, _ in candidates})
            if len(ids) != 1:
                raise CacheError(
                    f"VL cache {cfg.vl_cache_dir} holds features of {ids or 'no model'}: "
                    + ("build it with asyncvla-cache-vl" if not ids else "set vl_cache_model_id")
                )
            model_id = ids[0]
        if adapter_id is None:
            adapters = sorted({a for m, a in candidates if m == model_id})
            adapter_id = "" if "" in adapters or not adapters else adapters[0]
        cache = VLFeatureCache(
            cfg.vl_cache_dir, None, cfg.prompt, model_id=model_id, adapter_id=adapter_id, progress=False
        )
        missing = {ep.name: cache.missing(ep) for ep in episodes}
        missing = {k: v for k, v in missing.items() if v}
        if missing:
            fill = f", or pass {fill_option}" if fill_option else ""
            raise CacheError(
                f"VL cache {cache.key_directory(cfg.prompt or episodes[0].prompt)} lacks "
                f"{sum(missing.values())} frame set(s) of {len(missing)} episode(s) "
                f"{sorted(missing)[:5]}: run asyncvla-cache-vl on these bags with the same "
                f"model, image size, feature tokens, layer and prompt{fill}"
            )
    return CachedFeatureProvider(cache.lookup, cache.model_id, cache.adapter_id)
