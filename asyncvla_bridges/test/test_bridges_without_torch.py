"""The bridges and the Meca500 driver run on a robot PC without a deep-learning stack.

A child Python process makes torch, transformers and peft (and the two project packages built on
them, asyncvla_policy and asyncvla_training) unimportable, as on a machine where they are not
installed, then imports every module of asyncvla_bridges: the three bridges, their wire formats,
and the Meca500 driver's core and node. Nothing may need them: a rotation or a joint list comes
from asyncvla_core (numpy only). package.xml must say the same (no dependency on either package).
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1]
BLOCKED = ("torch", "transformers", "peft", "asyncvla_policy", "asyncvla_training")

CHILD = textwrap.dedent(r'''
    import importlib, importlib.abc, json, pkgutil, sys
    BLOCKED = tuple(sys.argv[1].split(","))

    class NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"No module named {name!r} (not installed on this robot PC)")
            return None

    sys.meta_path.insert(0, NoTorch())
    import asyncvla_bridges
    names = sorted(m.name for m in pkgutil.walk_packages(asyncvla_bridges.__path__,
                                                         "asyncvla_bridges."))
    for name in names:
        importlib.import_module(name)
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print("RESULT " + json.dumps({"modules": names, "leaked": leaked}))
''')


def test_every_bridges_module_imports_without_torch():
    pytest.importorskip("rclpy")
    proc = subprocess.run([sys.executable, "-c", CHILD, ",".join(BLOCKED)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert result["leaked"] == []
    assert {"asyncvla_bridges.camera_bridge", "asyncvla_bridges.robot_bridge",
            "asyncvla_bridges.sensor_bridge", "asyncvla_bridges.meca500.driver_core",
            "asyncvla_bridges.meca500.driver_node"} <= set(result["modules"])


def test_package_xml_declares_no_torch_package():
    manifest = ET.parse(PACKAGE / "package.xml").getroot()
    declared = {e.text for e in manifest if e.tag in ("depend", "exec_depend")}
    assert not declared & {"python3-torch", "python3-transformers", "python3-peft",
                           "asyncvla_policy", "asyncvla_training"}, declared
