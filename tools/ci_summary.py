#!/usr/bin/env python3
"""Turn a `.ci/run` log (pytest's summary line and the shell's `time`) into the JSON the README's
test figures are rendered from (docs/benchmarks/ci_run-<cpu kind>.json).

Usage: (time ./.ci/run) > ci.log 2>&1; python tools/ci_summary.py ci.log --note "quiet" > out.json
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "asyncvla_policy"))


def parse(text: str) -> dict:
    """Counts and times from the log; ValueError when the log has no pytest summary line."""
    summary = re.findall(r"^=*\s*(\d+ (?:passed|failed|errors?)\b.*?) in ([\d.]+)s", text, re.M)
    if not summary:
        raise ValueError("no pytest summary line ('N passed ... in Xs') in the log")
    counts_text, seconds = summary[-1]
    counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|failed|skipped|errors?)",
                                                     counts_text)}
    real = re.findall(r"^real\s+(\d+)m([\d.]+)s", text, re.M)
    total = int(real[-1][0]) * 60 + float(real[-1][1]) if real else None
    return {"passed": counts.get("passed", 0), "failed": counts.get("failed", 0),
            "skipped": counts.get("skipped", 0), "tests_s": float(seconds), "total_s": total}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log")
    ap.add_argument("--note", default="", help="the conditions (quiet, two CPU hogs, ...)")
    args = ap.parse_args(argv)
    try:
        result = parse(Path(args.log).read_text(errors="replace"))
    except (OSError, ValueError) as exc:
        print(f"{args.log}: {exc}", file=sys.stderr)
        return 2
    from asyncvla_policy.cpu_info import cpu_record

    result.update(benchmark="ci_run", command="./.ci/run (fresh clone, install included in total)",
                  note=args.note, date=time.strftime("%Y-%m-%d"), cpu=cpu_record())
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
