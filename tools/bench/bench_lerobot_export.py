"""Time and peak memory of the LeRobot export CLI (bags -> dataset), in a fresh process.

    python tools/bench/bench_lerobot_export.py BAGS_DIR [--make 3x25.5] [--module MOD] [--out F]

``--make NxSECONDS`` first writes N synthetic bags of SECONDS each (5 views at 640x360, 15 FPS,
650 Hz force/OCT, 100 Hz robot) under BAGS_DIR. Prints one JSON line: seconds (wall, whole CLI
including reading the bags), peak_rss_mb (ru_maxrss of the export process), samples, with the CPU,
date and command (tools/bench/run_record.py); ``--out`` writes the object to a file too.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/: asyncvla_testing
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tools/bench: run_record
from run_record import emit, run_record  # noqa: E402

CHILD = """
import json, resource, sys, time
sys.argv = ["export"] + sys.argv[1:]
import importlib
module = importlib.import_module({module!r})
started = time.perf_counter()
rc = module.main(sys.argv[1:])
print(json.dumps({{"rc": rc, "seconds": round(time.perf_counter() - started, 2),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}}),
      file=sys.stderr)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bags")
    parser.add_argument("--make", default="", help="NxSECONDS: write N synthetic bags first")
    parser.add_argument("--module", default="asyncvla_training.data.lerobot_export")
    parser.add_argument("--out", help="also write the JSON object to this file")
    args = parser.parse_args()
    if args.make and not re_make(args.make):
        parser.error("--make must be NxSECONDS, e.g. 3x25.5")
    bags = Path(args.bags)
    if args.make:
        from asyncvla_testing.synthetic_bag import SyntheticBagSpec, write_synthetic_bag

        count, seconds = args.make.split("x")
        for b in range(int(count)):
            write_synthetic_bag(bags / f"run{b}", "mcap", SyntheticBagSpec(
                duration=float(seconds), views=("view1", "view2", "view3", "view4", "view5"),
                image_size=(640, 360), start_ns=1_700_000_000_000_000_000 + b * 100_000_000_000))
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", CHILD.format(module=args.module), str(bags),
                                 "--output", f"{tmp}/ds", "--no-progress"],
                                capture_output=True, text=True)
        wall = time.perf_counter() - started
        if result.returncode != 0:
            print(result.stderr[-2000:], file=sys.stderr)
            return 1
        child = json.loads(result.stderr.strip().splitlines()[-1])
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        size = sum(p.stat().st_size for p in Path(tmp, "ds").rglob("*") if p.is_file())
    emit({**run_record("lerobot_export"), **child, "process_seconds": round(wall, 2),
          "samples": summary["samples"], "episodes": summary["episodes"],
          "dataset_mb": round(size / 2**20), "bags": args.make or str(bags)}, args.out)
    return 0


def re_make(text: str) -> bool:
    import re
    return re.fullmatch(r"[1-9][0-9]*x[0-9]+(\.[0-9]+)?", text) is not None


if __name__ == "__main__":
    sys.exit(main())
