"""Does the policy learn what the design claims? The experiment behind tools/bench/bench_learning.py.

Claims tested, on held-out recordings of the insertion task family (``insertion_task``):

(a) the action depends on the camera and the prompt through the VL features: the full policy
    against a VL-ablated twin (same run, features zeroed in training and evaluation), against the
    full policy evaluated with features shuffled across samples, and against the training-set
    mean chunk; and the prompt swap (same pictures, the other prompt) flips the predicted lateral
    direction;
(b) training with VL features 0..reuse-1 periods old makes the expert robust to the staleness it
    meets at run time: policies trained with reuse 1 and reuse 4, evaluated with features
    0..max_age periods old (``predict_episode(stale=k)``, each sample paired with the features of
    the sample k periods earlier).

Everything runs through the project's code: bags written by the bag writer and read by
``load_bag_episodes``, the tiny Qwen2.5-VL's features in the on-disk ``VLFeatureCache``, the
``Trainer`` (stage 1) and the evaluation's ``predict_episode`` / ``compute_metrics``.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Action dimension of the lateral (y) offset in ee_delta: [x, y, z, rx, ry, rz, tool].
LATERAL = 1


@dataclass(frozen=True)
class ExperimentSettings:
    """Sizes of one run of the experiment (defaults: the benchmark; the CI test scales down).

    96 training scenes and 2000 steps: with 16 scenes and 600 steps (the first size measured)
    the expert recognised each scene instead of reading the marker's place in the picture, so
    the claims could not be judged at all (TRAINING.md keeps both tables)."""

    train_episodes: int = 96
    test_episodes: int = 6
    duration: float = 4.0  # s per recording
    image_size: int = 112  # px, square tool camera
    num_feature_tokens: int = 64
    steps: int = 2000
    batch_size: int = 16
    lr: float = 1e-3
    warmup_steps: int = 50
    max_age: int = 4  # action periods of VL age evaluated: 0..max_age
    reuses: tuple[int, ...] = (1, 4)
    seed: int = 0
    cache_batch: int = 16


def _train(cfg_base, train, provider, out: Path, reuse: int, log) -> Any:
    from ..models.checkpoint import load_policy
    from ..train.trainer import Trainer

    cfg = dataclasses.replace(cfg_base, reuse=reuse, out_dir=str(out))
    trainer = Trainer(cfg, train, (), feature_provider=provider, log=log, progress=False)
    summary = trainer.train()
    return load_policy(summary["latest"]), summary


def _per_dim_nmse(policy, predictions, episodes) -> np.ndarray:
    """(A,) MSE per action dimension in the policy's normalised units."""
    target = np.concatenate([np.asarray(ep.actions, dtype=np.float64) for ep in episodes])
    pred = np.concatenate(predictions).astype(np.float64)
    std = policy.action_std.cpu().numpy().astype(np.float64)
    return np.mean(((pred - target) / std) ** 2, axis=(0, 1))


def moved_dims(policy) -> list[int]:
    """Action dimensions the recordings move: training std above 10x the action std floor.

    Why: a dimension that never moves (here rotation and tool) gets the floor std (1e-5), so a
    physically negligible output wobble on held-out inputs (1e-5 rad) is a normalised error of 1
    and would swamp the whole-chunk mean; the verdicts use the moved dimensions (x, y, z)."""
    from ..data.stats import DEFAULT_STD_FLOORS

    std = policy.action_std.cpu().numpy()
    return [d for d in range(std.shape[0]) if std[d] > 10 * DEFAULT_STD_FLOORS["action"]]


