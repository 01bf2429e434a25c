#!/usr/bin/env python3
"""Render the docs' measured tables from the committed benchmark runs in docs/benchmarks/.

Why: a figure typed by hand drifts from the run it came from. Every measured table in a Markdown
file sits between ``<!-- table: NAME -->`` and ``<!-- /table -->``; NAME is a renderer below,
which reads its JSON run(s) from docs/benchmarks/ and returns the table. ``--write`` rewrites the
tables in place; without it the script exits 1 (and says where) when a table differs from its
run, which is what asyncvla_common/test/test_docs_tables.py checks in CI.

Usage: python tools/docs_tables.py [--write] [FILE.md ...]   (default: every tracked *.md)
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "docs" / "benchmarks"
BLOCK = re.compile(r"(<!-- table: (?P<name>[a-z0-9_:.-]+) -->\n)(?P<body>.*?)(<!-- /table -->)",
                   re.DOTALL)


def load(name: str) -> dict:
    return json.loads((BENCHMARKS / name).read_text())


def _fmt(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}"


def _interval(entry: dict) -> str:
    return f"{_fmt(entry['mean'])} [{_fmt(entry['lo'])}, {_fmt(entry['hi'])}]"


def staleness_curves(task: str) -> Callable[[], str]:
    def render() -> str:
        run = load("staleness.json")
        curves = run["curves"][task]
        ages = list(next(iter(curves.values())))
        names = {"F": "F: fresh only", "S": "S: ages 0-700 ms, no age input",
                 "A": "A: ages 0-700 ms + age input", "F_cross_attention":
                 "F, `cross_attention` fusion", "ablated": "VL-ablated twin",
                 "mean_chunk": "training-mean chunk"}
        head = "| lateral NMSE, mean [95 % interval] | " + " | ".join(f"{a} ms" for a in ages) + " |"
        rows = [head, "| --- |" + " --- |" * len(ages)]
        for key, label in names.items():
            if key in curves:
                rows.append(f"| {label} | " + " | ".join(_interval(curves[key][a]) for a in ages)
                            + " |")
        n = next(iter(curves.values()))[ages[0]]["n"]
        rows.append("")
        rows.append(f"({n} (seed, held-out episode) pairs per cell; run: "
                    f"`docs/benchmarks/staleness.json`, {run['machine']['date']}, "
                    f"{run['machine']['wall_s'] / 60:.0f} min on {run['machine']['cpu_count']} "
                    "CPU cores.)")
        return "\n".join(rows) + "\n"
    return render


def staleness_verdicts() -> str:
    run = load("staleness.json")
    rows = ["| check | value | target | met |", "| --- | --- | --- | --- |"]
    for group in ("gates", "claims"):
        for name, entry in run[group].items():
            value = entry["value"]
            interval = entry.get("interval")
            shown = str(value) if isinstance(value, int) else _fmt(value)
            if interval:
                shown += f" [{_fmt(interval[0])}, {_fmt(interval[1])}]"
            rows.append(f"| {group[:-1]}: `{name}` | {shown} | {entry['target']} | "
                        f"{'yes' if entry['met'] else '**no**'} |")
    return "\n".join(rows) + "\n"


RENDERERS: dict[str, Callable[[], str]] = {
    "staleness-dynamic": staleness_curves("dynamic"),
    "staleness-static": staleness_curves("static"),
    "staleness-verdicts": staleness_verdicts,
}


def markdown_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True)
    return [ROOT / line for line in out.stdout.split()]


def check(path: Path, write: bool) -> list[str]:
    """Differences between ``path``'s tables and their runs (rewritten when ``write``)."""
    text = path.read_text()
    problems: list[str] = []

    def replace(match: re.Match) -> str:
        name = match.group("name")
        if name not in RENDERERS:
            problems.append(f"{path.relative_to(ROOT)}: unknown table {name!r}")
            return match.group(0)
        want = RENDERERS[name]()
        if match.group("body") != want:
            problems.append(f"{path.relative_to(ROOT)}: table {name!r} "
                            + ("rewritten from its run" if write else
                               "differs from its run (python tools/docs_tables.py --write)"))
        return match.group(1) + want + match.group(4)

    new = BLOCK.sub(replace, text)
    if write and new != text:
        path.write_text(new)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the tables in place")
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args(argv)
    problems = []
    for path in args.files or markdown_files():
        problems += check(path.resolve(), args.write)
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems and not args.write else 0


if __name__ == "__main__":
    sys.exit(main())
