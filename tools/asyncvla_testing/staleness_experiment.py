"""Does a policy act well on a stale view? The experiment behind tools/bench/bench_staleness.py.

On held-out recordings of the moving-target task (``tracking_task``), with VL features 0, 150,
300, 450 and 600 ms old at evaluation (the frame set the VLM had that long before each sample,
the age the action node would compute), the lateral error of:

* **F**: trained on fresh features only, no age input (the original system's reuse 1);
* **S**: trained with VL ages drawn from ``train_age_ms`` (the project's default range), no age
  input: it can only learn the mean correction;
* **A**: trained with the same ages and told each age (``PolicyConfig.vl_age_input``);
* the **VL-ablated twin**: trained and evaluated on zeroed features (what sensor and state alone
  give), and the **training-mean chunk**;
* **F_cross_attention**: F with the ``cross_attention`` fusion instead of ``flat_tokens``, on the
  dynamic task: why the others use ``flat_tokens`` (reported, not a gate or a claim).

All of them are tiny stage-1 policies with the ``flat_tokens`` fusion (``models/fusions``): the
task's answer is *where* the target is, which a content-weighted mean over tokens cannot say.

Validity gates come first: if the task does not make vision necessary (ablated >= 0.8), the
fresh policy cannot read the picture (F at 0 ms <= 0.05) or staleness does not cost (F at 300 ms
>= 2 x F at 0 ms + 0.05), the run says the task is invalid and the claims mean nothing. The
claims: staleness training helps (S at 300 ms <= 0.5 x F at 300 ms), the age input makes the
error flat (A(age) / A(0) <= 1.3 up to 600 ms) and beats staleness training alone (A at 300 ms
<= 0.5 x S at 300 ms); on the static target, where an old picture is still right, F, S and A
must agree within their intervals at every age (the negative control), and vision must matter on
the axes it drives (full vs ablated on x and y).

Errors: MSE normalised by the training recordings' own action std per dimension, all horizon
steps, per held-out episode; intervals: 95 % bootstrap over (training seed, episode) pairs. The
recordings are the same for every seed (one set per task, drawn from ``data_seed``); a seed
changes the network's initialisation, the batches and the drawn ages.

Everything runs through the project's code: bags written by the bag writer, read by
``load_bag_episodes``, the tiny Qwen2.5-VL's features in the on-disk ``VLFeatureCache``, the
``Trainer`` (stage 1) and ``evaluate.predict_episode``.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

LATERAL = 1  # action dimension of y in ee_delta: [x, y, z, rx, ry, rz, tool]
VISION_AXES = (0, 1)  # x and y: where the target is comes only from the picture
POLICIES = ("F", "S", "A", "ablated", "F_cross_attention")
TASKS = ("dynamic", "static")
FUSION = "flat_tokens"


@dataclass(frozen=True)
class StalenessSettings:
    """Sizes of one run (defaults: the benchmark's; the CI test scales them down)."""

    train_episodes: int = 192
    test_episodes: int = 48
    duration: float = 3.0  # s per recording (0.8 s of it before the first action time)
    image_size: int = 140  # px, square world camera
    num_feature_tokens: int = 64
    steps: int = 1500
    batch_size: int = 32
    lr: float = 1e-3
    warmup_steps: int = 50
    seeds: tuple[int, ...] = (0, 1)
    eval_ages_ms: tuple[float, ...] = (0.0, 150.0, 300.0, 450.0, 600.0)
    train_age_ms: tuple[float, float] = (0.0, 700.0)  # TrainConfig's default vl_age_ms
    data_seed: int = 0
    tasks: tuple[str, ...] = TASKS
    policies: tuple[str, ...] = POLICIES
    bootstrap: int = 2000
    cache_batch: int = 16


def policy_overrides(name: str, settings: StalenessSettings) -> dict[str, Any]:
    """The TrainConfig fields that make policy ``name`` (besides its fusion: ``policy_fusion``)."""
    fresh = [0.0, 0.0]
    ranged = [float(a) for a in settings.train_age_ms]
    return {"F": {"vl_age_ms": fresh, "vl_age_input": False},
            "S": {"vl_age_ms": ranged, "vl_age_input": False},
            "A": {"vl_age_ms": ranged, "vl_age_input": True},
            "ablated": {"vl_age_ms": fresh, "vl_age_input": False},
            "F_cross_attention": {"vl_age_ms": fresh, "vl_age_input": False}}[name]


def policy_fusion(name: str) -> str:
    return "cross_attention" if name == "F_cross_attention" else FUSION


def per_episode_nmse(predictions: list[np.ndarray], episodes: list, std: np.ndarray,
                     keep: list[np.ndarray] | None = None) -> np.ndarray:
    """(episodes, A) normalised MSE per episode and action dimension (all horizon steps), over
    the samples ``keep`` of each episode (default: all)."""
    rows = []
    for n, (p, ep) in enumerate(zip(predictions, episodes)):
        sel = slice(None) if keep is None else keep[n]
        diff = (np.asarray(p, np.float64)[sel] - np.asarray(ep.actions, np.float64)[sel]) / std
        rows.append(np.mean(diff ** 2, axis=(0, 1)))
    return np.stack(rows)


def evaluable_samples(episode, max_age_ms: float) -> np.ndarray:
    """Indices of the samples for which the episode holds a frame set ``max_age_ms`` older: the
    same samples at every age, so no age is scored on samples that got fresher features than
    asked for (near a recording's start there are no older frames)."""
    first_ready = episode.frame_set_ready_ns(0)
    limit = first_ready + int(round(max_age_ms * 1e6))
    return np.flatnonzero(np.asarray(episode.times_ns) >= limit)


def bootstrap_mean(values: np.ndarray, draws: int, seed: int = 0) -> dict[str, float]:
    """Mean of ``values`` (seeds x episodes, resampled as pairs) with its 95 % interval."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    rng = np.random.default_rng(seed)
    means = flat[rng.integers(0, flat.size, size=(draws, flat.size))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"mean": float(flat.mean()), "lo": float(lo), "hi": float(hi), "n": int(flat.size)}


def bootstrap_ratio(num: np.ndarray, den: np.ndarray, draws: int, seed: int = 1) -> dict[str, float]:
    """mean(num) / mean(den) over the same (seed, episode) pairs, with its 95 % interval."""
    a = np.asarray(num, dtype=np.float64).reshape(-1)
    b = np.asarray(den, dtype=np.float64).reshape(-1)
    idx = np.random.default_rng(seed).integers(0, a.size, size=(draws, a.size))
    ratios = a[idx].mean(axis=1) / b[idx].mean(axis=1)
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return {"value": float(a.mean() / b.mean()), "lo": float(lo), "hi": float(hi)}


def _entry(value: float, target: str, met: bool, **extra: Any) -> dict[str, Any]:
    value = value if isinstance(value, int) else round(float(value), 4)
    return {"value": value, "target": target, "met": bool(met), **extra}


@dataclass
class TaskData:
    """One task's recordings read as episodes, their VL features, and the run's base config."""

    cfg: Any  # TrainConfig
    train: list
    test: list
    provider: Any  # CachedFeatureProvider
    extractor: Any
    model_id: str
    test_scenes: list


def prepare_task(task: str, settings: StalenessSettings, workdir: Path,
                 lap: Callable[[str], None] = lambda name: None,
                 feedforward: bool = False, reuse: bool = False) -> TaskData:
    """Write the recordings of ``task`` ("dynamic" or "static"), read them and cache their VL
    features with the tiny Qwen2.5-VL. ``reuse``: keep recordings an earlier call with the same
    settings completed in ``workdir`` (``write_tracking_bags``; the model and the feature cache
    are always reused)."""
    from asyncvla_training.data.vl_cache import VLFeatureCache
    from asyncvla_policy.devices import resolve_device
    from asyncvla_training.train.config import TrainConfig
    from asyncvla_training.train.data_sources import load_bag_episodes
    from asyncvla_training.train.features import CachedFeatureProvider
    from asyncvla_training.train.trainer import load_vl_extractor
    from asyncvla_testing.tiny_vlm import ensure_tiny_qwen_vl
    from asyncvla_testing.tracking_task import ALINE_LENGTH, write_tracking_bags

    s = settings
    dynamic = task == "dynamic"
    model = ensure_tiny_qwen_vl(workdir / "tiny_vl")
    size = (s.image_size, s.image_size)
    base_seed = s.data_seed * 10 + (0 if dynamic else 5)
    train_bags = write_tracking_bags(workdir / task / "train", s.train_episodes, base_seed + 1,
                                     dynamic, s.duration, size, prefix="train",
                                     feedforward=feedforward, reuse=reuse)
    test_bags = write_tracking_bags(workdir / task / "test", s.test_episodes, base_seed + 2,
                                    dynamic, s.duration, size, prefix="test",
                                    feedforward=feedforward, reuse=reuse)
    lap("write_bags_s")
    cfg = TrainConfig(
        stage=1, vl_model_path=model, image_width=s.image_size, image_height=s.image_size,
        num_feature_tokens=s.num_feature_tokens, views=["world"], policy_size="tiny",
        dataset={"aline_length": ALINE_LENGTH}, total_steps=s.steps,
        warmup_steps=s.warmup_steps, batch_size=s.batch_size, grad_accum_steps=1, lr=s.lr,
        sensor_lr=s.lr, eval_every=0, save_every=0, log_every=max(1, s.steps // 5),
        device="cpu", val_fraction=0.0)
    train = load_bag_episodes([str(p) for p, _ in train_bags], cfg)
    test = load_bag_episodes([str(p) for p, _ in test_bags], cfg)
    lap("read_bags_s")
    extractor = load_vl_extractor(cfg, resolve_device("cpu"))
    cache = VLFeatureCache(workdir / "vl_cache", extractor, None, progress=False,
                           batch_size=s.cache_batch)
    cache.build(train + test)
    provider = CachedFeatureProvider(cache.lookup, cache.model_id, cache.adapter_id)
    lap("vl_features_s")
    return TaskData(cfg, train, test, provider, extractor, cache.model_id,
                    [scene for _, scene in test_bags])


def train_policy(data: TaskData, name: str, settings: StalenessSettings, seed: int, out_dir: Path,
                 log: Callable[[str], None], **overrides: Any):
    """Train policy ``name`` (``policy_overrides``, ``policy_fusion``; ``overrides`` win) on
    ``data``; returns (loaded policy, final training loss)."""
    from asyncvla_policy.checkpoint import load_policy
    from asyncvla_policy.config import tiny_policy_config
    from asyncvla_training.train.features import ZeroFeatureProvider
    from asyncvla_training.train.trainer import Trainer
    from asyncvla_testing.tracking_task import ALINE_LENGTH

    fields = {**policy_overrides(name, settings), **overrides}
    spec = tiny_policy_config(vl_dim=1, vl_num_tokens=settings.num_feature_tokens,
                              in_channels=1 + ALINE_LENGTH, fusion=policy_fusion(name),
                              vl_age_input=fields["vl_age_input"]).to_dict()
    spec.pop("schema_version")  # (vl_dim and vl_num_tokens come from the VLM's features)
    run_cfg = dataclasses.replace(data.cfg, seed=seed, out_dir=str(out_dir), policy=spec, **fields)
    feats = ZeroFeatureProvider(data.provider) if name == "ablated" else data.provider
    summary = Trainer(run_cfg, data.train, (), feature_provider=feats, log=log,
                      progress=False).train()
    return load_policy(summary["latest"]), summary["final_loss"]


def run_task(task: str, settings: StalenessSettings, workdir: Path,
             log: Callable[[str], None]) -> dict[str, Any]:
    """Write, cache, train and evaluate one task; per-episode errors for every policy and age."""
    import torch

    from asyncvla_training.train.evaluate import predict_episode, stale_inputs
    from asyncvla_training.train.features import ZeroFeatureProvider

    s = settings
    timings: dict[str, float] = {}
    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        timings[name] = round(now - clock[0], 1)
        clock[0] = now

    dynamic = task == "dynamic"
    data = prepare_task(task, s, workdir, lap)
    train, test = data.train, data.test
    std = np.concatenate([np.asarray(ep.actions, np.float64) for ep in train]).std(axis=(0, 1))
    std = np.maximum(std, 1e-9)
    mean_chunk = np.concatenate([np.asarray(ep.actions, np.float64) for ep in train]).mean(axis=0)
    keep = [evaluable_samples(ep, max(s.eval_ages_ms)) for ep in test]
    if any(k.size == 0 for k in keep):
        raise ValueError(f"a {s.duration} s recording has no sample {max(s.eval_ages_ms)} ms "
                         "after its first frame: record longer")
    errors: dict[str, np.ndarray] = {}  # policy -> (seeds, ages, episodes, A)
    losses: dict[str, list[float]] = {}
    for name in s.policies:
        if name == "F_cross_attention" and not dynamic:
            continue  # the fusion comparison is on the task whose answer is where the target is
        per_seed = []
        feats = ZeroFeatureProvider(data.provider) if name == "ablated" else data.provider
        for seed in s.seeds:
            policy, loss = train_policy(data, name, s, seed,
                                        workdir / task / "runs" / f"{name}_seed{seed}", log)
            losses.setdefault(name, []).append(loss)
            with torch.no_grad():
                per_seed.append(np.stack([
                    per_episode_nmse([predict_episode(policy, ep, feats, vl_age_ms=age)
                                      for ep in test], test, std, keep)
                    for age in s.eval_ages_ms]))
            lap(f"train_eval_{name}_seed{seed}_s")
        errors[name] = np.stack(per_seed)
    errors["mean_chunk"] = np.broadcast_to(
        per_episode_nmse([np.broadcast_to(mean_chunk, np.shape(ep.actions)) for ep in test],
                         test, std, keep)[None, None],
        (len(s.seeds), len(s.eval_ages_ms), len(test), std.size))
    given_age = {f"{age:g}": float(np.mean(np.concatenate(
        [stale_inputs(ep, age)[1][k] for ep, k in zip(test, keep)])) * 1e3)
        for age in s.eval_ages_ms}
    return {"errors": errors, "timings_s": timings, "final_train_loss": losses,
            "mean_given_age_ms": given_age, "vl_model_id": data.model_id,
            "samples": {"train": sum(len(e) for e in train),
                        "test_scored": int(sum(k.size for k in keep)),
                        "train_episodes": len(train), "test_episodes": len(test)},
            "lateral_std_m": float(std[LATERAL])}


def summarise(results: dict[str, dict[str, Any]], settings: StalenessSettings) -> dict[str, Any]:
    """Curves with intervals, gates first, then claims (each with value, target, met)."""
    s = settings
    ages = [float(a) for a in s.eval_ages_ms]
    at = {a: k for k, a in enumerate(ages)}
    draws = s.bootstrap

    def lateral(task: str, name: str) -> np.ndarray:  # (ages, seeds*episodes)
        e = results[task]["errors"][name][..., LATERAL]
        return np.moveaxis(e, 1, 0).reshape(len(ages), -1)

    def axes(task: str, name: str, dims: tuple[int, ...]) -> np.ndarray:
        e = results[task]["errors"][name][..., list(dims)].mean(axis=-1)
        return np.moveaxis(e, 1, 0).reshape(len(ages), -1)

    curves = {}
    for task in results:
        curves[task] = {}
        for name in results[task]["errors"]:
            lat = lateral(task, name)
            curves[task][name] = {f"{a:g}": bootstrap_mean(lat[at[a]], draws) for a in ages}
    out: dict[str, Any] = {"curves": curves, "gates": {}, "claims": {}}
    if "dynamic" in results:
        dyn = results["dynamic"]["errors"]
        c = curves["dynamic"]
        gates = out["gates"]
        if "ablated" in dyn:
            v = c["ablated"]["0"]["mean"]
            gates["ablated_twin_at_0ms"] = _entry(v, ">= 0.8", v >= 0.8)
        if "F" in dyn:
            f0, f300 = c["F"]["0"]["mean"], c["F"]["300"]["mean"]
            gates["F_at_0ms"] = _entry(f0, "<= 0.05", f0 <= 0.05)
            gates["F_at_300ms"] = _entry(f300, f">= 2 x F(0) + 0.05 = {2 * f0 + 0.05:.4f}",
                                         f300 >= 2 * f0 + 0.05)
        claims = out["claims"]
        if {"F", "S"} <= set(dyn):
            r = bootstrap_ratio(lateral("dynamic", "S")[at[300.0]], lateral("dynamic", "F")[at[300.0]],
                                draws)
            claims["S_over_F_at_300ms"] = _entry(r["value"], "<= 0.5", r["value"] <= 0.5,
                                                 interval=[r["lo"], r["hi"]])
        if "A" in dyn:
            a_lat = lateral("dynamic", "A")
            worst, ratios = 0.0, {}
            for a in ages:
                r = bootstrap_ratio(a_lat[at[a]], a_lat[at[0.0]], draws)
                ratios[f"{a:g}"] = {"value": round(r["value"], 4), "interval": [r["lo"], r["hi"]]}
                worst = max(worst, r["value"])
            claims["A_age_over_A_0_max"] = _entry(worst, "<= 1.3 at every age up to 600 ms",
                                                  worst <= 1.3, per_age=ratios)
        if {"A", "S"} <= set(dyn):
            r = bootstrap_ratio(lateral("dynamic", "A")[at[300.0]], lateral("dynamic", "S")[at[300.0]],
                                draws)
            claims["A_over_S_at_300ms"] = _entry(r["value"], "<= 0.5", r["value"] <= 0.5,
                                                 interval=[r["lo"], r["hi"]])
    if "static" in results:
        st = results["static"]["errors"]
        c = curves["static"]
        present = [n for n in ("F", "S", "A") if n in st]
        if len(present) > 1:
            apart = []
            for a in ages:
                for i, p in enumerate(present):
                    for q in present[i + 1:]:
                        x, y = c[p][f"{a:g}"], c[q][f"{a:g}"]
                        if x["hi"] < y["lo"] or y["hi"] < x["lo"]:
                            apart.append(f"{p}/{q} at {a:g} ms")
            out["claims"]["static_F_S_A_agree"] = _entry(
                len(apart), "0 pairs whose intervals do not overlap", not apart, apart=apart)
        if {"F", "ablated"} <= set(st):
            r = bootstrap_ratio(axes("static", "F", VISION_AXES)[at[0.0]],
                                axes("static", "ablated", VISION_AXES)[at[0.0]], draws)
            out["claims"]["static_full_over_ablated_xy"] = _entry(
                r["value"], "<= 0.5", r["value"] <= 0.5, interval=[r["lo"], r["hi"]])
    out["task_valid"] = all(g["met"] for g in out["gates"].values()) if out["gates"] else None
    return out


def run_experiment(settings: StalenessSettings, workdir: str | Path,
                   log: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Every task of ``settings``; the JSON-ready result (curves, gates, claims, settings)."""
    from asyncvla_testing.tracking_task import oracle_lateral_nmse

    workdir = Path(workdir)
    results = {task: run_task(task, settings, workdir, log) for task in settings.tasks}
    summary = summarise(results, settings)
    mean_train_age = sum(settings.train_age_ms) / 2e3
    summary.update({
        "settings": dataclasses.asdict(settings),
        "seeds": list(settings.seeds),
        "metric": "lateral (y) MSE normalised by the training recordings' action std, all 8 "
                  "horizon steps, per held-out episode; intervals: 95 % bootstrap over (seed, "
                  "episode) pairs",
        "oracle_lateral_nmse": {
            "F": {f"{a:g}": round(oracle_lateral_nmse(a / 1e3), 4) for a in settings.eval_ages_ms},
            "S": {f"{a:g}": round(oracle_lateral_nmse(a / 1e3, mean_train_age), 4)
                  for a in settings.eval_ages_ms},
            "note": "a perfect reader of the picture, nominal ages (the given ages are a "
                    "little older: a frame set is complete when its newest frame is)"},
        "per_task": {task: {k: v for k, v in r.items() if k != "errors"}
                     for task, r in results.items()},
        "per_dim_nmse_at_0ms": {
            task: {name: np.asarray(r["errors"][name])[:, 0].mean(axis=(0, 1))[:3].round(4).tolist()
                   for name in r["errors"]} for task, r in results.items()},
    })
    return summary


def plot_result(result: dict[str, Any], path: str | Path) -> Path:
    """One PNG: lateral error against VL age with 95 % intervals, dynamic and static task."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    path = Path(path)
    tasks = list(result["curves"])
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.2 * len(tasks), 3.9), squeeze=False)
    labels = {"F": "F: fresh only", "S": "S: staleness, no age", "A": "A: staleness + age",
              "ablated": "VL-ablated twin", "mean_chunk": "training-mean chunk",
              "F_cross_attention": "F, cross_attention fusion"}
    colours = {name: n for n, name in enumerate(labels)}
    for ax, task in zip(axes[0], tasks):
        for name, curve in result["curves"][task].items():
            n = colours.get(name, len(colours))
            ages = [float(a) for a in curve]
            mean = [curve[a]["mean"] for a in curve]
            lo = [curve[a]["lo"] for a in curve]
            hi = [curve[a]["hi"] for a in curve]
            style = "--" if name in ("ablated", "mean_chunk") else "-"
            ax.plot(ages, mean, style, marker="o", color=f"C{n}", label=labels.get(name, name))
            ax.fill_between(ages, lo, hi, color=f"C{n}", alpha=0.15)
        ax.set_xlabel("VL feature age at evaluation (ms)")
        ax.set_ylabel("lateral normalised MSE (held out)")
        ax.set_title(f"{task} target")
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
