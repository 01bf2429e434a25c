"""``asyncvla-eval``: run a policy checkpoint over episodes; metrics.json + PNG plots.

Examples::

    asyncvla-eval --checkpoint runs/s1/best --bag data/val_bags --out runs/s1/eval
    asyncvla-eval --checkpoint runs/s2/best --bag data/val_bags --out runs/s2/eval_age \
        --vl-ages-ms 0,150,300,450,600

VL features are extracted with the model and adapter named in the checkpoint metadata
(``vl_config``; the adapter directory is relative to the checkpoint), or read from ``--vl-cache``
(stage 1). The extractor's model id must equal the checkpoint's ``vl_model_id``, as the action
node requires. Prints one JSON summary line. Bad input (a broken bag, a cache without the needed
features, a checkpoint not written by asyncvla-train) is one line on stderr naming the file and
the fix, exit 2, before anything is written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..cli_errors import CliError, run_cli

PROG = "asyncvla-eval"
SKIP_HINT = "fix or remove that recording, or pass --skip-errors to leave unusable bags out"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="asyncvla-eval",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--checkpoint", required=True, help="policy checkpoint directory (best/ or latest/)")
    p.add_argument("--out", required=True, help="directory for metrics.json and the plots")
    p.add_argument(
        "--bag", action="append", default=None, help="rosbag2 directory or folder of bags (repeat)"
    )
    p.add_argument("--synthetic", type=int, help="evaluate on N generated episodes")
    p.add_argument("--synthetic-seed", type=int, default=1000, help="seed of the generated episodes")
    p.add_argument("--synthetic-length", type=int, default=40)
    p.add_argument("--vl-model", help="override the VL model path of the checkpoint metadata")
    p.add_argument("--vl-cache", help="read stage-1 VL features from this cache instead of extracting")
    p.add_argument("--vl-ages-ms", default="0", type=_ages,
                   help="comma-separated VL ages (ms) to evaluate at: the features of the frame "
                        "set that much older, the age given to the policy; metrics at the first, "
                        "the error at each in by_vl_age (default 0)")
    p.add_argument("--max-plots", type=int, default=4, help="episodes to plot")
    p.add_argument("--device", default="auto")
    p.add_argument("--skip-errors", action="store_true",
                   help="skip bags that cannot be used instead of stopping")
    return p


def _ages(text: str) -> list[float]:
    try:
        ages = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        ages = []
    if not ages or any(not a >= 0 for a in ages):
        raise argparse.ArgumentTypeError(f"expected ages >= 0 in ms like 0,300,600, got {text!r}")
    return ages


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ..data.errors import BagDataError

    return run_cli(PROG, lambda: _run(args), hints={BagDataError: SKIP_HINT})


def _run(args: argparse.Namespace) -> int:
    from asyncvla_policy.checkpoint import CheckpointError, load_policy, read_checkpoint_config
    from asyncvla_policy.config import VLConfig
    from .config import TrainConfig
    from .data_sources import cache_feature_provider, load_bag_episodes, synthetic_episodes
    from .evaluate import evaluate
    from .features import ExtractorFeatureProvider

    ckpt = Path(args.checkpoint)
    _, meta = read_checkpoint_config(ckpt)
    for key in ("action_space", "step_period", "vl_model_id", "vl_config", "train_config"):
        if key not in meta:
            raise CheckpointError(
                f"{ckpt}: metadata has no {key!r}: give a checkpoint written by asyncvla-train"
            )
    if not args.synthetic and not args.bag:
        raise CliError("nothing to evaluate: give --bag DIR or --synthetic N")
    policy = load_policy(ckpt, device=args.device)
    try:
        run_cfg = TrainConfig.from_dict(meta["train_config"])
    except ValueError as exc:
        raise CheckpointError(f"{ckpt}: train_config in the metadata is invalid ({exc})") from exc
    overrides = {"skip_bad_bags": True} if args.skip_errors else {}
    if args.vl_cache:
        overrides["vl_cache_dir"] = args.vl_cache
    run_cfg = run_cfg.with_overrides(overrides)
    if args.synthetic:
        episodes = synthetic_episodes(args.synthetic, args.synthetic_length, args.synthetic_seed, run_cfg)
    else:
        shapes = {"horizon": policy.cfg.horizon, "sensor_window": policy.cfg.sensor.window}
        try:
            episodes = load_bag_episodes(args.bag, run_cfg, shapes)
        except ValueError as exc:  # the checkpoint's dataset settings contradict the policy
            raise CliError(f"{ckpt}: {exc}") from exc
    if not episodes:
        raise CliError(f"no usable episode in {', '.join(args.bag)}")
    if args.vl_cache:
        provider = cache_feature_provider(
            run_cfg, episodes, model_id=meta["vl_model_id"], adapter_id=meta.get("vl_adapter_id") or ""
        )
    else:
        from asyncvla_policy.vl_extractor import VLFeatureExtractor

        vl_cfg = VLConfig.from_dict(meta["vl_config"])
        if args.vl_model:
            vl_cfg.model_path = args.vl_model
        if vl_cfg.adapter_path and not Path(vl_cfg.adapter_path).is_absolute():
            vl_cfg.adapter_path = str(ckpt / vl_cfg.adapter_path)
        extractor = VLFeatureExtractor.from_vl_config(vl_cfg, device=policy.device)
        provider = ExtractorFeatureProvider(extractor, prompt=run_cfg.prompt)
    if provider.model_id != meta["vl_model_id"]:
        raise CliError(
            f"VL features come from {provider.model_id!r} but the checkpoint {ckpt} was "
            f"trained on {meta['vl_model_id']!r}: evaluate with the checkpoint's VL model "
            "(drop --vl-model) or a cache built with it"
        )
    metrics = evaluate(
        policy,
        episodes,
        provider,
        args.out,
        meta["action_space"],
        vl_ages_ms=args.vl_ages_ms,
        max_plots=args.max_plots,
        extra={
            "checkpoint": str(ckpt),
            "vl_model_id": meta["vl_model_id"],
            "vl_adapter_id": meta.get("vl_adapter_id", ""),
            "stage": meta.get("stage"),
            "episodes": [ep.name for ep in episodes],
        },
    )
    summary = {
        k: metrics[k] for k in ("num_samples", "normalized_mse", "baseline_normalized_mse", "mae", "rmse")
    }
    summary["by_vl_age"] = {f"{row['vl_age_ms']:g}": round(row["normalized_mse"], 6)
                            for row in metrics["by_vl_age"]}
    print(json.dumps({"event": "eval", "out": str(args.out), **summary}, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
