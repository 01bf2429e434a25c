"""VL feature cache (the original system's ``cache_mode="on"``): extract once per distinct frame set, reuse.

Stage 1 trains with the VLM frozen, so the VL features of a frame set depend only on (model,
adapter, prompt, the frames). Frames are identified by their header stamps
(``Episode.frame_set_key``). Every frame set the VLM could have used is cached
(``Episode.frame_sets_ns``), not only those at the samples' times: training and evaluation pair a
sample with the frame set of a drawn age, hundreds of milliseconds earlier.

Layout (all safetensors, no pickle)::

    <cache_dir>/<model_id slug>/<adapter_id slug or "base">/prompt-<sha256(prompt)[:16]>/
        key.json                               model_id, adapter_id, prompt (for people)
        <episode name slug>.safetensors        features (M, K, D) float16|float32,
                                               frame_stamps_ns (M, V) int64; metadata: format,
                                               model_id, adapter_id, prompt, views, episode

A changed model (``VLFeatureExtractor.model_id`` hashes the architecture and the feature
settings: image size, K, layer), adapter, or prompt selects another directory; a changed frame
stamp is a missing row. Misses are extracted and the file rewritten atomically (temp file +
rename), so an interrupted run leaves the old file or the new one. A file that cannot be read,
or whose metadata/shapes disagree, is counted, deleted and rebuilt, never trusted.

Features are stored as float16 by default: the VLM node publishes float16 payloads
(``payload_dtype``), so training sees the same rounding as the action node at run time.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asyncvla_core.conventions import MAX_VIEWS
from .episode import Episode
from .errors import CacheError

LOG = logging.getLogger(__name__)
CACHE_FORMAT = "asyncvla-vl-cache/1"
STORAGE_DTYPES = {"float16": np.float16, "float32": np.float32}


def _sha(text: str, n: int = 16) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def _slug(text: str, empty: str) -> str:
    if not text:
        return empty
    safe = re.sub(r"[^A-Za-z0-9._@-]+", "_", text)[:60]
    return f"{safe}-{_sha(text, 8)}"


@dataclass
class EpisodeVLFeatures:
    """The cached features of one episode: its frame sets' rows plus a frame set -> row index."""

    features: np.ndarray  # (R, K, D), storage dtype
    frame_stamps_ns: np.ndarray  # (R, V) int64
    index: np.ndarray  # (M,) row of each of the episode's frame sets

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def __getitem__(self, s: int) -> np.ndarray:
        """(K, D) float32 features of the episode's frame set ``s``."""
        return self.features[int(self.index[s])].astype(np.float32)


