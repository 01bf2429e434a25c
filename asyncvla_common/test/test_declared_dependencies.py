"""Every package declares exactly the third-party packages its code imports.

Read from the source with `ast` (function-level imports too, nothing is imported): the top-level
modules a package's code (and bringup's launch files) imports, less the standard library and the
project's own packages, must be the <exec_depend>/<depend> keys of its package.xml, no more and no
fewer. A missing key breaks `rosdep install` on a robot PC; a stale one installs what nothing
uses. The ROS-free packages (installable with plain pip) must list the same packages in
setup.py's install_requires, and their optional imports under extras_require; the ROS packages
leave that to package.xml (install_requires is setuptools alone).

Finally, the robot PC's install (asyncvla_bringup/ROBOT_PC.md) installs each package once: every
key whose package the pip step installs at a pinned version (tools/requirements-ml.txt, `==`) is
skipped by the rosdep step, so torch never comes from apt and then again from pip.
"""
from __future__ import annotations

import ast
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(p.parent.name for p in ROOT.glob("asyncvla_*/package.xml")
                  if (p.parent / "setup.py").is_file())  # asyncvla_msgs is CMake, no Python
ROS_FREE = ("asyncvla_core", "asyncvla_policy", "asyncvla_training")

#: Imported module -> (rosdep key, pip requirement name). ROS packages import as their own name
#: (rclpy, std_msgs, cv_bridge, ...: key = module) and need no row. The keys of packages that the
#: pip step installs (tools/requirements-ml.txt) need no rosdep definition of their own: the
#: rosdep step of ROBOT_PC.md skips them (test_pinned_pip_packages_are_skipped_by_rosdep).
THIRD_PARTY = {
    "numpy": ("python3-numpy", "numpy"),
    "cv2": ("python3-opencv", "opencv-python-headless"),
    "yaml": ("python3-yaml", "pyyaml"),
    "zmq": ("python3-zmq", "pyzmq"),
    "PIL": ("python3-pil", "pillow"),
    "matplotlib": ("python3-matplotlib", "matplotlib"),
    "tqdm": ("python3-tqdm", "tqdm"),
    "simplejpeg": ("python3-simplejpeg", "simplejpeg"),
    "mecademicpy": ("python3-mecademicpy", "mecademicpy"),
    "rosbags": ("python3-rosbags", "rosbags"),
    "pyarrow": ("python3-pyarrow", "pyarrow"),
    "torch": ("python3-torch", "torch"),
    "transformers": ("python3-transformers", "transformers"),
    "peft": ("python3-peft", "peft"),
    "safetensors": ("python3-safetensors", "safetensors"),
    # optional expert runtimes of asyncvla_policy: setup.py extras only, never package.xml
    "onnx": (None, "onnx"),
    "onnxruntime": (None, "onnxruntime"),
    "openvino": (None, "openvino"),
    "openvino_telemetry": (None, "openvino-telemetry"),
    "nncf": (None, "nncf"),
    "torchao": (None, "torchao"),
}
#: ROS packages whose Python module is the package's name (besides *_msgs, *_srvs, *_interfaces).
ROS_PACKAGES = ("rclpy", "launch", "launch_ros", "ament_index_python", "cv_bridge")
#: Declared but not imported, and why (each is used another way).
USED_WITHOUT_IMPORT = {
    "asyncvla_bringup": {
        "ros2launch": "the `ros2 launch` command of the launch files",
        "ros2bag": "the `ros2 bag record` command that `record` runs",
        "rosbag2_storage_mcap": "the mcap storage of the recordings",
    },
}
#: Extras that no module imports, and why.
EXTRAS_WITHOUT_IMPORT = {
    "asyncvla_policy": {"onnxscript": "torch.onnx.export's exporter imports it"},
}


def product_files(package: str) -> list[Path]:
    files = sorted((ROOT / package / package).rglob("*.py"))
    return files + sorted((ROOT / package / "launch").glob("*.py"))


def third_party_imports(package: str) -> dict[str, set[str]]:
    """Top-level modules outside the standard library and the project: name -> files."""
    found: dict[str, set[str]] = {}
    for path in product_files(package):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and not top.startswith("asyncvla_"):
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()


