"""The docs' benchmark tables are the committed runs' numbers (tools/bench/render_tables.py).

Every table between ``<!-- bench-table: docs/benchmarks/X.json -->`` markers in the README,
TIMING.md and ROBOT_PC.md must be exactly what the renderer makes of X.json, every committed run
must be quoted by some doc, and its file name must end with the CPU kind recorded in it (one table
per CPU kind). A figure edited by hand, or a JSON replaced without re-rendering, fails here.
"""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "bench"))
import render_tables  # noqa: E402

RUNS = sorted((ROOT / "docs" / "benchmarks").glob("*.json"))


def quoted() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for doc in render_tables.DOCS:
        for m in render_tables.MARKER.finditer((ROOT / doc).read_text()):
            out.setdefault(m.group("path"), []).append(doc)
    return out


def test_the_docs_tables_are_rendered_from_the_committed_runs():
    assert render_tables.main(["--check"]) == 0, \
        "run: python tools/bench/render_tables.py --write"


def test_every_committed_run_is_quoted_and_named_by_its_cpu_kind():
    assert RUNS, "docs/benchmarks holds the raw runs the docs quote"
    refs = quoted()
    for path in RUNS:
        rel = path.relative_to(ROOT).as_posix()
        assert rel in refs, f"{rel} is committed but no doc quotes it"
        data = json.loads(path.read_text())
        kind = data["cpu"]["kind"]
        assert path.stem.endswith(f"-{kind}"), (path.name, kind)
        assert data["cpu"]["model"] and data["cpu"]["simd_flags"] is not None
    for rel in refs:
        assert (ROOT / rel).exists(), f"a doc quotes {rel}, which is not committed"


@pytest.mark.parametrize("path", RUNS, ids=[p.stem for p in RUNS])
def test_a_changed_number_changes_the_table(path, tmp_path):
    """The renderer prints the JSON's numbers (nothing fixed in the text): changing one figure
    of the run changes the table."""
    data = json.loads(path.read_text())
    before = render_tables.render(path)
    changed = copy.deepcopy(data)
    if "candidates" in changed:
        entry = next(e for e in changed["candidates"].values() if "p50_ms" in e)
        entry["p50_ms"] = 12345.67
        marker = "12345.67"
    else:
        run = next(r for r in changed["runs"] if "recv_dev" in r or "from_send" in r)
        key = "recv_dev" if "recv_dev" in run else "from_send"
        run[key]["p50"] = 12345.67
        marker = "12345.67"
    other = tmp_path / path.name
    other.write_text(json.dumps(changed))
    after = render_tables.render(other)
    assert after != before and marker in after and marker not in before


def test_a_tail_over_fewer_than_100_samples_is_called_max():
    assert render_tables._tail({"n": 99, "p50": 1.0, "p99": 2.0, "max": 3.0}) == \
        "1.0 / 3.0 (max, n=99)"
    assert render_tables._tail({"n": 100, "p50": 1.0, "p99": 2.0, "max": 3.0}) == \
        "1.0 / 2.0 (p99, n=100)"
