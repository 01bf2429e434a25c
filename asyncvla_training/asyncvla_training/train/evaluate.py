"""Offline evaluation of a policy checkpoint over episodes: errors in physical units + plots.

For every sample the policy gets what the action node would give it: the sensor window and robot
state of the sample and the VL features of the frame set the VLM would have used ``vl_age_ms``
earlier (``Episode.stale_frame_set``; 0 = the newest frame set at the sample), with the age the
node would compute. Predictions are compared with the recorded chunk:

* MAE / RMSE per action dimension (metres, radians, tool units - ``conventions.ACTION_SPACES``),
  per horizon step (H x A) and per episode;
* the loss the trainer minimises (MSE in the policy's normalised space), for comparison with the
  training log;
* a baseline that always predicts the training-set mean chunk (what an input-blind policy scores);
* the error against the VL age, when several ages are asked for (``by_vl_age``).

Plots (matplotlib, Agg backend, PNG): per episode one panel per action dimension with the recorded
and predicted offsets over time for the first and last horizon step; one figure with MAE per
horizon step and dimension.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from asyncvla_core.conventions import ACTION_SPACES
from ..data.episode import Episode
from asyncvla_policy.policy import ActionPolicy
from .features import FeatureProvider
from .progress import progress_bar

METRICS_NAME = "metrics.json"


def stale_inputs(episode: Episode, vl_age_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """(N,) frame set and (N,) VL age in seconds of each sample when the VLM's features are
    ``vl_age_ms`` old: what the action node would act on (``Episode.stale_frame_set``)."""
    age_ns = int(round(float(vl_age_ms) * 1e6))
    picked = [episode.stale_frame_set(i, age_ns) for i in range(len(episode))]
    sets = np.array([s for s, _ in picked], dtype=np.int64)
    ages = np.array([a / 1e9 for _, a in picked], dtype=np.float64)
    return sets, ages


@torch.no_grad()
def predict_episode(
    policy: ActionPolicy, episode: Episode, provider: FeatureProvider, vl_age_ms: float = 0.0,
    batch_size: int = 32,
) -> np.ndarray:
    """(N, H, A) predicted chunks in physical units (policy in eval mode), with VL features
    ``vl_age_ms`` old (and that age given to a policy that takes it)."""
    if not vl_age_ms >= 0:
        raise ValueError(f"vl_age_ms must be >= 0, got {vl_age_ms}")
    was_training = policy.training
    policy.eval()
    dev = policy.device
    sets, ages = stale_inputs(episode, vl_age_ms)
    out = []
    try:
        for start in range(0, len(episode), batch_size):
            idx = range(start, min(len(episode), start + batch_size))
            vl = np.stack([np.asarray(provider(episode, int(sets[i])), dtype=np.float32)
                           for i in idx])
            windows = np.stack([np.asarray(episode.sensor_windows[i], dtype=np.float32) for i in idx])
            states = np.asarray(episode.states[start : start + len(idx)], dtype=np.float32)
            pred = policy(
                torch.from_numpy(vl).to(dev),
                torch.from_numpy(windows).to(dev),
                torch.from_numpy(states).to(dev),
                vl_age=torch.from_numpy(ages[start:start + len(idx)].astype(np.float32)).to(dev),
            )
            out.append(pred.float().cpu().numpy())
    finally:
        policy.train(was_training)
    return np.concatenate(out, axis=0)


def per_dim_normalized_mse(policy: ActionPolicy, episodes: Sequence[Episode],
                           predictions: Sequence[np.ndarray]) -> np.ndarray:
    """(A,) MSE per action dimension in the policy's normalised units, all horizon steps."""
    target = np.concatenate([np.asarray(ep.actions, dtype=np.float64) for ep in episodes])
    pred = np.concatenate(predictions).astype(np.float64)
    std = policy.action_std.cpu().numpy().astype(np.float64)
    return np.mean(((pred - target) / std) ** 2, axis=(0, 1))


def _errors(pred: np.ndarray, target: np.ndarray) -> dict[str, np.ndarray]:
    diff = pred.astype(np.float64) - target.astype(np.float64)
    return {"mae": np.abs(diff), "se": np.square(diff)}


