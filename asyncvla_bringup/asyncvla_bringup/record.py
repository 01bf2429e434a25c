"""Recording helper: the `ros2 bag record` command line for an AsyncVLA dataset.

    ros2 run asyncvla_bringup record -o ~/bags/run01            # record (execs ros2 bag record)
    ros2 run asyncvla_bringup record -o run01 --dry-run          # only print the command
    ros2 run asyncvla_bringup record -o run01 -- --max-bag-duration 600   # extra ros2 bag args

The topics come from config/record.yaml (inputs, outputs, operator, monitoring), the QoS
overrides from config/record_qos_overrides.yaml (the latched topics, VL features first, are
recorded as latched). The same files drive `replay.launch.py bag:=...` (which plays the inputs
back with `--clock`).
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from asyncvla_bringup.names import default_config_dir, normalize_namespace, resolve_topic

RECORD_CONFIG = "record.yaml"
QOS_OVERRIDES = "record_qos_overrides.yaml"
GROUPS = ("inputs", "outputs", "operator", "monitoring")
VL_FEATURES = "asyncvla/vl_features"
_KEYS = {"views", "storage", *GROUPS}


@dataclass(frozen=True)
class RecordConfig:
    views: tuple[str, ...]
    storage: str
    groups: dict[str, tuple[str, ...]]


def load_config(path: str | os.PathLike) -> RecordConfig:
    import yaml

    with open(path, encoding="utf-8") as stream:
        data = yaml.safe_load(stream) or {}
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown} (allowed: {sorted(_KEYS)})")
    groups = {g: tuple(str(t) for t in data.get(g) or ()) for g in GROUPS}
    for group, names in groups.items():
        for name in names:
            if not name or " " in name or name.endswith("/"):
                raise ValueError(f"{path}: {group}: {name!r} is not a topic name")
    return RecordConfig(tuple(str(v) for v in data.get("views") or ()),
                        str(data.get("storage") or "mcap"), groups)


def _resolve(name: str, namespace: str) -> str:
    return resolve_topic(name, namespace)


def topics(config: RecordConfig, namespace: str = "", groups: Iterable[str] = GROUPS,
           views: Sequence[str] | None = None) -> list[str]:
    """Resolved topic names of `groups`, {view} expanded, in file order without repeats."""
    views = tuple(views) if views is not None else config.views
    out: list[str] = []
    for group in groups:
        for name in config.groups[group]:
            for expanded in ([name.format(view=v) for v in views] if "{view}" in name
                             else [name]):
                topic = _resolve(expanded, namespace)
                if topic not in out:
                    out.append(topic)
    return out


def replay_topics(config: RecordConfig, namespace: str = "",
                  with_vl_features: bool = False) -> list[str]:
    """What a replay plays: the inputs, plus the recorded VL features when no VLM node runs."""
    out = topics(config, namespace, ("inputs",))
    if with_vl_features:
        if VL_FEATURES not in config.groups["outputs"]:
            raise ValueError(f"{VL_FEATURES} is not among the recorded outputs")
        out.append(_resolve(VL_FEATURES, namespace))
    return out


def load_qos_overrides(path: str | os.PathLike, namespace: str = "") -> dict[str, Any]:
    """The override file's {topic: profile}, keys moved into `namespace`."""
    import yaml

    with open(path, encoding="utf-8") as stream:
        data = yaml.safe_load(stream) or {}
    out = {}
    for topic, profile in data.items():
        if not str(topic).startswith("/"):
            raise ValueError(f"{path}: {topic!r} must be an absolute topic name")
        out[f"{namespace.rstrip('/')}{topic}" if namespace else str(topic)] = dict(profile)
    return out


def record_command(topic_names: Sequence[str], qos_path: str, output: str | None = None,
                   storage: str = "mcap", extra: Sequence[str] = ()) -> list[str]:
    cmd = ["ros2", "bag", "record"]
    if output:
        cmd += ["-o", output]
    cmd += ["-s", storage, "--qos-profile-overrides-path", qos_path, *extra]
    return cmd + ["--topics", *topic_names]  # last: --topics takes every word after it


def play_command(bag: str, topic_names: Sequence[str], qos_path: str, rate: float = 1.0,
                 clock_hz: float = 200.0) -> list[str]:
    return ["ros2", "bag", "play", bag, "--clock", f"{clock_hz:g}", "--rate", f"{rate:g}",
            "--qos-profile-overrides-path", qos_path, "--topics", *topic_names]


def build(args: argparse.Namespace) -> list[str]:

    config_dir = Path(args.config_dir) if args.config_dir else default_config_dir()
    namespace = normalize_namespace(args.namespace)
    config = load_config(config_dir / RECORD_CONFIG)
    groups = [g for g in GROUPS if not (g in ("outputs", "operator") and args.no_outputs
                                        or g == "monitoring" and args.no_monitoring)]
    views = [v for v in args.views.split(",") if v] if args.views else None
    qos_path = str(config_dir / QOS_OVERRIDES)
    if namespace:
        import yaml

        handle, qos_path = tempfile.mkstemp(prefix="asyncvla_qos_", suffix=".yaml")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            yaml.safe_dump(load_qos_overrides(config_dir / QOS_OVERRIDES, namespace), stream)
    return record_command(topics(config, namespace, groups, views), qos_path, args.output,
                          args.storage or config.storage, args.extra)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(prog="record", description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", help="bag directory (default: ros2 bag's timestamped "
                        "folder)")
    parser.add_argument("--namespace", default="", help="namespace the nodes were launched in")
    parser.add_argument("--views", default="", help="comma-separated view names (default: "
                        "record.yaml's)")
    parser.add_argument("--storage", default="", help="storage plugin (default: record.yaml's, "
                        "mcap)")
    parser.add_argument("--no-outputs", action="store_true", help="leave out the nodes' "
                        "outputs and the operator topics (a pure training-data recording)")
    parser.add_argument("--no-monitoring", action="store_true", help="leave out diagnostics, "
                        "logs and the numeric monitoring topics")
    parser.add_argument("--config-dir", default="", help="directory of record.yaml and "
                        "record_qos_overrides.yaml (default: the installed package's config/)")
    parser.add_argument("--dry-run", action="store_true", help="print the command, do not run")
    args = parser.parse_args(argv)
    args.extra = extra
    try:
        cmd = build(args)
    except (OSError, ValueError) as exc:
        print(f"[record] {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(shlex.join(cmd))
        return 0
    if shutil.which("ros2") is None:
        print("[record] `ros2` not found: source /opt/ros/jazzy/setup.bash (rosbag2 comes with "
              "the ROS distribution)", file=sys.stderr)
        return 2
    print(f"[record] {shlex.join(cmd)}", file=sys.stderr, flush=True)
    os.execvp(cmd[0], cmd)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
