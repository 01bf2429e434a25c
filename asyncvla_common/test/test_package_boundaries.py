"""The package graph stays as designed: each package imports only the packages below it, the
ROS-free packages import no ROS, the node packages never import each other, and no product
module imports a test stand-in or a benchmark. Every import of another project package is
declared in package.xml (so rosdep and colcon agree).

Read from the source with `ast` (nothing is imported), so a function-level import is caught too.
Third-party dependencies are held to package.xml by test_declared_dependencies.py.
"""
from __future__ import annotations

import ast
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: package -> project packages its code may import (besides itself), from the ground up.
ALLOWED = {
    "asyncvla_msgs": set(),
    "asyncvla_core": set(),
    "asyncvla_policy": {"asyncvla_core"},
    "asyncvla_training": {"asyncvla_core", "asyncvla_policy"},
    "asyncvla_common": {"asyncvla_msgs", "asyncvla_core"},
    "asyncvla_bridges": {"asyncvla_msgs", "asyncvla_core", "asyncvla_common"},
    "asyncvla_vlm_node": {"asyncvla_msgs", "asyncvla_core", "asyncvla_common", "asyncvla_policy"},
    "asyncvla_action_node": {"asyncvla_msgs", "asyncvla_core", "asyncvla_common",
                             "asyncvla_policy"},
    "asyncvla_executor": {"asyncvla_msgs", "asyncvla_core", "asyncvla_common"},
}
ALLOWED["asyncvla_bringup"] = set(ALLOWED)
PROJECT = tuple(ALLOWED)
PYTHON_PACKAGES = tuple(p for p in PROJECT if p != "asyncvla_msgs")
#: The packages whose processes are nodes: none may import another's code.
NODE_PACKAGES = ("asyncvla_bridges", "asyncvla_vlm_node", "asyncvla_action_node",
                 "asyncvla_executor")
#: Packages that run without ROS (a GPU server, a training machine, a plain pip install).
ROS_FREE = ("asyncvla_core", "asyncvla_policy", "asyncvla_training")
ROS_MODULES = ("rclpy", "rcl_interfaces", "rosidl_runtime_py", "rosidl_parser", "rmw",
               "launch", "launch_ros", "ament_index_python", "cv_bridge", "builtin_interfaces")
#: What tools/ holds: test stand-ins and benchmarks, never imported by product code.
TOOLS = ROOT / "tools"
TOOL_MODULES = ({"asyncvla_testing", "conftest", "pytest"} | {p.stem for p in TOOLS.glob("*.py")}
                | {p.stem for p in (TOOLS / "bench").glob("*.py")})


def product_files(package: str) -> list[Path]:
    """The package's code (not its tests); bringup's launch files too."""
    files = sorted((ROOT / package / package).rglob("*.py"))
    if package == "asyncvla_bringup":
        files += sorted((ROOT / package / "launch").glob("*.py"))
    return files


def imports(path: Path) -> set[str]:
    """Absolute module names imported anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def imported_tops(package: str) -> dict[str, set[str]]:
    """Top-level modules imported by the package's code: name -> files."""
    found: dict[str, set[str]] = {}
    for path in product_files(package):
        for name in imports(path):
            found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def project_imports(package: str) -> dict[str, set[str]]:
    return {k: v for k, v in imported_tops(package).items() if k in PROJECT and k != package}


def test_every_package_is_in_the_graph():
    on_disk = {p.parent.name for p in ROOT.glob("asyncvla_*/package.xml")}
    assert on_disk == set(PROJECT), on_disk ^ set(PROJECT)


@pytest.mark.parametrize("package", PYTHON_PACKAGES)
def test_imports_follow_the_package_graph(package):
    wrong = {k: sorted(v) for k, v in project_imports(package).items()
             if k not in ALLOWED[package]}
    assert not wrong, f"{package} must not import {wrong}"


@pytest.mark.parametrize("package", PYTHON_PACKAGES)
def test_imported_project_packages_are_declared(package):
    manifest = ET.parse(ROOT / package / "package.xml").getroot()
    declared = {e.text for e in manifest if e.tag in ("exec_depend", "depend")}
    missing = set(project_imports(package)) - declared
    assert not missing, f"{package}/package.xml lacks <exec_depend> for {sorted(missing)}"


@pytest.mark.parametrize("package", ROS_FREE)
def test_ros_free_packages_import_no_ros(package):
    ros = {k: sorted(v) for k, v in imported_tops(package).items()
           if k in ROS_MODULES or k.endswith(("_msgs", "_srvs", "_interfaces"))}
    assert not ros, f"{package} must run without ROS, but imports {ros}"


def test_core_imports_numpy_and_the_standard_library_only():
    other = {k: sorted(v) for k, v in imported_tops("asyncvla_core").items()
             if k not in sys.stdlib_module_names and k not in ("numpy", "asyncvla_core")}
    assert not other, f"asyncvla_core is numpy-only, but imports {other}"


@pytest.mark.parametrize("package", NODE_PACKAGES)
def test_node_packages_never_import_each_other(package):
    others = set(NODE_PACKAGES) - {package}
    wrong = {k: sorted(v) for k, v in project_imports(package).items() if k in others}
    assert not wrong, f"{package} imports another node package: {wrong}"


@pytest.mark.parametrize("package", PYTHON_PACKAGES)
def test_no_product_module_imports_tools_or_a_test_fixture(package):
    wrong = {}
    for path in product_files(package):
        for name in imports(path):
            parts = name.split(".")
            if (parts[0] in TOOL_MODULES or "testing" in parts[1:]
                    or any(p.startswith("test_") or p == "test" for p in parts)):
                wrong.setdefault(str(path.relative_to(ROOT)), []).append(name)
    assert not wrong, f"product code imports test or benchmark code: {wrong}"
    assert not list((ROOT / package / package).rglob("testing")), "a fixture folder in product code"