def setup_kwargs(package: str) -> dict:
    tree = ast.parse((ROOT / package / "setup.py").read_text())
    call = next(n for n in ast.walk(tree)
                if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup")
    return {k.arg: ast.literal_eval(k.value) for k in call.keywords
            if k.arg in ("install_requires", "extras_require")}


def extras(package: str) -> set[str]:
    return {requirement_name(r) for reqs in setup_kwargs(package).get("extras_require", {}).values()
            for r in reqs}


def declared_keys(package: str) -> set[str]:
    manifest = ET.parse(ROOT / package / "package.xml").getroot()
    return {e.text.strip() for e in manifest if e.tag in ("exec_depend", "depend")
            and not e.text.strip().startswith("asyncvla_")}


def required_modules(package: str) -> dict[str, set[str]]:
    """Imported modules that are not optional (an optional one is a setup.py extra)."""
    optional = extras(package)
    return {m: files for m, files in third_party_imports(package).items()
            if THIRD_PARTY.get(m, (None, m))[1] not in optional}


def is_ros_package(module: str) -> bool:
    return module in ROS_PACKAGES or module.endswith(("_msgs", "_srvs", "_interfaces"))


@pytest.mark.parametrize("package", PACKAGES)
def test_every_import_has_a_known_key(package):
    unknown = {m: sorted(f) for m, f in third_party_imports(package).items()
               if m not in THIRD_PARTY and not is_ros_package(m)}
    assert not unknown, f"add these modules to THIRD_PARTY (or ROS_PACKAGES): {unknown}"


@pytest.mark.parametrize("package", PACKAGES)
def test_package_xml_declares_what_the_code_imports(package):
    modules = required_modules(package)
    wanted = {THIRD_PARTY[m][0] if m in THIRD_PARTY else m: files for m, files in modules.items()}
    declared = declared_keys(package)
    missing = {key: sorted(files) for key, files in wanted.items() if key not in declared}
    stale = declared - set(wanted) - set(USED_WITHOUT_IMPORT.get(package, {}))
    assert not missing, f"{package}/package.xml lacks <exec_depend> for {missing}"
    assert not stale, f"{package}/package.xml declares {sorted(stale)}, which nothing imports"


@pytest.mark.parametrize("package", PACKAGES)
def test_setup_py_matches_the_imports(package):
    kwargs = setup_kwargs(package)
    required = {requirement_name(r) for r in kwargs.get("install_requires", [])}
    if package not in ROS_FREE:
        assert required == {"setuptools"}, (
            f"{package} is a ROS package: its dependencies are package.xml's (rosdep), "
            f"install_requires is setuptools alone, not {sorted(required)}")
        assert not kwargs.get("extras_require"), package
        return
    imported = {THIRD_PARTY[m][1] for m in third_party_imports(package)}
    wanted = {THIRD_PARTY[m][1] for m in required_modules(package)}
    assert required == wanted, (f"{package}/setup.py install_requires: missing "
                                f"{sorted(wanted - required)}, stale {sorted(required - wanted)}")
    unused = extras(package) - imported - set(EXTRAS_WITHOUT_IMPORT.get(package, {}))
    assert not unused, f"{package}/setup.py extras nothing imports: {sorted(unused)}"


def pinned_pip_packages() -> set[str]:
    names = set()
    for line in (ROOT / "tools" / "requirements-ml.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            names.add(requirement_name(line))
    return names


def robot_pc_skip_keys() -> set[str]:
    """The keys ROBOT_PC.md's install block passes to `rosdep install --skip-keys` (PIP_KEYS)."""
    text = (ROOT / "asyncvla_bringup" / "ROBOT_PC.md").read_text()
    block = re.search(r"```bash\n(.*?rosdep install.*?)```", text, re.S).group(1)
    assert '--skip-keys "$PIP_KEYS"' in block, "the rosdep step must skip the pip step's keys"
    keys: set[str] = set()
    for line in re.findall(r'^PIP_KEYS="([^"]*)"', block, re.M):
        keys.update(k for k in line.split() if k != "$PIP_KEYS")
    return keys


def test_pinned_pip_packages_are_skipped_by_rosdep():
    by_pip = {pip: key for key, pip in THIRD_PARTY.values() if key}
    declared = set().union(*(declared_keys(p) for p in PACKAGES))
    pinned_keys = {by_pip[p] for p in pinned_pip_packages() if p in by_pip} & declared
    skipped = robot_pc_skip_keys()
    assert "python3-torch" in skipped
    assert pinned_keys <= skipped, f"from apt and again from pip: {sorted(pinned_keys - skipped)}"
    assert skipped <= pinned_keys, f"skipped, not from pip: {sorted(skipped - pinned_keys)}"
