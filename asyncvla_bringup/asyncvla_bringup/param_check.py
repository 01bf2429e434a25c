"""Check a parameter YAML against the parameters the AsyncVLA nodes declare, without a node.

    ros2 run asyncvla_bringup check_params my_lab.yaml [--only-overrides]

Finds what would otherwise show up only at start-up, or never: an unknown node key, a
misspelt parameter (rclpy ignores overrides nobody declares, so a typo silently keeps the
default), a replaced name (`robot_state_timeout`: the node stops, naming its successor), a type
the node refuses (`timing.action_rate_hz: 10` is an integer, the node declares a double and
exits), a value outside the declared range, a mixed-type list. `--only-overrides` also reports
entries that repeat the node's default (the package's own files list only what differs, so a
default is changed in one place: the node's spec).
"""
from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Any, Iterable

#: Parameters rclpy declares on every node.
STANDARD = {"use_sim_time": "BOOL", "start_type_description_service": "BOOL"}


def value_type(value: Any) -> str | None:
    """ROS parameter type name of a YAML value (rcl's rules); None for an empty list."""
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INTEGER"
    if isinstance(value, float):
        return "DOUBLE"
    if isinstance(value, str):
        return "STRING"
    if isinstance(value, list):
        if not value:
            return None
        kinds = {value_type(v) for v in value}
        if len(kinds) != 1 or kinds & {None} or any(isinstance(v, list) for v in value):
            raise ValueError(f"list {value!r} mixes types (every element must have the same)")
        return f"{kinds.pop()}_ARRAY"
    raise ValueError(f"value {value!r} has no ROS parameter type")


def _kinds_for_key(key: str) -> list:
    from asyncvla_bringup.catalog import NODES

    if key in ("/**", "**"):
        return list(NODES.values())
    name = key.rstrip("/").split("/")[-1]
    return [k for k in NODES.values() if k.node_name == name]


def check_data(data: Any, source: str = "<yaml>", only_overrides: bool = False) -> list[str]:
    """Problems found in parsed YAML `data` (empty list: none)."""
    if not isinstance(data, dict) or not data:
        return [f"{source}: not a mapping of node names to ros__parameters"]
    problems: list[str] = []
    for key, body in data.items():
        where = f"{source}: {key}"
        kinds = _kinds_for_key(str(key))
        if not kinds:
            from asyncvla_bringup.catalog import NODES

            problems.append(f"{where}: no AsyncVLA node is named {str(key).split('/')[-1]!r} "
                            f"(nodes: {sorted(k.node_name for k in NODES.values())})")
            continue
        if not isinstance(body, dict) or set(body) != {"ros__parameters"} \
                or not isinstance(body["ros__parameters"], dict):
            problems.append(f"{where}: expected exactly one key, ros__parameters, holding a "
                            "mapping")
            continue
        from asyncvla_bringup.catalog import flatten
        from asyncvla_common.param_spec import old_name_message

        params = flatten(body["ros__parameters"])
        specs_by_kind = [k.spec_map() for k in kinds]
        old = {name: new for k in kinds for name, new in k.old_names().items()}
        for name, value in params.items():
            if name in old and not any(name in s for s in specs_by_kind):
                problems.append(f"{where}: {old_name_message(name, old[name])}")
                continue
            problems += _check_one(where, name, value, specs_by_kind)
            if only_overrides and len(kinds) == 1 and name in specs_by_kind[0] \
                    and _same(value, specs_by_kind[0][name].default):
                problems.append(f"{where}: {name}: {value!r} is the node's default (list only "
                                "the values that differ)")
    return problems


def _same(value: Any, default: Any) -> bool:
    """A YAML value equals a spec default (lists element-wise, 1 == 1.0 not: a type differs)."""
    if isinstance(value, list) and isinstance(default, (list, tuple)):
        return len(value) == len(default) and all(_same(v, d) for v, d in zip(value, default))
    return type(value) is type(default) and value == default


def _check_one(where: str, name: str, value: Any, specs_by_kind: list[dict]) -> list[str]:
    try:
        got = value_type(value)
    except ValueError as exc:
        return [f"{where}: {name}: {exc}"]
    if name in STANDARD:
        return [] if got == STANDARD[name] else [
            f"{where}: {name}: {got} value {value!r}, the node declares {STANDARD[name]}"]
    specs = [s[name] for s in specs_by_kind if name in s]
    if not specs:
        known = sorted({n for s in specs_by_kind for n in s} | set(STANDARD))
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return [f"{where}: unknown parameter {name!r}{hint}"]
    out = []
    for spec in specs:
        want = spec.type_name
        if got is None and want.endswith("_ARRAY"):
            continue  # rcl leaves an empty list unset: the node keeps its default
        if got != want:
            out.append(f"{where}: {name}: {got} value {value!r}, the node declares {want}"
                       + (" (write it with a decimal point)" if (got, want) == ("INTEGER",
                                                                                "DOUBLE")
                          else ""))
        elif spec.min_value is not None and value < spec.min_value \
                or spec.max_value is not None and value > spec.max_value:
            out.append(f"{where}: {name}: {value!r} is outside the declared range "
                       f"[{spec.min_value}, {spec.max_value}]")
    return out


def check_file(path: str | Path, only_overrides: bool = False) -> list[str]:
    import yaml

    try:
        with open(path, encoding="utf-8") as stream:
            data = yaml.safe_load(stream)
    except (OSError, yaml.YAMLError) as exc:
        return [f"{path}: {exc}"]
    return check_data(data, str(path), only_overrides)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="check_params", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="parameter YAML files")
    parser.add_argument("--only-overrides", action="store_true",
                        help="also report entries that repeat the node's default")
    args = parser.parse_args(None if argv is None else list(argv))
    problems = [p for f in args.files for p in check_file(f, args.only_overrides)]
    for problem in problems:
        print(problem)
    if not problems:
        print(f"OK: {', '.join(args.files)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