class VLFeatureCache:
    """Cached VL features per episode, keyed by model id + adapter id + prompt + frame stamps.

    ``extractor``: a ``VLFeatureExtractor`` (anything with ``model_id``, ``adapter_id`` and
    ``extract(images, prompt).features``); without one the cache is read-only (pass ``model_id``
    and ``adapter_id``) and a miss raises CacheError. ``prompt``: None = each episode's prompt.
    ``batch_size``: misses of one episode are extracted this many frame sets per forward pass when
    the extractor has ``encode_batch`` (one prompt per episode, so no padding: the same features
    as ``extract`` up to float rounding); 1 = one ``extract`` call per frame set.
    """

    def __init__(self, directory: str | os.PathLike[str], extractor=None, prompt: str | None = None,
                 *, model_id: str | None = None, adapter_id: str | None = None,
                 storage_dtype: str = "float16", progress: bool = True,
                 batch_size: int = 1) -> None:
        if extractor is None and model_id is None:
            raise ValueError("pass an extractor, or model_id (and adapter_id) for a read-only cache")
        if storage_dtype not in STORAGE_DTYPES:
            raise ValueError(f"storage_dtype must be one of {sorted(STORAGE_DTYPES)}")
        self.directory = Path(directory)
        self.extractor = extractor
        self.prompt = prompt
        self.model_id = str(model_id if model_id is not None else extractor.model_id)
        self.adapter_id = str(adapter_id if adapter_id is not None
                              else getattr(extractor, "adapter_id", "") or "")
        if extractor is not None and (self.model_id != extractor.model_id
                                      or self.adapter_id != (extractor.adapter_id or "")):
            raise ValueError("model_id/adapter_id must match the extractor's")
        self.storage_dtype = storage_dtype
        self.progress = progress
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        # hits/misses count frame sets looked up in files; memory_hits count calls answered from
        # the episodes already loaded in this process.
        self.stats = {"hits": 0, "misses": 0, "extracted": 0, "corrupt": 0, "invalid": 0,
                      "files_written": 0, "memory_hits": 0}
        self._memory: dict[tuple[str, str], tuple[bytes, EpisodeVLFeatures]] = {}

    # ------------------------------------------------------------------ layout
    def prompt_for(self, episode: Episode) -> str:
        return self.prompt if self.prompt is not None else episode.prompt

    def key_directory(self, prompt: str) -> Path:
        return (self.directory / _slug(self.model_id, "model") / _slug(self.adapter_id, "base")
                / f"prompt-{_sha(prompt)}")

    def file_for(self, episode: Episode) -> Path:
        name = _slug(episode.name, "episode")
        return self.key_directory(self.prompt_for(episode)) / f"{name}.safetensors"

    def _metadata(self, episode: Episode, prompt: str) -> dict[str, str]:
        return {"format": CACHE_FORMAT, "model_id": self.model_id, "adapter_id": self.adapter_id,
                "prompt": prompt, "views": json.dumps(list(episode.views)),
                "episode": episode.name}

    # ------------------------------------------------------------------ file I/O
    def _read(self, path: Path, episode: Episode, prompt: str, stamps_only: bool = False):
        """(frame_stamps (M, V), features (M, K, D) or None) of a valid file, else None."""
        if not path.is_file():
            return None
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="np") as handle:
                meta = handle.metadata() or {}
                stamps = handle.get_tensor("frame_stamps_ns")
                features = None if stamps_only else handle.get_tensor("features")
                feature_shape = handle.get_slice("features").get_shape()
        except Exception as exc:  # noqa: BLE001 - truncated/garbled files raise various errors
            self.stats["corrupt"] += 1
            return self._discard(path, f"is unreadable ({exc})")
        expected = self._metadata(episode, prompt)
        problems = [k for k in ("format", "model_id", "adapter_id", "prompt", "views")
                    if meta.get(k) != expected[k]]
        if stamps.ndim != 2 or stamps.shape[1] != len(episode.views) or len(feature_shape) != 3 \
                or feature_shape[0] != stamps.shape[0] or stamps.dtype != np.int64:
            problems.append("shapes")
        if features is not None and not np.all(np.isfinite(features)):
            problems.append("non-finite features")
        if problems:
            self.stats["invalid"] += 1
            return self._discard(path, f"does not match ({', '.join(problems)})")
        return stamps, features

    def _discard(self, path: Path, why: str) -> None:
        """A file that cannot be trusted: rebuilt (said so) when this cache can extract; a
        read-only cache never deletes what it cannot rebuild and names the file and the fix."""
        if self.extractor is None:
            raise CacheError(f"VL cache file {path} {why}: rebuild it with asyncvla-cache-vl "
                             "(it replaces unusable files)")
        LOG.warning("VL cache file %s %s: rebuilding it", path, why)
        path.unlink(missing_ok=True)
        return None

    def _write(self, path: Path, episode: Episode, prompt: str, stamps: np.ndarray,
               features: np.ndarray) -> None:
        from safetensors.numpy import save_file

        path.parent.mkdir(parents=True, exist_ok=True)
        key_file = path.parent / "key.json"
        if not key_file.is_file():
            key = {"model_id": self.model_id, "adapter_id": self.adapter_id, "prompt": prompt,
                   "format": CACHE_FORMAT}
            key_tmp = key_file.with_name(f".key.json.{os.getpid()}.tmp")
            key_tmp.write_text(json.dumps(key, indent=2) + "\n")
            os.replace(key_tmp, key_file)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        save_file({"features": np.ascontiguousarray(features),
                   "frame_stamps_ns": np.ascontiguousarray(stamps, dtype=np.int64)},
                  str(tmp), metadata=self._metadata(episode, prompt))
        os.replace(tmp, path)
        self.stats["files_written"] += 1

    # ------------------------------------------------------------------ lookup / build
    @staticmethod
    def _keys(episode: Episode) -> list[tuple[int, ...]]:
        return sorted({episode.frame_set_key(s) for s in range(episode.num_frame_sets)})

    def missing(self, episode: Episode) -> int:
        """Distinct frame sets of ``episode`` not in the cache (reads only the stamps)."""
        prompt = self.prompt_for(episode)
        found = self._read(self.file_for(episode), episode, prompt, stamps_only=True)
        have = set() if found is None else {tuple(int(x) for x in row) for row in found[0]}
        return sum(1 for key in self._keys(episode) if key not in have)

    def features_for(self, episode: Episode, progress_bar=None) -> EpisodeVLFeatures:
        """The features of every frame set of ``episode``, extracting (and storing) any misses."""
        prompt = self.prompt_for(episode)
        path = self.file_for(episode)
        fingerprint = hashlib.sha256(np.ascontiguousarray(episode.frame_sets_ns,
                                                          dtype=np.int64).tobytes()).digest()
        memo = self._memory.get((str(path), prompt))
        if memo is not None and memo[0] == fingerprint:  # already loaded: O(1) per lookup
            self.stats["memory_hits"] += 1
            return memo[1]
        keys = self._keys(episode)
        found = self._read(path, episode, prompt)
        rows: dict[tuple[int, ...], np.ndarray] = {}
        if found is not None:
            for stamp_row, feature in zip(found[0], found[1]):
                rows[tuple(int(x) for x in stamp_row)] = feature
        todo = [key for key in keys if key not in rows]
        self.stats["hits"] += len(keys) - len(todo)
        self.stats["misses"] += len(todo)
        if todo:
            if self.extractor is None:
                raise CacheError(
                    f"VL cache {self.key_directory(prompt)} lacks {len(todo)} of {len(keys)} frame "
                    f"sets of episode {episode.name!r}; build it first (asyncvla-cache-vl)")
            sample_of = {episode.frame_set_key(s): s for s in range(episode.num_frame_sets)}
            dtype = STORAGE_DTYPES[self.storage_dtype]
            own_bar = progress_bar is None and self.progress and sys.stderr is not None
            bar = progress_bar
            if own_bar:
                from tqdm import tqdm

                bar = tqdm(total=len(todo), desc=f"VL features {episode.name}", unit="set",
                           leave=False)
            try:
                step = self.batch_size if hasattr(self.extractor, "encode_batch") else 1
                for start in range(0, len(todo), step):
                    group = todo[start:start + step]
                    for key, feature in zip(group, self._extract(episode, group, sample_of, prompt)):
                        stored = feature.astype(dtype)
                        if not np.all(np.isfinite(stored)):
                            raise CacheError(f"VL features of {episode.name} overflow "
                                             f"{self.storage_dtype}; use storage_dtype='float32'")
                        rows[key] = stored
                        self.stats["extracted"] += 1
                    if bar is not None:
                        bar.update(len(group))
            finally:
                if own_bar:
                    bar.close()
            shapes = {v.shape for v in rows.values()}
            if len(shapes) != 1:  # old rows from other settings cannot share the file
                rows = {k: v for k, v in rows.items() if v.shape == rows[todo[-1]].shape}
            ordered = sorted(rows)
            self._write(path, episode, prompt, np.asarray(ordered, dtype=np.int64),
                        np.stack([rows[k].astype(dtype) for k in ordered]))
        position = {key: r for r, key in enumerate(sorted(rows))}
        stacked = np.stack([rows[k] for k in sorted(rows)])
        index = np.array([position[episode.frame_set_key(s)]
                          for s in range(episode.num_frame_sets)], dtype=np.int64)
        result = EpisodeVLFeatures(stacked, np.asarray(sorted(rows), dtype=np.int64), index)
        self._memory[(str(path), prompt)] = (fingerprint, result)
        return result

    def _extract(self, episode: Episode, keys: Sequence[tuple[int, ...]],
                 sample_of: dict[tuple[int, ...], int], prompt: str) -> list[np.ndarray]:
        """(K, D) float32 features of the frame sets ``keys`` (``sample_of``: key -> the
        episode's frame set index): one ``extract`` call, or one ``encode_batch`` pass (eval
        mode, no gradients) for several."""
        if len(keys) == 1:
            result = self.extractor.extract(episode.load_frames(sample_of[keys[0]]), prompt)
            features = result.features
            return [np.asarray(features.detach().cpu().float().numpy()
                               if hasattr(features, "detach") else features, dtype=np.float32)]
        import torch

        samples = [(episode.load_frames(sample_of[key]), prompt) for key in keys]
        was_training = self.extractor.training
        self.extractor.eval()
        try:
            with torch.no_grad():
                batch = self.extractor.encode_batch(samples).detach().cpu().float().numpy()
        finally:
            self.extractor.train(was_training)
        return [np.asarray(row, dtype=np.float32) for row in batch]

    def lookup(self, episode: Episode, s: int) -> np.ndarray:
        """(K, D) float32 features of the episode's frame set ``s`` (``Episode.sample_frame_sets``
        for a sample's own, ``Episode.stale_frame_set`` for an older one)."""
        return self.features_for(episode)[s]

    def build(self, episodes: Sequence[Episode]) -> dict[str, int]:
        """Make sure every episode is cached (one progress bar over all misses); returns stats."""
        total = sum(self.missing(e) for e in episodes)
        bar = None
        if self.progress and total:
            from tqdm import tqdm

            bar = tqdm(total=total, desc="VL features", unit="set")
        try:
            for episode in episodes:
                self.features_for(episode, progress_bar=bar)
        finally:
            if bar is not None:
                bar.close()
        return dict(self.stats)

