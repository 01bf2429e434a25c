"""Node parameters as data, without ROS: `ParamSpec` and typed, grouped configs built from them.

Why ROS-free: launch files, the YAML checker and tests read every node's names, defaults, types
and ranges without starting a node (and without rclpy, which a training machine may lack).
`params.py` is the rclpy side: it declares these specs on a node.

A node's parameters are one frozen dataclass, nested by concern (``timing``, ``freshness``,
``guard``, ``topics``, ...). Each leaf field is made with `param` (default, description, range,
read-only, the old flat name it replaces); a nested dataclass field is a group, and its leaves
are the dotted ROS parameters ``group.field`` (``timing.action_rate_hz``), which a parameter
YAML writes as nested maps. `flat_specs` lists them as ParamSpec, `build_config` turns declared
values back into the typed config the node hands to its core, `old_names` maps every replaced
name to its successor so a node and the YAML checker refuse the old one with a one-line message
instead of ignoring it.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

#: Where `param` keeps a field's spec in `dataclasses.Field.metadata`.
_SPEC = "asyncvla_param"
#: ... and the flat names it replaces.
_WAS = "asyncvla_was"


@dataclass(frozen=True)
class ParamSpec:
    """One node parameter: what `declare` gets, as data."""

    name: str
    default: Any
    description: str
    read_only: bool = False
    min_value: float | int | None = None
    max_value: float | int | None = None
    #: ROS type name for a declaration without a value (an empty list, whose type cannot be
    #: inferred), e.g. "STRING_ARRAY"; otherwise the type is the default's.
    param_type: str | None = None
    #: Default computed from the values declared before this one (by name); `default` is what
    #: it gives when those keep their own defaults.
    default_from: Callable[[dict[str, Any]], Any] | None = None

    @property
    def type_name(self) -> str:
        """The ROS parameter type's name (rcl_interfaces ParameterType), e.g. "DOUBLE"."""
        return self.param_type or value_type_name(self.default)

    @property
    def type(self) -> Any:
        """The rclpy `Parameter.Type` (imports rclpy)."""
        from rclpy.parameter import Parameter

        return Parameter.Type[self.type_name]

    def renamed(self, name: str) -> "ParamSpec":
        return dataclasses.replace(self, name=name)

    def as_field(self, was: str | tuple[str, ...] = ()) -> Any:
        """This spec as a dataclass field (a shared spec used as a group's field)."""
        return _field(self, was)


def value_type_name(value: Any) -> str:
    """ROS parameter type name of a Python default (lists: by their first element)."""
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INTEGER"
    if isinstance(value, float):
        return "DOUBLE"
    if isinstance(value, str):
        return "STRING"
    if isinstance(value, (list, tuple)) and value:
        return f"{value_type_name(value[0])}_ARRAY"
    raise ValueError(f"{value!r} has no ROS parameter type (give param_type)")


def param(default: Any, description: str, *, read_only: bool = False,
          min_value: float | int | None = None, max_value: float | int | None = None,
          was: str | tuple[str, ...] = ()) -> Any:
    """A config field that is a ROS parameter. `was`: the flat name(s) it replaces (refused,
    naming this one, when a YAML or launch file still gives them)."""
    return _field(ParamSpec("", default, description, read_only, min_value, max_value), was)


def _field(spec: ParamSpec, was: str | tuple[str, ...]) -> Any:
    default = spec.default
    metadata = {_SPEC: spec, _WAS: (was,) if isinstance(was, str) else tuple(was)}
    if isinstance(default, (list, tuple)):
        # frozen configs hold tuples; the ROS default stays a list (what rclpy declares)
        return dataclasses.field(default=tuple(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _groups(cls: type) -> Iterable[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        yield f, hints[f.name]


def flat_specs(cls: type, prefix: str = "") -> tuple[ParamSpec, ...]:
    """Every leaf of config class `cls` as a ParamSpec named by its dotted path, in field
    order; TypeError for a field that is neither a `param` nor a nested config."""
    out: list[ParamSpec] = []
    for f, hint in _groups(cls):
        if _SPEC in f.metadata:
            spec = f.metadata[_SPEC]
            default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
            out.append(dataclasses.replace(spec, name=prefix + f.name, default=default))
        elif dataclasses.is_dataclass(hint):
            out += flat_specs(hint, f"{prefix}{f.name}.")
        else:
            raise TypeError(f"{cls.__name__}.{f.name}: neither param(...) nor a config group")
    return tuple(out)


def build_config(cls: type, values: Mapping[str, Any], prefix: str = "") -> Any:
    """The config `cls` from {dotted name: value} (declared values); a missing name keeps its
    default, lists become tuples."""
    kwargs: dict[str, Any] = {}
    for f, hint in _groups(cls):
        name = prefix + f.name
        if _SPEC in f.metadata:
            if name in values:
                value = values[name]
                kwargs[f.name] = tuple(value) if isinstance(value, (list, tuple)) else value
        else:
            kwargs[f.name] = build_config(hint, values, name + ".")
    return cls(**kwargs)


def config_values(config: Any, prefix: str = "") -> dict[str, Any]:
    """{dotted name: value} of a config instance (the inverse of `build_config`)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if _SPEC in f.metadata:
            out[prefix + f.name] = list(value) if isinstance(value, tuple) else value
        else:
            out.update(config_values(value, f"{prefix}{f.name}."))
    return out


def with_values(config: Any, values: Mapping[str, Any]) -> Any:
    """A copy of `config` with {dotted name: value} changed (tests, tools); KeyError names an
    unknown parameter instead of ignoring it."""
    current = config_values(config)
    unknown = sorted(set(values) - set(current))
    if unknown:
        raise KeyError(f"{type(config).__name__} has no parameter(s) {unknown}")
    return build_config(type(config), {**current, **values})


def old_names(cls: type, prefix: str = "") -> dict[str, str]:
    """{replaced name: the dotted parameter that replaces it} from the fields' `was`."""
    out: dict[str, str] = {}
    for f, hint in _groups(cls):
        if _SPEC in f.metadata:
            for old in f.metadata[_WAS]:
                if old in out:
                    raise ValueError(f"{old!r} is replaced twice")
                out[old] = prefix + f.name
        else:
            out.update(old_names(hint, f"{prefix}{f.name}."))
    return out


def old_name_message(old: str, new: str) -> str:
    """The one line a node stops with (and the YAML checker reports) for a replaced name."""
    return (f"parameter {old!r} was replaced by {new!r}: remove {old} from the YAML or launch "
            f"file and set {new}")


def old_name_problems(given: Iterable[str], replaced: Mapping[str, str]) -> list[str]:
    """`old_name_message` for each given name that is a replaced one, in the order given."""
    return [old_name_message(name, replaced[name]) for name in given if name in replaced]


def spec_table(specs: Iterable[ParamSpec]) -> dict[str, ParamSpec]:
    """{name: spec}; raise ValueError on a duplicate name."""
    table: dict[str, ParamSpec] = {}
    for spec in specs:
        if spec.name in table:
            raise ValueError(f"parameter {spec.name!r} is declared twice")
        table[spec.name] = spec
    return table


def select_specs(table: Iterable[ParamSpec], names: Iterable[str]) -> tuple[ParamSpec, ...]:
    """The specs named `names` from another node's table: one definition of a shared knob
    (KeyError names a missing one)."""
    by_name = {s.name: s for s in table}
    return tuple(by_name[n] for n in names)
