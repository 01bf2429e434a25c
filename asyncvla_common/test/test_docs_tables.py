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


def test_a_changed_number_changes_a_timing_table(tmp_path) -> None:
    import copy
    import json

    tool = _tool()
    for path in sorted((ROOT / "docs" / "benchmarks").glob("*-*.json")):
        data = json.loads(path.read_text())
        if "cpu" not in data or path.stem.split("-")[0].replace("_", "-") in tool.RENDERERS:
            continue  # not a timing run, or one a named renderer reads (ci_run -> ci-run)
        before = tool.render_run(path)
        changed = copy.deepcopy(data)
        if "candidates" in changed:
            next(e for e in changed["candidates"].values() if "p50_ms" in e)["p50_ms"] = 12345.67
        else:
            run = next(r for r in changed["runs"] if "recv_dev" in r or "from_send" in r)
            run["recv_dev" if "recv_dev" in run else "from_send"]["p50"] = 12345.67
        other = tmp_path / path.name
        other.write_text(json.dumps(changed))
        after = tool.render_run(other)
        assert after != before and "12345.67" in after and "12345.67" not in before


def test_a_tail_over_fewer_than_100_samples_is_called_max() -> None:
    tool = _tool()
    assert tool._tail({"n": 99, "p50": 1.0, "p99": 2.0, "max": 3.0}) == "1.0 / 3.0 (max, n=99)"
    assert tool._tail({"n": 100, "p50": 1.0, "p99": 2.0, "max": 3.0}) == "1.0 / 2.0 (p99, n=100)"