# ---------------------------------------------------------------------- CLI
def _size(text: str) -> tuple[int, int]:
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from exc


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """Bag/alignment options shared by the data CLIs."""
    parser.add_argument("bags", nargs="+", help="bag directories, .mcap/.db3 files, or folders of bags")
    parser.add_argument("--views", default="", help="comma-separated views in model order "
                        "(default: every /camera/<view>/image_raw/compressed, sorted)")
    parser.add_argument("--prompt", default=None, help="force this prompt (default: the bag's)")
    parser.add_argument("--step-period", type=float, default=0.1)
    parser.add_argument("--horizon", type=int, default=8)
    parser.add_argument("--sensor-window", type=int, default=65)
    parser.add_argument("--action-space", choices=("ee_delta", "joint_delta"), default="ee_delta")
    parser.add_argument("--skip-errors", action="store_true",
                        help="skip bags that cannot be used instead of stopping")


def dataset_config_from_args(args: argparse.Namespace):
    from .alignment import AlignmentConfig
    from .bag_dataset import BagDatasetConfig

    return BagDatasetConfig(
        views=tuple(v for v in args.views.split(",") if v) or None, prompt=args.prompt,
        alignment=AlignmentConfig(step_period=args.step_period, horizon=args.horizon,
                                  sensor_window=args.sensor_window,
                                  action_space=args.action_space))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="asyncvla-cache-vl",
        description="Extract and cache VL features for every distinct frame set of the bags "
                    "(stage 1 training reads them instead of running the VLM).")
    add_dataset_arguments(parser)
    parser.add_argument("--cache-dir", required=True)
    parser.add_argument("--model", required=True, help="Qwen2.5-VL directory or cached hub id")
    parser.add_argument("--adapter", default=None, help="optional LoRA adapter directory")
    parser.add_argument("--image-size", type=_size, default=(640, 360), help="WIDTHxHEIGHT")
    parser.add_argument("--num-feature-tokens", type=int, default=64)
    parser.add_argument("--feature-layer", type=int, default=-1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default=None, help="model dtype (default: bf16 on GPU, fp32 on CPU)")
    parser.add_argument("--storage-dtype", choices=sorted(STORAGE_DTYPES), default="float16")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ..cli_errors import run_cli
    from .errors import BagDataError

    return run_cli("asyncvla-cache-vl", lambda: _run(args), hints={BagDataError: SKIP_HINT})


