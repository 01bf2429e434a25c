"""Typed parameter configs without ROS (asyncvla_common.param_spec): a config's leaves are dotted
parameters in field order, values build the typed config back, every replaced name maps to one
successor, and a malformed config or an unknown name is an error, never ignored."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from asyncvla_common.param_spec import (build_config, config_values, flat_specs,
                                        old_name_message, old_name_problems, old_names, param,
                                        with_values)


@dataclass(frozen=True)
class Timing:
    rate_hz: float = param(10.0, "Ticks per second", read_only=True, min_value=0.5,
                           max_value=200.0, was="action_rate_hz")
    trigger: str = param("deadline", "What starts a run", was=("inference_trigger", "trig"))


@dataclass(frozen=True)
class Node:
    checkpoint: str = param("", "Checkpoint directory")
    limits: tuple[float, ...] = param([-1.0, 1.0], "Bounds", was="bounds")
    timing: Timing = field(default_factory=Timing)


def test_leaves_are_dotted_parameters_in_field_order_with_their_descriptors():
    specs = flat_specs(Node)
    assert [s.name for s in specs] == ["checkpoint", "limits", "timing.rate_hz",
                                       "timing.trigger"]
    rate = specs[2]
    assert (rate.default, rate.type_name, rate.read_only, rate.min_value, rate.max_value) == \
        (10.0, "DOUBLE", True, 0.5, 200.0)
    # the ROS default of a list stays a list (what rclpy declares); the config holds a tuple
    assert specs[1].default == [-1.0, 1.0] and specs[1].type_name == "DOUBLE_ARRAY"
    assert Node().limits == (-1.0, 1.0)


def test_values_build_the_typed_config_and_back():
    cfg = build_config(Node, {"timing.rate_hz": 20.0, "limits": [0.0, 2.0]})
    assert cfg.timing.rate_hz == 20.0 and cfg.timing.trigger == "deadline"
    assert cfg.limits == (0.0, 2.0)  # a tuple: the config is frozen and hashable
    assert config_values(cfg) == {"checkpoint": "", "limits": [0.0, 2.0],
                                  "timing.rate_hz": 20.0, "timing.trigger": "deadline"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.timing.rate_hz = 1.0  # type: ignore[misc]


def test_with_values_refuses_an_unknown_name():
    cfg = with_values(Node(), {"timing.trigger": "tick"})
    assert cfg.timing.trigger == "tick" and cfg.timing.rate_hz == 10.0
    with pytest.raises(KeyError, match="timing.rate"):
        with_values(Node(), {"timing.rate": 1.0})


def test_every_replaced_name_maps_to_its_successor_with_a_one_line_message():
    assert old_names(Node) == {"bounds": "limits", "action_rate_hz": "timing.rate_hz",
                               "inference_trigger": "timing.trigger", "trig": "timing.trigger"}
    message = old_name_message("action_rate_hz", "timing.rate_hz")
    assert "\n" not in message and "'action_rate_hz'" in message and "timing.rate_hz" in message
    # only replaced names given are reported (a current name or an unknown one is not this check)
    assert old_name_problems(["timing.rate_hz", "bounds", "other"], old_names(Node)) == \
        [old_name_message("bounds", "limits")]


def test_a_name_replaced_twice_or_a_field_that_is_no_parameter_is_an_error():
    @dataclass(frozen=True)
    class Twice:
        a: int = param(1, "a", was="x")
        b: int = param(2, "b", was="x")

    with pytest.raises(ValueError, match="'x' is replaced twice"):
        old_names(Twice)

    @dataclass(frozen=True)
    class Plain:
        a: int = 1

    with pytest.raises(TypeError, match="Plain.a"):
        flat_specs(Plain)
