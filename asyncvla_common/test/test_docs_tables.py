"""Every measured table in the docs is the one its committed run renders (tools/docs_tables.py):
a figure typed by hand, or a run re-measured without re-rendering, fails here."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location("docs_tables", ROOT / "tools" / "docs_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_doc_tables_match_their_runs() -> None:
    tool = _tool()
    problems = [p for path in tool.markdown_files() for p in tool.check(path, write=False)]
    assert not problems, "\n".join(problems)


def test_a_table_typed_by_hand_is_caught(tmp_path) -> None:
    tool = _tool()
    tool.ROOT = tmp_path  # report paths relative to the temporary directory
    name = next(iter(tool.RENDERERS))
    good = tool.RENDERERS[name]()
    doc = tmp_path / "doc.md"
    doc.write_text(f"x\n<!-- table: {name} -->\n{good}<!-- /table -->\n")
    assert tool.check(doc, write=False) == []
    doc.write_text(f"x\n<!-- table: {name} -->\n{good.replace('0', '9', 1)}<!-- /table -->\n")
    assert tool.check(doc, write=False), "a changed figure was not caught"
    tool.check(doc, write=True)
    assert tool.check(doc, write=False) == [] and doc.read_text().count(good) == 1


def _quoted(tool) -> set[str]:
    return {m.group("name") for path in tool.markdown_files()
            for m in tool.BLOCK.finditer(path.read_text())}


def test_every_committed_run_is_quoted_and_timing_runs_are_named_by_their_cpu() -> None:
    """A run nobody quotes is a figure the docs forgot; a timing run's file ends with the CPU
    kind it ran on (one table per CPU kind measured)."""
    import json

    tool = _tool()
    quoted = _quoted(tool)
    runs = sorted((ROOT / "docs" / "benchmarks").glob("*.json"))
    assert runs
    named = {name for name in tool.RENDERERS}
    for path in runs:
        rel = path.relative_to(ROOT).as_posix()
        data = json.loads(path.read_text())
        # Quoted by its path, or through a named renderer that reads it (ci_run -> ci-run).
        reader = path.stem.split("-")[0].replace("_", "-")
        assert rel in quoted or any(q.startswith(reader) for q in quoted), \
            f"{rel} is committed but no doc quotes it"
        if "cpu" in data and isinstance(data["cpu"], dict) and "kind" in data["cpu"]:
            assert path.stem.endswith(f"-{data['cpu']['kind']}"), (path.name, data["cpu"])
    for name in quoted:
        assert name in named or (ROOT / name).is_file(), f"a doc quotes {name}, which is not here"


#: Keys a run's table prints, searched depth first for the number to change.
FIGURE_KEYS = ("p50", "p50_ms", "cpu_share_median", "detected_s", "enable_to_first_chunk_s",
               "diagnostic_after_s", "mean", "seconds")


def _first_figure(node) -> tuple[dict, str] | None:
    """The first (dict, key) holding a number under one of FIGURE_KEYS, depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in FIGURE_KEYS and isinstance(value, (int, float)) and value is not True:
                return node, key
        children = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = _first_figure(child)
        if found:
            return found
    return None


def _tables_of(tool, path) -> list[str | None]:
    """The parts a run renders (None: its one table)."""
    data = __import__("json").loads(path.read_text())
    kind = "expert_cpu" if "candidates" in data else data.get("benchmark", "")
    return list(tool.RUN_PARTS[kind]) if kind in tool.RUN_PARTS else [None]


def test_a_changed_number_changes_a_timing_table(tmp_path) -> None:
    """In every committed timing run (and each of its tables), a changed figure shows up."""
    import copy
    import json

    tool = _tool()
    checked = 0
    for path in sorted((ROOT / "docs" / "benchmarks").glob("*-*.json")):
        data = json.loads(path.read_text())
        kind = "expert_cpu" if "candidates" in data else data.get("benchmark", "")
        if kind not in tool.RUN_RENDERERS and kind not in tool.RUN_PARTS:
            continue  # rendered by a named renderer (ci_run: ci-run)
        for part in _tables_of(tool, path):
            before = tool.render_run(path, part)
            changed = copy.deepcopy(data)
            if "candidates" in changed:
                target = next(e for e in changed["candidates"].values() if "p50_ms" in e), "p50_ms"
            elif changed.get("benchmark") == "bridges":  # the camera row shows its slowest view
                target = changed["robot"]["latency_capture_to_downstream"], "p50_ms"
            elif changed.get("benchmark") in ("action_period", "sensor_latency"):
                run = next(r for r in changed["runs"] if "recv_dev" in r or "from_send" in r)
                target = run["recv_dev" if "recv_dev" in run else "from_send"], "p50"
            else:
                section = {"faults": "faults", "operator": "operator_path",
                           "rogues": "rogues"}.get(part or "")
                target = _first_figure(changed[section] if section else changed)
            assert target, f"{path.name} {part}: no figure found to change"
            target[0][target[1]] = 12345.67
            other = tmp_path / path.name
            other.write_text(json.dumps(changed))
            after = tool.render_run(other, part)
            assert after != before and "12345.67" in after and "12345.67" not in before, \
                (path.name, part)
            checked += 1
    assert checked >= 4  # the expert, period and latency runs at least


