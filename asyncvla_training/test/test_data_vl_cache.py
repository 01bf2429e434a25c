"""VL feature cache on a tiny offline Qwen2.5-VL: hits, misses, invalidation, corrupt files, CLI."""
from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

# Run from a plain checkout: put the package dir first; pytest's importlib mode may have registered
# the ROS package *directory* as a namespace package "asyncvla_training" - drop it for the real one.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
if getattr(sys.modules.get("asyncvla_training"), "__file__", "") is None:
    del sys.modules["asyncvla_training"]

from safetensors.numpy import load_file  # noqa: E402

from asyncvla_policy.vl_extractor import VLFeatureExtractor  # noqa: E402
from asyncvla_testing.synthetic_bag import SyntheticBagSpec, write_synthetic_bag  # noqa: E402
from asyncvla_testing.tiny_vlm import ensure_tiny_qwen_vl  # noqa: E402
from asyncvla_training.data import CacheError, Episode, VLFeatureCache, load_bag  # noqa: E402
from asyncvla_training.data import vl_cache  # noqa: E402

SIZE = (56, 56)
K = 4


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return ensure_tiny_qwen_vl(tmp_path_factory.getbasetemp() / "tiny_qwen_vl_data")


@pytest.fixture(scope="module")
def extractor(tiny_dir: str) -> VLFeatureExtractor:
    return VLFeatureExtractor.from_pretrained(tiny_dir, image_size=SIZE, num_feature_tokens=K)


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory):
    # 15 FPS cameras, one view slowed to 5 FPS: neighbouring samples share frame sets.
    return write_synthetic_bag(tmp_path_factory.mktemp("vlbag") / "ep", "mcap",
                               SyntheticBagSpec(duration=1.8, camera_fps=5.0,
                                                views=("view1",)))


@pytest.fixture(scope="module")
def episode(bag) -> Episode:
    (ep,), _ = load_bag(bag.path)
    return ep


def _distinct(ep: Episode) -> int:
    return len({ep.frame_set_key(s) for s in range(ep.num_frame_sets)})


def test_batched_extraction_matches_one_by_one(tmp_path: Path, extractor, episode: Episode) -> None:
    """batch_size > 1 runs encode_batch over several frame sets: the same features (float16
    storage) as one extract call each, every frame set extracted once, the file identical in rows."""
    single = VLFeatureCache(tmp_path / "single", extractor, progress=False)
    batched = VLFeatureCache(tmp_path / "batched", extractor, progress=False, batch_size=3)
    a = single.features_for(episode)
    b = batched.features_for(episode)
    assert batched.stats["extracted"] == single.stats["extracted"] == _distinct(episode)
    np.testing.assert_array_equal(a.frame_stamps_ns, b.frame_stamps_ns)
    np.testing.assert_array_equal(a.index, b.index)
    np.testing.assert_allclose(b.features, a.features, rtol=2e-3, atol=2e-3)
    with pytest.raises(ValueError, match="batch_size"):
        VLFeatureCache(tmp_path / "bad", extractor, batch_size=0)


