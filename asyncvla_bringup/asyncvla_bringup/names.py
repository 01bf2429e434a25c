"""ROS names and the package's config directory: what the launch catalog and the recorder share.

Kept apart from both so neither imports the other (the recorder's CLI and the launch plan each
import this module, nothing more).
"""
from __future__ import annotations

from pathlib import Path

PACKAGE = "asyncvla_bringup"


def normalize_namespace(text: str) -> str:
    """'' stays ''; 'arm1' and '/arm1/' become '/arm1'; an invalid name raises ValueError."""
    ns = str(text).strip().strip("/")
    if not ns:
        return ""
    from rclpy.exceptions import InvalidNamespaceException
    from rclpy.validate_namespace import validate_namespace

    try:
        validate_namespace("/" + ns)
    except InvalidNamespaceException as exc:
        raise ValueError(f"namespace:={text!r} is not a valid ROS namespace: {exc}") from None
    return "/" + ns


def resolve_topic(name: str, namespace: str = "") -> str:
    """ROS name resolution for topics: absolute names stay, relative ones get the namespace."""
    if name.startswith("/"):
        return name
    return f"{namespace.rstrip('/')}/{name}"


def default_config_dir() -> Path:
    """config/ of the installed package, else of the source tree."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        share = Path(get_package_share_directory(PACKAGE))
        if (share / "config").is_dir():
            return share / "config"
    except (ImportError, PackageNotFoundError, ValueError):
        pass
    return Path(__file__).resolve().parent.parent / "config"
