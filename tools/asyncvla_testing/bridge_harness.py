"""Start a bridge as a real process and read its /diagnostics, for tests and the benchmark."""
from __future__ import annotations

import json
import os
import re
import time
from typing import Any, Callable

from .processes import ManagedProcess, ProcessGroup
from .ros_listener import RosListener, diagnostic_values

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BRIDGES = {
    "camera": ("asyncvla_bridges", "camera_bridge"),
    "robot": ("asyncvla_bridges", "robot_bridge"),
    "sensor": ("asyncvla_bridges", "sensor_bridge"),
}


def entry_script(kind: str) -> str:
    """The installed console script (colcon --symlink-install), as a user would run it."""
    package, exe = BRIDGES[kind]
    return os.path.join(REPO, "install", package, "lib", package, exe)


def flat_params(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested groups -> dotted parameter names: {"wire": {"port": 0}} is {"wire.port": 0}
    (a name may also be given dotted already)."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, dict):
            out.update(flat_params(value, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = value
    return out


def ros_args(params: dict[str, Any]) -> list[str]:
    """`--ros-args -p name:=value ...`; nested groups become dotted names (`flat_params`),
    values JSON, which the YAML parser accepts."""
    args = ["--ros-args"]
    for name, value in flat_params(params).items():
        args += ["-p", f"{name}:={value if isinstance(value, str) else json.dumps(value)}"]
    return args


def start_bridge(processes: ProcessGroup, kind: str, params: dict[str, Any],
                 timeout: float = 30.0) -> tuple[ManagedProcess, str]:
    """Start a bridge, wait for its ready line and return (process, endpoint it listens on).
    `params` by group, as in its YAML (``{"wire": {"port": 0}}``), or dotted."""
    proc = processes.start(f"{kind}_bridge", [entry_script(kind), *ros_args(params)])
    line = proc.wait_for_line("ready: listening on", timeout)
    endpoint = re.search(r"listening on (\S+)", line).group(1)
    return proc, endpoint


def domain_id(processes: ProcessGroup) -> int:
    return int(processes.env["ROS_DOMAIN_ID"])


def latest_diagnostics(listener: RosListener, node_name: str) -> dict[str, str] | None:
    """Values of the newest /diagnostics status from `node_name` (its "bridge" status)."""
    for array_msg in reversed(listener["/diagnostics"].snapshot()):
        values = diagnostic_values(array_msg, f"{node_name}: bridge")
        if values is not None:
            return values
    return None


def wait_diagnostics(listener: RosListener, node_name: str,
                     predicate: Callable[[dict[str, str]], bool], timeout: float) -> dict[str, str]:
    """The first diagnostics of `node_name` satisfying `predicate`; TimeoutError with the last."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = latest_diagnostics(listener, node_name)
        if last is not None and predicate(last):
            return last
        time.sleep(0.05)
    raise TimeoutError(f"{node_name} diagnostics never matched within {timeout} s; last: {last}")


def drops(values: dict[str, str]) -> dict[str, int]:
    """The non-zero drop counters of a diagnostics status, by reason."""
    return {k[len("drop."):]: int(v) for k, v in values.items()
            if k.startswith("drop.") and int(v)}
