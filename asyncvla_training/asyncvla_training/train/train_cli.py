"""``asyncvla-train``: stage 1 / stage 2 training from bags (or generated episodes).

Examples::

    asyncvla-train --stage 1 --bag data/bags --out runs/s1 --vl-cache cache/vl
    torchrun --nproc_per_node 4 -m asyncvla_training.train.train_cli --stage 1 --bag data/bags --out runs/s1
    asyncvla-train --stage 2 --bag data/bags --out runs/s2 --init-from runs/s1/best
    asyncvla-train --out runs/s1 --resume                 # continue where latest/ stopped
    asyncvla-train --config my.json --set lr=3e-4 --set reuse=4 --out runs/x

Precedence: ``--config`` JSON (or ``<out>/train_config.json`` with ``--resume``) < the flags <
``--set key=value`` (value parsed as JSON). Prints one JSON summary line at the end (rank 0).
Bad input (a broken bag, a cache without the needed features, an ``--out`` that already holds a
run) is one line on stderr naming the file and the fix, exit 2, before anything is written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..cli_errors import CliError, run_cli
from .config import TRAIN_CONFIG_NAME, TrainConfig

PROG = "asyncvla-train"
SKIP_HINT = "fix or remove that recording, or pass --skip-errors to leave unusable bags out"


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
    p.add_argument("--skip-errors", action="store_true",
                   help="skip bags that cannot be used instead of stopping (skip_bad_bags)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any TrainConfig key (repeat)",
    )
    return p


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """The run's config from ``--config`` / ``<out>/train_config.json``, the flags and ``--set``."""
    try:
        return _resolve_config(args)
    except (ValueError, OSError) as exc:
        source = args.config or (Path(args.out) / TRAIN_CONFIG_NAME if args.resume and args.out else None)
        where = f"{source}: " if source and str(source) not in str(exc) else ""
        raise CliError(f"{where}{exc} (fix the file, --set KEY=VALUE or the option)") from exc


def _resolve_config(args: argparse.Namespace) -> TrainConfig:
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
        "skip_bad_bags": True if args.skip_errors else None,
    }
    cfg = cfg.with_overrides({k: v for k, v in flags.items() if v is not None})
    return cfg.with_overrides(args.set)


def check_output(cfg: TrainConfig, resume: bool) -> None:
    """Refuse, before loading anything, an ``--out`` that cannot be used as asked."""
    latest = Path(cfg.out_dir) / "latest"
    if resume and not latest.is_dir():
        raise CliError(f"{latest} does not exist: nothing to resume; start the run without --resume")
    if not resume and latest.exists():
        raise CliError(
            f"{latest} exists: continue that run with --out {cfg.out_dir} --resume, "
            "or choose another --out"
        )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ..data.errors import BagDataError

    return run_cli(PROG, lambda: _run(args), hints={BagDataError: SKIP_HINT})


def _run(args: argparse.Namespace) -> int:
    cfg = resolve_config(args)
    check_output(cfg, args.resume)
    from .data_sources import cache_feature_provider, load_run_episodes
    from .distributed import init_distributed
    from .checkpointing import ResumeError
    from .trainer import Trainer

    dist = init_distributed(cfg.device)
    try:
        try:
            train, val = load_run_episodes(cfg)
        except ValueError as exc:  # too few recordings, contradicting dataset settings, ...
            raise CliError(f"{exc} (fix the options or --set dataset=...)") from exc
        provider = None
        if cfg.stage == 1 and cfg.vl_cache_dir:
            if cfg.vl_cache_fill and dist.distributed:
                raise CliError(
                    "vl_cache_fill works in a single process: build the cache with "
                    "asyncvla-cache-vl first, then train with torchrun"
                )
            provider = cache_feature_provider(cfg, train + val, fill_option="--set vl_cache_fill=true")
        try:
            trainer = Trainer(cfg, train, val, feature_provider=provider, dist=dist)
        except ValueError as exc:  # episodes that do not fit the run's settings
            raise CliError(str(exc)) from exc
        try:
            summary = trainer.train(resume=args.resume, stop_at=args.stop_at)
        except ResumeError as exc:
            raise CliError(f"{exc}: resume with the run's settings and number of processes, "
                           "or start a new --out") from exc
        if dist.is_main:
            print(json.dumps({"event": "done", **summary}, sort_keys=True), flush=True)
    finally:
        dist.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