def run_experiment(settings: ExperimentSettings, workdir: str | Path,
                   log=lambda line: None) -> dict[str, Any]:
    """Write the recordings, cache the features, train, evaluate; returns the JSON-ready result."""
    import torch

    from ..data.vl_cache import VLFeatureCache
    from ..models.devices import resolve_device
    from ..train.config import TrainConfig
    from ..train.data_sources import load_bag_episodes
    from ..train.evaluate import compute_metrics, predict_episode
    from ..train.features import CachedFeatureProvider, ShuffledFeatureProvider, ZeroFeatureProvider
    from ..train.trainer import load_vl_extractor
    from .insertion_task import PROMPTS, write_insertion_bags
    from .tiny_vlm import ensure_tiny_qwen_vl

    s = settings
    workdir = Path(workdir)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 1)
        clock = now

    model = ensure_tiny_qwen_vl(workdir / "tiny_vl")
    views = ["tool"]
    size = (s.image_size, s.image_size)
    train_bags = write_insertion_bags(workdir / "bags" / "train", s.train_episodes, s.seed * 2 + 1,
                                      s.duration, tuple(views), size, prefix="train")
    test_bags = write_insertion_bags(workdir / "bags" / "test", s.test_episodes, s.seed * 2 + 2,
                                     s.duration, tuple(views), size, prefix="test")
    lap("write_bags_s")
    cfg = TrainConfig(
        stage=1, vl_model_path=model, image_width=s.image_size, image_height=s.image_size,
        num_feature_tokens=s.num_feature_tokens, views=views, policy_size="tiny",
        total_steps=s.steps, warmup_steps=s.warmup_steps, batch_size=s.batch_size,
        grad_accum_steps=1, lr=s.lr, sensor_lr=s.lr, eval_every=0, save_every=0,
        log_every=max(1, s.steps // 5), seed=s.seed, device="cpu", val_fraction=0.0,
    )
    train = load_bag_episodes([str(p) for p, _ in train_bags], cfg)
    test = load_bag_episodes([str(p) for p, _ in test_bags], cfg)
    swapped = [dataclasses.replace(ep, prompt=PROMPTS[-sc.side])
               for ep, (_, sc) in zip(test, test_bags)]
    lap("read_bags_s")

    extractor = load_vl_extractor(cfg, resolve_device("cpu"))
    cache = VLFeatureCache(workdir / "vl_cache", extractor, None, progress=False,
                           batch_size=s.cache_batch)
    cache.build(train + test + swapped)
    provider = CachedFeatureProvider(cache.lookup, cache.model_id, cache.adapter_id)
    lap("vl_features_s")

    policies: dict[str, Any] = {}
    summaries: dict[str, Any] = {}
    for reuse in s.reuses:
        policies[f"reuse{reuse}"], summaries[f"reuse{reuse}"] = _train(
            cfg, train, provider, workdir / "runs" / f"reuse{reuse}", reuse, log)
        lap(f"train_reuse{reuse}_s")
    zero = ZeroFeatureProvider(provider)
    policies["ablated"], summaries["ablated"] = _train(cfg, train, zero, workdir / "runs" / "ablated",
                                                       s.reuses[0], log)
    lap("train_ablated_s")

    def score(policy, episodes, feats, stale: int = 0) -> dict[str, Any]:
        preds = [predict_episode(policy, ep, feats, stale=stale) for ep in episodes]
        metrics = compute_metrics(policy, episodes, preds, "ee_delta")
        per_dim = _per_dim_nmse(policy, preds, episodes)
        zeros = [np.broadcast_to(policy.action_mean.cpu().numpy(), p.shape) for p in preds]
        base = _per_dim_nmse(policy, zeros, episodes)
        moved = moved_dims(policy)
        return {"nmse": float(per_dim[moved].mean()), "baseline_nmse": float(base[moved].mean()),
                "whole_chunk_nmse": metrics["normalized_mse"],
                "whole_chunk_baseline": metrics["baseline_normalized_mse"],
                "per_dim_nmse": per_dim.tolist(), "lateral_nmse": float(per_dim[LATERAL]),
                "lateral_baseline": float(base[LATERAL]),
                "predictions": preds}

    full_name = f"reuse{s.reuses[0]}"
    full = policies[full_name]
    with torch.no_grad():
        fresh = score(full, test, provider)
        shuffled = score(full, test, ShuffledFeatureProvider(provider, test, seed=s.seed))
        ablated = score(policies["ablated"], test, zero)
        swap = score(full, swapped, provider)
        ages: dict[str, dict[str, list[float]]] = {}
        for name in (f"reuse{r}" for r in s.reuses):
            rows = [score(policies[name], test, provider, stale=k) for k in range(s.max_age + 1)]
            ages[name] = {"nmse": [r["nmse"] for r in rows],
                          "lateral_nmse": [r["lateral_nmse"] for r in rows],
                          "whole_chunk_nmse": [r["whole_chunk_nmse"] for r in rows]}
    lap("evaluate_s")

    original = np.concatenate([p[:, -1, LATERAL] for p in fresh["predictions"]])
    other = np.concatenate([p[:, -1, LATERAL] for p in swap["predictions"]])
    recorded = np.concatenate([np.asarray(ep.actions)[:, -1, LATERAL] for ep in test])
    flips = float(np.mean(np.sign(original) != np.sign(other)))
    step_ms = int(round(cfg.step_period * 1000))
    at = min(3, s.max_age)
    last = s.reuses[-1]
    result = {
        "settings": dataclasses.asdict(s),
        "samples": {"train": sum(len(e) for e in train), "test": sum(len(e) for e in test)},
        "vl_model_id": cache.model_id,
        "error": {
            "metric": "normalised MSE over the moved action dimensions, all horizon steps, "
                      "held-out recordings",
            "moved_dims": moved_dims(full),
            "full": fresh["nmse"], "ablated_twin": ablated["nmse"], "shuffled_features": shuffled["nmse"],
            "mean_chunk": fresh["baseline_nmse"],
            "per_dim": {"full": fresh["per_dim_nmse"], "ablated_twin": ablated["per_dim_nmse"],
                        "shuffled_features": shuffled["per_dim_nmse"]},
            "whole_chunk": {"full": fresh["whole_chunk_nmse"], "ablated_twin": ablated["whole_chunk_nmse"],
                            "shuffled_features": shuffled["whole_chunk_nmse"],
                            "mean_chunk": fresh["whole_chunk_baseline"]},
            "lateral": {"full": fresh["lateral_nmse"], "ablated_twin": ablated["lateral_nmse"],
                        "shuffled_features": shuffled["lateral_nmse"],
                        "mean_chunk": fresh["lateral_baseline"]},
        },
        "prompt_swap": {
            "flip_fraction": flips,
            "recorded_direction_accuracy": float(np.mean(np.sign(original) == np.sign(recorded))),
        },
        "vl_age": {"age_ms": [k * step_ms for k in range(s.max_age + 1)], **ages},
        "final_train_loss": {k: v["final_loss"] for k, v in summaries.items()},
        "timings_s": timings,
    }
    ratio_full = fresh["nmse"] / ablated["nmse"]
    r1, r4 = ages[full_name]["nmse"][at], ages[f"reuse{last}"]["nmse"][at]
    result["targets"] = {
        "full_over_ablated": {"value": ratio_full, "target": "<= 0.5", "met": ratio_full <= 0.5},
        "prompt_swap_flips": {"value": flips, "target": ">= 0.95", "met": flips >= 0.95},
        f"reuse{last}_vs_reuse{s.reuses[0]}_at_{at * step_ms}ms": {
            "value": 1.0 - r4 / r1, "target": ">= 0.20 lower", "met": (1.0 - r4 / r1) >= 0.20},
    }
    return result


def plot_result(result: dict[str, Any], path: str | Path) -> Path:
    """One PNG: error bars (full / shuffled / ablated / mean chunk) and error vs VL age."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    path = Path(path)
    err = result["error"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    names = ["full", "shuffled\nfeatures", "VL-ablated\ntwin", "mean\nchunk"]
    moved = [err["full"], err["shuffled_features"], err["ablated_twin"], err["mean_chunk"]]
    lateral = [err["lateral"]["full"], err["lateral"]["shuffled_features"],
               err["lateral"]["ablated_twin"], err["lateral"].get("mean_chunk", np.nan)]
    x = np.arange(len(names))
    left.bar(x - 0.2, moved, 0.4, label="x, y, z", color="tab:gray")
    left.bar(x + 0.2, lateral, 0.4, label="lateral y only", color="tab:green")
    left.set_xticks(x, names)
    left.set_ylabel("held-out normalised MSE")
    left.set_title(f"vision + prompt (prompt swap flips {result['prompt_swap']['flip_fraction']:.0%})")
    left.legend()
    ages = result["vl_age"]
    for n, name in enumerate(k for k in ages if k.startswith("reuse")):
        colour = f"C{n}"
        right.plot(ages["age_ms"], ages[name]["nmse"], marker="o", color=colour,
                   label=f"{name}: x, y, z")
        right.plot(ages["age_ms"], ages[name]["lateral_nmse"], marker="s", ls="--", color=colour,
                   label=f"{name}: lateral y")
    right.set_xlabel("VL feature age at evaluation (ms)")
    right.set_ylabel("held-out normalised MSE")
    right.set_title("staleness: trained with reuse 1 vs 4")
    right.grid(alpha=0.3)
    right.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
