#!/usr/bin/env python3
"""Benchmark: fault detection and recovery times of the live pipeline, as the fault-injection and
rogue-publisher tests measure them, kept as one JSON run (asyncvla_action_node/SAFETY.md quotes it).

Runs the tests given (default: asyncvla_action_node/test/test_fault_injection.py and
test_rogue_publishers.py: separate processes over loopback DDS, each fault or rogue injected
into the running pipeline) with ``pytest -s`` and collects what they print: one ``FAULT {...}``
JSON line per injected fault (detection, last chunk during the fault, its bound, recovery), the
operator path's ``FAULT`` line (enable, e-stop, kills), one ``ROGUE {...}`` line per rogue
publisher. The tests' own assertions (no chunk past a bound, recovery within its limit) decide
pass or fail; the outcome per test file is in the JSON, and the exit status is 1 when a test
failed (the JSON is still written). One JSON object on stdout (and in ``--out``), with the CPU,
date and command (tools/bench/run_record.py).

Usage: flock /tmp/asyncvla-cpu.lock python tools/bench/bench_fault_recovery.py \
           --out docs/benchmarks/fault_recovery-<cpu kind>.json
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from run_record import emit, run_record  # noqa: E402

TESTS = ["asyncvla_action_node/test/test_fault_injection.py",
         "asyncvla_action_node/test/test_rogue_publishers.py"]
LINE = re.compile(r"(FAULT|ROGUE) (\{.*\})\s*$")
OUTCOME = re.compile(r"(\d+) (passed|failed|skipped|error|errors)\b")


def collect(output: str) -> dict[str, list[dict]]:
    """The FAULT and ROGUE JSON lines of a pytest -s output."""
    found: dict[str, list[dict]] = {"faults": [], "operator_path": [], "rogues": []}
    for line in output.splitlines():
        m = LINE.search(line)
        if not m:
            continue
        record = json.loads(m.group(2))
        if m.group(1) == "ROGUE":
            found["rogues"].append(record)
        elif "fault" in record:
            found["faults"].append(record)
        else:
            found["operator_path"].append(record)
    return found


def outcome(output: str) -> dict[str, int]:
    tail = output.strip().splitlines()[-1] if output.strip() else ""
    counts = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0}
    for n, word in OUTCOME.findall(tail):
        counts["errors" if word.startswith("error") else word] += int(n)
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tests", nargs="*", default=TESTS, help="test files (repository paths)")
    parser.add_argument("--out", help="also write the JSON object to this file")
    args = parser.parse_args()
    for test in args.tests:
        if not os.path.isfile(os.path.join(ROOT, test)):
            parser.error(f"no test file {test}")
    result: dict = {"faults": [], "operator_path": [], "rogues": [], "tests": {}}
    for test in args.tests:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-s", "-q", "-p",
                               "no:cacheprovider", test], cwd=ROOT, capture_output=True,
                              text=True)
        output = proc.stdout + proc.stderr
        for key, records in collect(output).items():
            result[key] += records
        result["tests"][test] = {**outcome(proc.stdout), "exit_status": proc.returncode}
        print(f"{test}: exit {proc.returncode}", file=sys.stderr, flush=True)
    failed = any(t["exit_status"] != 0 for t in result["tests"].values())
    emit({**run_record("fault_recovery"), **result}, args.out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