def test_a_run_table_that_does_not_exist_is_reported(tmp_path) -> None:
    tool = _tool()
    tool.ROOT = tmp_path
    run = tmp_path / "docs" / "benchmarks" / "x-amd-epyc-avx512.json"
    run.parent.mkdir(parents=True)
    run.write_text('{"benchmark": "fault_recovery", "cpu": {"kind": "amd-epyc-avx512"}}')
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- table: docs/benchmarks/x-amd-epyc-avx512.json nosuchpart -->\n"
                   "<!-- /table -->\n")
    problems = tool.check(doc, write=False)
    assert len(problems) == 1 and "nosuchpart" in problems[0]


def test_the_tick_design_lines_follow_their_runs(tmp_path, monkeypatch) -> None:
    """The one-line-per-design summary is computed from the three runs it cites."""
    import json
    import shutil

    tool = _tool()
    kind = "amd-epyc-avx512"
    for name in ("action_period_designs", "action_period_default", "sensor_latency"):
        shutil.copy(ROOT / "docs" / "benchmarks" / f"{name}-{kind}.json", tmp_path)
    monkeypatch.setattr(tool, "BENCHMARKS", tmp_path)
    before = tool.tick_designs(kind)()
    path = tmp_path / f"sensor_latency-{kind}.json"
    data = json.loads(path.read_text())
    run = next(r for r in data["runs"] if r["design"] == "default" and r["rate_hz"] == 10)
    run["from_send"]["p50"] = 12345.67
    path.write_text(json.dumps(data))
    after = tool.tick_designs(kind)()
    assert "12345.67 ms p50" in after and "12345.67" not in before


def test_a_tail_over_fewer_than_100_samples_is_called_max() -> None:
    tool = _tool()
    assert tool._tail({"n": 99, "p50": 1.0, "p99": 2.0, "max": 3.0}) == "1.0 / 3.0 (max, n=99)"
    assert tool._tail({"n": 100, "p50": 1.0, "p99": 2.0, "max": 3.0}) == "1.0 / 2.0 (p99, n=100)"


def test_a_figure_in_prose_is_checked_against_its_run(tmp_path, monkeypatch) -> None:
    import json

    tool = _tool()
    tool.ROOT = tmp_path
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "r.json").write_text(json.dumps({"claims": {"x": {"interval": [0.1, 0.56789]}}}))
    monkeypatch.setattr(tool, "BENCHMARKS", runs)
    doc = tmp_path / "doc.md"
    marker = "<!-- fig: r.json claims/x/interval/1 .2f -->"
    doc.write_text(f"reaches {marker}0.57<!-- /fig -->: close.\n")
    assert tool.check(doc, write=False) == []
    doc.write_text(f"reaches {marker}0.55<!-- /fig -->: close.\n")
    assert tool.check(doc, write=False), "a figure typed by hand was not caught"
    tool.check(doc, write=True)
    assert doc.read_text() == f"reaches {marker}0.57<!-- /fig -->: close.\n"
    doc.write_text("<!-- fig: r.json claims/y .2f -->1<!-- /fig -->\n")
    problems = tool.check(doc, write=False)
    assert len(problems) == 1 and "claims/y" in problems[0]


def test_ci_summary_reads_a_ci_log(tmp_path) -> None:
    """tools/ci_summary.py turns a `.ci/run` log into the CI-run JSON the README renders; a log
    without pytest's summary is one line and exit 2, not a traceback."""
    import json
    import subprocess
    import sys

    log = tmp_path / "ci.log"
    log.write_text("....s..F\n= 3 failed, 870 passed, 3 skipped, 14 warnings in 931.52s (0:15:31) =\n"
                   "\nreal\t17m11.204s\nuser\t1m0.1s\n")
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "ci_summary.py"), str(log),
                          "--note", "quiet"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    run = json.loads(out.stdout)
    assert (run["passed"], run["failed"], run["skipped"]) == (870, 3, 3)
    assert run["tests_s"] == 931.52 and abs(run["total_s"] - 1031.204) < 1e-6
    assert run["note"] == "quiet" and run["cpu"]["kind"]
    log.write_text("no summary here\n")
    bad = subprocess.run([sys.executable, str(ROOT / "tools" / "ci_summary.py"), str(log)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "ci.log" in bad.stderr
