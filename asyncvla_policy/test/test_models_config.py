"""PolicyConfig & co.: original defaults, JSON round trip, validation and schema version checks."""
from __future__ import annotations

import json
import os
import sys

import pytest

# Run from a plain checkout: put the package dir first; pytest's importlib mode may have registered
# the ROS package *directory* as a namespace package "asyncvla_training" - drop it for the real one.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
if getattr(sys.modules.get("asyncvla_training"), "__file__", "") is None:
    del sys.modules["asyncvla_training"]

from asyncvla_policy.config import (  # noqa: E402
    CONFIG_SCHEMA_VERSION,
    ActionExpertConfig,
    PolicyConfig,
    SensorEncoderConfig,
    VLConfig,
)
from asyncvla_policy.config import tiny_policy_config  # noqa: E402


def test_seed_defaults() -> None:
    cfg = PolicyConfig()
    assert (cfg.sensor.window, cfg.sensor.in_channels) == (65, 1026)
    assert cfg.sensor.conv_channels == (512, 1024, 1024, 1024)
    assert cfg.sensor.output_length() == 5  # 65 -> 33 -> 17 -> 9 -> 5
    assert (cfg.expert.hidden_dim, cfg.expert.num_layers, cfg.expert.num_heads) == (1024, 4, 8)
    assert (cfg.horizon, cfg.action_dim, cfg.vl_dim) == (8, 7, 2048)


def test_defaults_match_project_conventions() -> None:
    conventions = pytest.importorskip("asyncvla_core.conventions")
    cfg = PolicyConfig()
    assert cfg.robot_state_dim == conventions.ROBOT_STATE_DIM
    assert cfg.sensor.in_channels == conventions.SENSOR_CHANNELS
    assert cfg.sensor.window == conventions.DEFAULT_SENSOR_WINDOW
    assert (cfg.horizon, cfg.action_dim) == (conventions.DEFAULT_HORIZON, conventions.ACTION_DIM)


@pytest.mark.parametrize("cfg", [PolicyConfig(), tiny_policy_config(vl_dim=64, fusion="gated")])
def test_json_round_trip(cfg: PolicyConfig, tmp_path) -> None:
    path = tmp_path / "cfg.json"
    cfg.save(path)
    loaded = PolicyConfig.load(path)
    assert loaded == cfg
    assert isinstance(loaded.sensor.conv_channels, tuple)
    assert json.loads(path.read_text())["schema_version"] == CONFIG_SCHEMA_VERSION


def test_sub_config_round_trips() -> None:
    for cfg in (VLConfig(image_width=320), SensorEncoderConfig(sensor_dim=16), ActionExpertConfig(hidden_dim=64)):
        assert type(cfg).from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"fusion": "sum"}, "fusion must be one of"),
        ({"horizon": 0}, "horizon must be a positive integer"),
        ({"action_dim": 7.5}, "action_dim must be a positive integer"),
        ({"expert": {"hidden_dim": 30, "num_heads": 8}}, "divisible by num_heads"),
        ({"sensor": {"window": 3, "kernel_size": 5, "padding": 0}}, "too short"),
        ({"sensor": {"dropout": 1.5}}, "dropout must be a number in [0, 1)"),
        ({"sensor": {"conv_channels": []}}, "conv_channels must be a non-empty"),
    ],
)
def test_validation_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace(")", r"\)")):
        PolicyConfig.from_dict(kwargs)


def test_unknown_field_rejected() -> None:
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['horizn'\]"):
        PolicyConfig.from_dict({"horizn": 8})
    with pytest.raises(ValueError, match="unknown field"):
        PolicyConfig.from_dict({"sensor": {"widow": 65}})


@pytest.mark.parametrize(
    "version, message",
    [(CONFIG_SCHEMA_VERSION + 1, "newer than the supported"), (0, "unknown schema_version"), ("1", "must be an integer")],
)
def test_schema_version_checked(version: object, message: str) -> None:
    data = PolicyConfig().to_dict()
    data["schema_version"] = version
    with pytest.raises(ValueError, match=message):
        PolicyConfig.from_dict(data)


def test_bad_json_is_value_error() -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        PolicyConfig.from_json("{not json")