def test_first_build_extracts_each_frame_set_once(tmp_path: Path, extractor, episode: Episode) -> None:
    n_sets = _distinct(episode)
    own = len(set(episode.sample_frame_sets.tolist()))
    assert 1 < own < len(episode)  # some samples share a frame set (5 FPS camera, 10 Hz ticks)
    cache = VLFeatureCache(tmp_path, extractor, progress=False)
    feats = cache.features_for(episode)
    assert cache.stats["misses"] == cache.stats["extracted"] == n_sets and cache.stats["hits"] == 0
    assert feats.features.shape == (n_sets, K, extractor.feature_dim)
    assert feats.features.dtype == np.float16 and len(feats) == episode.num_frame_sets
    for s in (0, n_sets // 2, n_sets - 1):
        direct = extractor.extract(episode.load_frames(s), episode.prompt).features.numpy()
        np.testing.assert_array_equal(feats[s], direct.astype(np.float16).astype(np.float32))
        np.testing.assert_array_equal(cache.lookup(episode, s), feats[s])
    old, _ = episode.stale_frame_set(len(episode) - 1, 400_000_000)
    assert old < episode.sample_frame_sets[-1] and not np.array_equal(
        feats[old], feats[int(episode.sample_frame_sets[-1])])
    # The file: safetensors, stamps + features, key in metadata and key.json.
    path = cache.file_for(episode)
    stored = load_file(str(path))
    assert set(stored) == {"features", "frame_stamps_ns"} and stored["frame_stamps_ns"].shape == (n_sets, 1)
    key = json.loads((path.parent / "key.json").read_text())
    assert key["model_id"] == extractor.model_id and key["prompt"] == episode.prompt

    cache.lookup(episode, 1)
    assert cache.stats["memory_hits"] >= 1 and cache.stats["hits"] == 0  # no file read per lookup
    again = VLFeatureCache(tmp_path, extractor, progress=False)  # fresh process: reads the file
    np.testing.assert_array_equal(again.features_for(episode).features, feats.features)
    assert again.stats["hits"] == n_sets and again.stats["extracted"] == 0
    reader = VLFeatureCache(tmp_path, model_id=extractor.model_id, adapter_id="")  # read-only
    np.testing.assert_array_equal(reader.lookup(episode, 2), feats[2])


def test_prompt_model_and_adapter_changes_invalidate(tmp_path: Path, tiny_dir: str, extractor,
                                                     episode) -> None:
    n_sets = _distinct(episode)
    base = VLFeatureCache(tmp_path, extractor, progress=False)
    base.build([episode])
    other_prompt = VLFeatureCache(tmp_path, extractor, prompt="Retract the needle", progress=False)
    feats = other_prompt.features_for(episode)
    assert other_prompt.stats["extracted"] == n_sets
    assert other_prompt.file_for(episode) != base.file_for(episode)
    assert not np.array_equal(feats.features, base.features_for(episode).features)

    other_model = VLFeatureExtractor.from_pretrained(tiny_dir, image_size=SIZE, num_feature_tokens=K + 1)
    assert other_model.model_id != extractor.model_id
    by_model = VLFeatureCache(tmp_path, other_model, progress=False)
    assert by_model.features_for(episode).features.shape[1] == K + 1
    assert by_model.stats["extracted"] == n_sets

    adapted = VLFeatureExtractor.from_pretrained(tiny_dir, image_size=SIZE, num_feature_tokens=K)
    adapted.attach_lora(r=2, alpha=4)
    by_adapter = VLFeatureCache(tmp_path, adapted, progress=False)
    by_adapter.features_for(episode)
    assert by_adapter.stats["extracted"] == n_sets and "base" not in str(by_adapter.file_for(episode))
    # The original entries are untouched by all of this.
    untouched = VLFeatureCache(tmp_path, extractor, progress=False)
    untouched.features_for(episode)
    assert untouched.stats["extracted"] == 0


def test_changed_frame_stamps_are_misses(tmp_path: Path, extractor, episode) -> None:
    cache = VLFeatureCache(tmp_path, extractor, progress=False)
    cache.features_for(episode)
    stamps = episode.frame_stamps_ns.copy()
    sets = episode.frame_sets_ns.copy()
    changed_key = episode.frame_set_key(episode.num_frame_sets - 1)
    stamps[stamps[:, 0] == changed_key[0], 0] += 1  # one frame re-stamped (e.g. a re-recorded bag)
    sets[sets[:, 0] == changed_key[0], 0] += 1
    moved = replace(episode, frame_stamps_ns=stamps, frame_sets_ns=sets)
    fresh = VLFeatureCache(tmp_path, extractor, progress=False)
    fresh.features_for(moved)
    assert fresh.stats["misses"] == fresh.stats["extracted"] == 1
    assert fresh.stats["hits"] == _distinct(episode) - 1
    read_only = VLFeatureCache(tmp_path, model_id=extractor.model_id, adapter_id="")
    read_only.features_for(moved)  # both the old and the new key are in the file now
    with pytest.raises(CacheError, match="asyncvla-cache-vl"):
        read_only.features_for(replace(episode, frame_stamps_ns=stamps + 7, frame_sets_ns=sets + 7))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign"])
def test_corrupt_file_is_rebuilt(tmp_path: Path, extractor, episode, damage: str) -> None:
    cache = VLFeatureCache(tmp_path, extractor, progress=False)
    good = cache.features_for(episode).features
    path = cache.file_for(episode)
    data = path.read_bytes()
    if damage == "truncate":  # a partial write
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00\x01not a safetensors file" * 10)
    else:  # a valid file with another key (copied from elsewhere)
        other = VLFeatureCache(tmp_path / "other", extractor, prompt="something else", progress=False)
        other.features_for(episode)
        path.write_bytes(other.file_for(episode).read_bytes())
    rebuilt = VLFeatureCache(tmp_path, extractor, progress=False)
    np.testing.assert_array_equal(rebuilt.features_for(episode).features, good)
    counter = "invalid" if damage == "foreign" else "corrupt"
    assert rebuilt.stats[counter] == 1 and rebuilt.stats["extracted"] == _distinct(episode)
    assert load_file(str(path))["features"].shape[0] == _distinct(episode)


def test_cli_builds_and_reuses(tmp_path: Path, tiny_dir: str, bag, episode, capsys) -> None:
    args = [str(bag.path), "--cache-dir", str(tmp_path), "--model", tiny_dir, "--image-size", "56x56",
            "--num-feature-tokens", str(K), "--device", "cpu", "--no-progress"]
    assert vl_cache.main(args) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["extracted"] == _distinct(episode) and first["episodes"] == 1
    assert vl_cache.main(args) == 0
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert second["extracted"] == 0 and second["hits"] >= _distinct(episode)
    missing = [str(tmp_path / "missing"), "--cache-dir", str(tmp_path), "--model", tiny_dir]
    assert vl_cache.main(missing) == 2
    assert "missing" in capsys.readouterr().err