SKIP_HINT = "fix or remove that recording, or pass --skip-errors to leave unusable bags out"


def _run(args: argparse.Namespace) -> int:
    from ..cli_errors import CliError
    from asyncvla_policy.vl_extractor import VLFeatureExtractor
    from .bag_dataset import dataset_summary, load_episodes

    config = dataset_config_from_args(args)
    episodes = load_episodes(args.bags, config, skip_errors=args.skip_errors)
    if not episodes:
        raise CliError(f"no usable episode in {', '.join(args.bags)}")
    try:
        extractor = VLFeatureExtractor.from_pretrained(
            args.model, adapter_path=args.adapter, device=args.device, dtype=args.dtype,
            image_size=args.image_size, max_views=max(MAX_VIEWS, len(episodes[0].views)),
            num_feature_tokens=args.num_feature_tokens, feature_layer=args.feature_layer)
    except ValueError as exc:  # not a Qwen2.5-VL model, bad feature settings
        raise CliError(f"--model {args.model}: {exc}") from exc
    cache = VLFeatureCache(args.cache_dir, extractor, args.prompt,
                           storage_dtype=args.storage_dtype, progress=not args.no_progress)
    stats = cache.build(episodes)
    print(json.dumps({"cache_dir": str(cache.directory), "model_id": cache.model_id,
                      "adapter_id": cache.adapter_id, **dataset_summary(episodes), **stats}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
