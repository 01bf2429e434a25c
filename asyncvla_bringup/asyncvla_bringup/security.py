"""SROS2 trust boundary of the suite: enclave names, the shipped policy files, the secure env.

Without DDS security anyone on the domain can publish any topic (enable the robot, feed it VL
features). With `secure:=true` every node joins with its own enclave from a keystore the
operator created (ROBOT_PC.md, "Secured DDS"), and the permissions generated from
``security/policy.xml`` let only the operator's enclave publish enable / e-stop and only the VLM's
publish VL features. ROS-free: the launch plan (catalog.py) and the tests read these tables.
"""
from __future__ import annotations

import os
from pathlib import Path

#: Enclave of each node kind of catalog.NODES.
ENCLAVES = {
    "action": "/asyncvla/action_node",
    "vlm": "/asyncvla/vlm_node",
    "robot_bridge": "/asyncvla/robot_bridge",
    "sensor_bridge": "/asyncvla/sensor_bridge",
    "camera_bridge": "/asyncvla/camera_bridge",
}
#: Enclaves of processes the launch files do not start: the operator's panel or shell, and
#: monitoring (diagnostic_aggregator, rqt).
OPERATOR_ENCLAVE = "/asyncvla/operator"
MONITOR_ENCLAVE = "/asyncvla/monitor"
ALL_ENCLAVES = (*ENCLAVES.values(), OPERATOR_ENCLAVE, MONITOR_ENCLAVE)

POLICY_FILE = "policy.xml"
GOVERNANCE_FILE = "governance.xml"


def security_dir() -> Path:
    """security/ of the package: the installed share directory, else the source tree."""
    try:
        from ament_index_python.packages import get_package_share_directory

        shared = Path(get_package_share_directory("asyncvla_bringup")) / "security"
        if shared.is_dir():
            return shared
    except Exception:  # noqa: BLE001 - not installed: the source tree
        pass
    return Path(__file__).resolve().parent.parent / "security"


def check_keystore(keystore: str) -> str:
    """The keystore path, or ValueError saying how to create it."""
    path = keystore.strip()
    if not path or not os.path.isdir(os.path.join(path, "enclaves")):
        raise ValueError(f"secure:=true needs keystore:=<dir made by `ros2 security "
                         f"create_keystore`> with the suite's enclaves (ROBOT_PC.md, Secured "
                         f"DDS); got {keystore!r}")
    return os.path.abspath(path)


def security_env(keystore: str) -> dict[str, str]:
    """Environment that makes rcl load the node's enclave and refuse to run without it."""
    return {"ROS_SECURITY_KEYSTORE": keystore, "ROS_SECURITY_ENABLE": "true",
            "ROS_SECURITY_STRATEGY": "Enforce"}
