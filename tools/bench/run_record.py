"""What every benchmark's JSON says about its run, and the one way to summarise samples.

``run_record(benchmark)``: the benchmark's name, the CPU (``asyncvla_policy.cpu_info``: model,
kind, SIMD flags, cores), the UTC date and time, the command as typed from the repository root,
and the 1-minute load average when the record is made (make it at the end of the run).
``summary(samples)``: p50 / p99 / max with the sample count ``n`` (tools/docs_tables.py prints a
tail over fewer than 100 samples as max). ``emit(result, out)``: one JSON object on stdout, and
the same object in ``out`` when given (``--out FILE``; the docs' runs live in docs/benchmarks/).
"""
from __future__ import annotations

import datetime
import json
import os
import sys
from typing import Any, Iterable

import numpy as np

from asyncvla_policy.cpu_info import cpu_record


def run_record(benchmark: str, argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv if argv is None else argv
    script = os.path.relpath(os.path.abspath(argv[0]),
                             os.path.dirname(os.path.dirname(os.path.dirname(
                                 os.path.abspath(__file__)))))
    args = [a for a in argv[1:]]
    if "--out" in args:  # where the run was written is not part of what was measured
        i = args.index("--out")
        del args[i:i + 2]
    return {"benchmark": benchmark, "cpu": cpu_record(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": " ".join(["python", script, *args]),
            "load_avg_1m": round(os.getloadavg()[0], 2)}


def summary(samples: Iterable[float], digits: int = 3) -> dict[str, float | int | None]:
    """p50 / p99 / max of ``samples`` (in the unit given) and their count ``n``."""
    v = np.asarray(list(samples), dtype=float)
    if v.size == 0:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    return {"n": int(v.size), "p50": round(float(np.percentile(v, 50)), digits),
            "p99": round(float(np.percentile(v, 99)), digits),
            "max": round(float(v.max()), digits)}


def emit(result: dict[str, Any], out: str | None) -> None:
    text = json.dumps(result, indent=1)
    if out:
        try:
            with open(out, "w") as f:
                f.write(text + "\n")
        except OSError as exc:
            print(f"--out {out}: {exc.strerror}", file=sys.stderr)
            sys.exit(2)
    print(text)
