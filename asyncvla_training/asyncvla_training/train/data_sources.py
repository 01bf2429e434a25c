"""Episodes and stage-1 feature providers for the CLIs, from bags, a VL cache or generated data.

The bag reader and the VL feature cache live in ``asyncvla_training.data`` (another module's
responsibility); they are imported lazily here so the trainers work with whatever episodes a
caller builds, and the CLIs fail with a clear message when a reader is missing.
"""
from __future__ import annotations

from collections.abc import Sequence

from ..data.episode import Episode
from .config import TrainConfig
from .synthetic import make_synthetic_episodes
from .trainer import split_episodes

SYNTHETIC_IMAGE_SIZE = (56, 56)


def synthetic_episodes(count: int, length: int, seed: int, cfg: TrainConfig) -> list[Episode]:
    views = tuple(cfg.views) if cfg.views else ("top",)
    return make_synthetic_episodes(count, length=length, seed=seed, views=views,
                                   image_size=SYNTHETIC_IMAGE_SIZE, step_period=cfg.step_period,
                                   action_space=cfg.action_space)


def load_bag_episodes(paths: Sequence[str], cfg: TrainConfig) -> list[Episode]:
    """Episodes of the rosbag2 recordings at ``paths`` (bag directories or folders of bags)."""
    try:
        from ..data import bag_dataset
    except ImportError as exc:  # pragma: no cover - depends on the data module being installed
        raise RuntimeError(f"the rosbag2 reader (asyncvla_training.data.bag_dataset) is not available: {exc}") from exc
    return list(bag_dataset.load_episodes(
        list(paths), step_period=cfg.step_period, action_space=cfg.action_space,
        views=tuple(cfg.views) if cfg.views else None))


def load_run_episodes(cfg: TrainConfig) -> tuple[list[Episode], list[Episode]]:
    """(train, validation) episodes of a run: synthetic, or bags + val bags (else split by episode)."""
    if cfg.synthetic_episodes > 0:
        episodes = synthetic_episodes(cfg.synthetic_episodes, cfg.synthetic_length, cfg.seed, cfg)
        return split_episodes(episodes, cfg.val_fraction, cfg.seed)
    if not cfg.bags:
        raise ValueError("no training data: give bags (--bag) or synthetic_episodes (--synthetic N)")
    train = load_bag_episodes(cfg.bags, cfg)
    if cfg.val_bags:
        return train, load_bag_episodes(cfg.val_bags, cfg)
    return split_episodes(train, cfg.val_fraction, cfg.seed)


def cache_feature_provider(cfg: TrainConfig, model_id: str | None = None):
    """Stage-1 provider reading the on-disk VL feature cache at ``cfg.vl_cache_dir``."""
    try:
        from ..data import vl_cache
    except ImportError as exc:  # pragma: no cover
        raise RuntimeError(f"the VL feature cache (asyncvla_training.data.vl_cache) is not available: {exc}") from exc
    return vl_cache.feature_provider(cfg.vl_cache_dir, prompt=cfg.prompt, model_id=model_id)
