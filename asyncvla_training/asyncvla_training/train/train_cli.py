"""``asyncvla-train``: stage 1 / stage 2 training from bags (or generated episodes).

Examples::

    asyncvla-train --stage 1 --bag data/bags --out runs/s1 --vl-cache cache/vl
    torchrun --nproc_per_node 4 -m asyncvla_training.train.train_cli --stage 1 --bag data/bags --out runs/s1
    asyncvla-train --stage 2 --bag data/bags --out runs/s2 --init-from runs/s1/best
    asyncvla-train --out runs/s1 --resume                 # continue where latest/ stopped
    asyncvla-train --config my.json --set lr=3e-4 --set reuse=4 --out runs/x

Precedence: ``--config`` JSON (or ``<out>/train_config.json`` with ``--resume``) < the flags <
``--set key=value`` (value parsed as JSON). Prints one JSON summary line at the end (rank 0).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .config import TRAIN_CONFIG_NAME, TrainConfig


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="asyncvla-train",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="TrainConfig JSON file")
    p.add_argument("--out", help="output directory (checkpoints, log.jsonl, train_config.json)")
    p.add_argument("--stage", type=int, choices=(1, 2))
    p.add_argument(
        "--bag", action="append", default=None, help="rosbag2 directory or folder of bags (repeat)"
    )
    p.add_argument("--val-bag", action="append", default=None, help="validation bag(s) (repeat)")
    p.add_argument("--synthetic", type=int, help="train on N generated episodes instead of bags")
    p.add_argument("--vl-model", help="VL model directory or cached hub id (offline)")
    p.add_argument("--vl-cache", help="stage 1: VL feature cache directory")
    p.add_argument("--init-from", help="policy checkpoint to start from (stage 2: the stage-1 best/)")
    p.add_argument("--prompt", help="task prompt (default: each episode's recorded prompt)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/latest")
    p.add_argument("--stop-at", type=int, help="stop after this optimiser step (resume later)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any TrainConfig key (repeat)",
    )
    return p


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    if args.config:
        cfg = TrainConfig.load(args.config)
    elif args.resume and args.out and (Path(args.out) / TRAIN_CONFIG_NAME).is_file():
        cfg = TrainConfig.load(Path(args.out) / TRAIN_CONFIG_NAME)
    else:
        cfg = TrainConfig()
    flags = {
        "out_dir": args.out,
        "stage": args.stage,
        "bags": args.bag,
        "val_bags": args.val_bag,
        "synthetic_episodes": args.synthetic,
        "vl_model_path": args.vl_model,
        "vl_cache_dir": args.vl_cache,
        "init_from": args.init_from,
        "prompt": args.prompt,
    }
    cfg = cfg.with_overrides({k: v for k, v in flags.items() if v is not None})
    return cfg.with_overrides(args.set)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        cfg = resolve_config(args)
    except (ValueError, OSError) as exc:
        print(f"asyncvla-train: {exc}", file=sys.stderr)
        return 2
    from ..data.errors import BagDataError
    from .data_sources import cache_feature_provider, load_run_episodes
    from .distributed import init_distributed
    from .trainer import Trainer

    dist = init_distributed(cfg.device)
    try:
        try:
            train, val = load_run_episodes(cfg)
        except (BagDataError, ValueError) as exc:  # unreadable bags, too few recordings, ...
            print(f"asyncvla-train: {exc}", file=sys.stderr)
            return 2
        provider = None
        if cfg.stage == 1 and cfg.vl_cache_dir:
            if cfg.vl_cache_fill and dist.distributed:
                raise ValueError(
                    "vl_cache_fill works in a single process: build the cache with "
                    "asyncvla-cache-vl first, then train with torchrun"
                )
            provider = cache_feature_provider(cfg, train + val)
        trainer = Trainer(cfg, train, val, feature_provider=provider, dist=dist)
        summary = trainer.train(resume=args.resume, stop_at=args.stop_at)
        if dist.is_main:
            print(json.dumps({"event": "done", **summary}, sort_keys=True), flush=True)
    finally:
        dist.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