def compute_metrics(
    policy: ActionPolicy, episodes: Sequence[Episode], predictions: Sequence[np.ndarray], action_space: str
) -> dict[str, Any]:
    """Error summary (JSON-ready) of ``predictions`` against the episodes' recorded chunks."""
    names = list(ACTION_SPACES[action_space])[: policy.cfg.action_dim]
    preds = np.concatenate(predictions, axis=0)
    targets = np.concatenate([np.asarray(ep.actions, dtype=np.float32) for ep in episodes], axis=0)
    err = _errors(preds, targets)
    mean_chunk = np.broadcast_to(policy.action_mean.cpu().numpy(), targets.shape)
    base = _errors(mean_chunk, targets)
    std = policy.action_std.cpu().numpy().astype(np.float64)
    normalized_mse = float(np.mean(err["se"] / np.square(std)))
    baseline_normalized_mse = float(np.mean(base["se"] / np.square(std)))
    mae_dim = err["mae"].mean(axis=(0, 1))
    rmse_dim = np.sqrt(err["se"].mean(axis=(0, 1)))
    per_dim = {
        name: {
            "mae": float(mae_dim[d]),
            "rmse": float(rmse_dim[d]),
            "baseline_mae": float(base["mae"].mean(axis=(0, 1))[d]),
            "baseline_rmse": float(np.sqrt(base["se"].mean(axis=(0, 1)))[d]),
            "target_std": float(targets[..., d].std()),
        }
        for d, name in enumerate(names)
    }
    per_episode = {}
    for ep, pred in zip(episodes, predictions):
        e = _errors(pred, np.asarray(ep.actions, dtype=np.float32))
        per_episode[ep.name] = {
            "samples": len(ep),
            "mae": e["mae"].mean(axis=(0, 1)).tolist(),
            "rmse": np.sqrt(e["se"].mean(axis=(0, 1))).tolist(),
        }
    return {
        "num_samples": int(preds.shape[0]),
        "num_episodes": len(episodes),
        "action_space": action_space,
        "dim_names": names,
        "horizon": int(preds.shape[1]),
        "normalized_mse": normalized_mse,
        "baseline_normalized_mse": baseline_normalized_mse,
        "per_dim": per_dim,
        "mae": mae_dim.tolist(),
        "rmse": rmse_dim.tolist(),
        "per_horizon_mae": err["mae"].mean(axis=0).tolist(),
        "per_horizon_rmse": np.sqrt(err["se"].mean(axis=0)).tolist(),
        "per_episode": per_episode,
    }


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_episode(episode: Episode, pred: np.ndarray, names: Sequence[str], path: str | Path) -> Path:
    """One panel per action dim: recorded vs predicted offset, first and last horizon step."""
    plt = _pyplot()
    path = Path(path)
    t = (np.asarray(episode.times_ns) - episode.times_ns[0]) * 1e-9
    actions = np.asarray(episode.actions)
    horizon = actions.shape[1]
    dims = len(names)
    cols = 2
    rows = (dims + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(12, 2.6 * rows), sharex=True, squeeze=False)
    for d, name in enumerate(names):
        ax = axes[d // cols][d % cols]
        ax.plot(t, actions[:, 0, d], color="tab:blue", lw=1.5, label="recorded, step 1")
        ax.plot(t, pred[:, 0, d], color="tab:orange", lw=1.2, label="predicted, step 1")
        ax.plot(
            t,
            actions[:, -1, d],
            color="tab:blue",
            lw=1.0,
            ls="--",
            alpha=0.7,
            label=f"recorded, step {horizon}",
        )
        ax.plot(
            t,
            pred[:, -1, d],
            color="tab:orange",
            lw=1.0,
            ls="--",
            alpha=0.7,
            label=f"predicted, step {horizon}",
        )
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    for d in range(dims, rows * cols):
        axes[d // cols][d % cols].axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("time in episode (s)")
    axes[0][0].legend(fontsize=7, loc="best")
    fig.suptitle(f"{episode.name}: chunk offsets, recorded vs predicted")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_horizon_errors(metrics: dict[str, Any], path: str | Path) -> Path:
    """MAE per horizon step, one line per action dimension (log scale: units differ)."""
    plt = _pyplot()
    path = Path(path)
    mae = np.asarray(metrics["per_horizon_mae"])
    steps = np.arange(1, mae.shape[0] + 1)
    fig, ax = plt.subplots(figsize=(7, 4))
    for d, name in enumerate(metrics["dim_names"]):
        ax.plot(steps, np.maximum(mae[:, d], 1e-12), marker="o", label=name)
    ax.set_yscale("log")
    ax.set_xlabel("horizon step")
    ax.set_ylabel("MAE (dimension's unit)")
    ax.set_title(f"MAE per horizon step ({metrics['num_samples']} samples)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def evaluate(
    policy: ActionPolicy,
    episodes: Sequence[Episode],
    provider: FeatureProvider,
    out_dir: str | Path,
    action_space: str,
    vl_ages_ms: Sequence[float] = (0.0,),
    max_plots: int = 4,
    extra: dict[str, Any] | None = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Predict, score and plot; writes ``metrics.json`` and PNGs to ``out_dir``; returns the metrics.

    The metrics and plots are those at the first of ``vl_ages_ms``; ``by_vl_age`` has the
    normalised error (whole chunk and per dimension) at each, with the mean age the policy was
    given (a little above the one asked for: a frame set is complete when its newest frame is).
    ``progress``: a tqdm bar over the samples on stderr; None = only when it is a terminal.
    """
    if not episodes:
        raise ValueError("no episodes to evaluate")
    ages = [float(a) for a in vl_ages_ms]
    if not ages or any(not a >= 0 for a in ages):
        raise ValueError(f"vl_ages_ms must be ages >= 0 ms, got {list(vl_ages_ms)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bar = progress_bar(len(ages) * sum(len(ep) for ep in episodes), "eval", "sample",
                       enabled=progress)
    by_age = {}
    try:
        for age in ages:
            predictions = []
            for ep in episodes:
                predictions.append(predict_episode(policy, ep, provider, vl_age_ms=age))
                if bar is not None:
                    bar.update(len(ep))
            by_age[age] = predictions
    finally:
        if bar is not None:
            bar.close()
    predictions = by_age[ages[0]]
    metrics = compute_metrics(policy, episodes, predictions, action_space)
    metrics["vl_age_ms"] = ages[0]
    metrics["by_vl_age"] = [
        {"vl_age_ms": age,
         "mean_given_age_ms": float(np.mean(np.concatenate(
             [stale_inputs(ep, age)[1] for ep in episodes])) * 1e3),
         "normalized_mse": float(np.mean(per_dim_normalized_mse(policy, episodes, preds))),
         "per_dim_normalized_mse": per_dim_normalized_mse(policy, episodes, preds).tolist()}
        for age, preds in by_age.items()]
    metrics.update(extra or {})
    plots = [plot_horizon_errors(metrics, out_dir / "error_by_horizon.png")]
    for ep, pred in list(zip(episodes, predictions))[: max(0, max_plots)]:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in ep.name)
        plots.append(plot_episode(ep, pred, metrics["dim_names"], out_dir / f"episode_{safe}.png"))
    metrics["plots"] = [p.name for p in plots]
    (out_dir / METRICS_NAME).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return metrics
