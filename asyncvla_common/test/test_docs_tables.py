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
