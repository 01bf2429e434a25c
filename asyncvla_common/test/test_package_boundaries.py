"""The package graph stays as designed: node packages never import each other, and every
import of another project package is declared in package.xml (so rosdep and colcon agree).

Read from the source with `ast` (nothing is imported), so a function-level import is caught too.
"""
from __future__ import annotations

import ast
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ("asyncvla_msgs", "asyncvla_core", "asyncvla_policy", "asyncvla_common",
           "asyncvla_training", "asyncvla_bridges", "asyncvla_vlm_node", "asyncvla_action_node",
           "asyncvla_bringup")
#: package -> project packages its code may import (besides itself).
ALLOWED = {
    "asyncvla_core": set(),
    "asyncvla_common": {"asyncvla_msgs"},
    "asyncvla_policy": {"asyncvla_core"},
    "asyncvla_training": {"asyncvla_core", "asyncvla_policy"},
    "asyncvla_bridges": {"asyncvla_msgs", "asyncvla_core", "asyncvla_common"},
    "asyncvla_vlm_node": {"asyncvla_msgs", "asyncvla_core", "asyncvla_common", "asyncvla_policy"},
    "asyncvla_action_node": {"asyncvla_msgs", "asyncvla_core", "asyncvla_common", "asyncvla_policy"},
    "asyncvla_bringup": set(PROJECT) - {"asyncvla_bringup"},
}


def project_imports(package: str) -> dict[str, set[str]]:
    """Project packages imported by the package's code (not its tests): name -> files."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / package / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in PROJECT and top != package:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_follow_the_package_graph(package):
    imports = project_imports(package)
    wrong = {k: sorted(v) for k, v in imports.items() if k not in ALLOWED[package]}
    assert not wrong, f"{package} must not import {wrong}"


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imported_project_packages_are_declared(package):
    manifest = ET.parse(ROOT / package / "package.xml").getroot()
    declared = {e.text for e in manifest if e.tag in ("exec_depend", "depend")}
    missing = set(project_imports(package)) - declared
    assert not missing, f"{package}/package.xml lacks <exec_depend> for {sorted(missing)}"


def test_the_two_node_packages_never_import_each_other():
    assert "asyncvla_action_node" not in project_imports("asyncvla_vlm_node")
    assert "asyncvla_vlm_node" not in project_imports("asyncvla_action_node")
    assert os.path.isdir(ROOT / "asyncvla_vlm_node") and os.path.isdir(ROOT / "asyncvla_action_node")
