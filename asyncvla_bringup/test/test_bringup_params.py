"""The parameter YAMLs against the parameters the nodes declare (their module-level tables).

A typo, a wrong type (int vs float vs string vs list), a value out of range or an unknown node
key in config/*.yaml fails here, statically (param_check) and through rclpy itself (a node
declares its table with the YAML as --params-file, as at start-up). A parameter added to a
node's table without being added to its YAML fails too: the package's YAMLs list every
parameter with its default, so an operator sees every knob in one place.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from asyncvla_bringup import catalog, names, param_check

CONFIG = Path(__file__).resolve().parent.parent / "config"
PARAM_FILES = {"vlm_node.yaml": ["vlm"], "action_node.yaml": ["action"],
               "executor_node.yaml": ["executor"], "meca500_driver.yaml": ["meca500"],
               "bridges.yaml": ["camera_bridge", "robot_bridge", "sensor_bridge"]}
OTHER_FILES = {"record.yaml", "record_qos_overrides.yaml", "diagnostic_aggregator.yaml"}
TOPIC_PARAMS = {"vl_features_topic", "sensor_topic", "joint_state_topic", "pose_topic",
                "action_topic", "trajectory_topic", "enable_topic", "estop_topic",
                "safety_status_topic"}


def _load(name: str) -> dict:
    return yaml.safe_load((CONFIG / name).read_text())


def _node_params(name: str, kind: catalog.NodeKind) -> dict:
    return catalog.yaml_node_parameters(CONFIG / name, kind.node_name)


def test_every_config_file_is_classified():
    """A new YAML must be either a node parameter file (checked below) or a known other file."""
    assert {p.name for p in CONFIG.glob("*.yaml")} == set(PARAM_FILES) | OTHER_FILES
    used = {kind.config for kind in catalog.NODES.values()}
    assert used == set(PARAM_FILES)
    for name, keys in PARAM_FILES.items():
        assert sorted(k for k, kind in catalog.NODES.items() if kind.config == name) == \
            sorted(keys)


@pytest.mark.parametrize("key", sorted(catalog.NODES))
def test_parameter_table_is_consistent(key):
    specs = catalog.NODES[key].specs()
    names = [s.name for s in specs]
    assert len(names) == len(set(names)), f"{key}: duplicate parameter names"
    for spec in specs:
        assert spec.description.strip(), f"{key}.{spec.name} has no description"
        if spec.param_type is None:
            assert param_check.value_type(spec.default) == spec.type.name
        if spec.min_value is not None:
            assert spec.default >= spec.min_value, f"{key}.{spec.name} default below its range"
        if spec.max_value is not None:
            assert spec.default <= spec.max_value, f"{key}.{spec.name} default above its range"


@pytest.mark.parametrize("name", sorted(PARAM_FILES))
def test_yaml_matches_the_tables_statically(name):
    assert param_check.check_file(CONFIG / name, complete=True) == []
    keys = list(_load(name))
    assert all(k.startswith("/**/") for k in keys), "keys /**/<node> match in any namespace"
    assert sorted(k.split("/")[-1] for k in keys) == sorted(
        catalog.NODES[k].node_name for k in PARAM_FILES[name])


@pytest.mark.parametrize("name", sorted(PARAM_FILES))
@pytest.mark.parametrize("namespace", ["", "/arm1"])
def test_yaml_is_accepted_by_rclpy(name, namespace):
    """The node's own declarations with the YAML as --params-file: ROS checks type and range."""
    import rclpy
    from rclpy.context import Context
    from rclpy.node import Node

    from asyncvla_common.params import declare_all

    context = Context()
    rclpy.init(args=["--ros-args", "--params-file", str(CONFIG / name)], context=context)
    try:
        for key in PARAM_FILES[name]:
            kind = catalog.NODES[key]
            node = Node(kind.node_name, namespace=namespace, context=context,
                        start_parameter_services=False, enable_rosout=False)
            try:
                values = declare_all(node, kind.specs())
                expected = _node_params(name, kind)
                # Every YAML entry reached this node (the key matched its name and namespace).
                assert expected and set(expected) <= set(node._parameter_overrides), \
                    sorted(set(expected) - set(node._parameter_overrides))
                for param, value in expected.items():
                    got = values[param]
                    if value == [] and got == []:
                        continue
                    assert got == value and type(got) is type(value) or \
                        isinstance(got, (list, tuple)) and list(got) == value, (param, got, value)
                    assert node.get_parameter(param).type_.name == \
                        kind.spec_map()[param].type.name or value == []
            finally:
                node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_checker_catches_typos_types_ranges_and_unknown_nodes(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "/**/asyncvla_action_node:\n  ros__parameters:\n"
        "    action_rate_hz: 10\n"              # int where the node declares a double
        "    max_vl_agee: 1.0\n"                # typo
        "    blend_old_weight: 2.0\n"           # outside [0, 0.99]
        "    chunk_blending: [latest_only]\n"   # list where the node declares a string
        "    joint_names: [a, 1]\n"             # mixed list
        "/**/asyncvla_vlm_nod:\n  ros__parameters: {}\n")  # unknown node
    problems = param_check.check_file(bad)
    text = "\n".join(problems)
    assert len(problems) == 6, text
    assert "action_rate_hz: INTEGER value 10, the node declares DOUBLE" in text
    assert "unknown parameter 'max_vl_agee' (did you mean 'max_vl_age'?)" in text
    assert "blend_old_weight: 2.0 is outside the declared range" in text
    assert "chunk_blending: STRING_ARRAY value" in text
    assert "joint_names: list ['a', 1] mixes types" in text
    assert "no AsyncVLA node is named 'asyncvla_vlm_nod'" in text
    # The command line tool says the same and fails.
    assert param_check.main([str(bad)]) == 1
    assert param_check.main([str(CONFIG / "action_node.yaml"), "--complete"]) == 0


def test_checker_reports_a_parameter_missing_from_a_complete_file(tmp_path):
    data = _load("action_node.yaml")
    params = data["/**/asyncvla_action_node"]["ros__parameters"]
    del params["max_vl_age"]
    problems = param_check.check_data(data, "copy", complete=True)
    assert len(problems) == 1 and "['max_vl_age']" in problems[0]
    assert param_check.check_data(data, "copy", complete=False) == []


def test_rclpy_refuses_the_int_for_float_the_checker_flags(tmp_path):
    """Why the type check matters: the node would not start."""
    import rclpy
    from rclpy.context import Context
    from rclpy.exceptions import InvalidParameterTypeException
    from rclpy.node import Node

    from asyncvla_common.params import declare_all

    path = tmp_path / "int.yaml"
    path.write_text("/**/asyncvla_action_node:\n  ros__parameters:\n    action_rate_hz: 10\n")
    context = Context()
    rclpy.init(args=["--ros-args", "--params-file", str(path)], context=context)
    try:
        node = Node("asyncvla_action_node", context=context, start_parameter_services=False,
                    enable_rosout=False)
        with pytest.raises(InvalidParameterTypeException):
            declare_all(node, catalog.NODES["action"].specs())
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_seed_defaults():
    vlm = _node_params("vlm_node.yaml", catalog.NODES["vlm"])
    from asyncvla_vlm_node.view_topics import view_topics

    topics = view_topics(vlm["views"], vlm["image_topics"])
    assert len(vlm["views"]) == 5 and len(topics) == 5
    assert [t.split("/")[1] for t in topics] == vlm["views"]
    assert (vlm["resize_width"], vlm["resize_height"]) == (640, 360)
    assert vlm["prompt"] == "Insert the needle through the trocar into the eye phantom model"
    assert vlm["feature_layer"] == -1
    action = _node_params("action_node.yaml", catalog.NODES["action"])
    assert action["action_rate_hz"] == 10.0
    assert action["enabled_at_start"] is False, "a robot must start disabled"
    # Horizon, action dim and sensor window come from the checkpoint: the defaults a new
    # policy is built with are the original system's.
    from asyncvla_core.conventions import DEFAULT_SENSOR_RATE_HZ
    from asyncvla_policy.config import PolicyConfig

    config = PolicyConfig()
    assert (config.horizon, config.action_dim) == (8, 7)
    assert config.sensor.window == 65 and DEFAULT_SENSOR_RATE_HZ == 650.0
    # The window (65 samples, 100 ms at 650 Hz) must pass the gap check: neighbouring samples
    # are 1.5 ms apart, the allowed gap several periods.
    assert action["sensor_max_gap"] >= 3 / DEFAULT_SENSOR_RATE_HZ
    bridges = _load("bridges.yaml")
    camera = bridges["/**/camera_bridge"]["ros__parameters"]
    assert camera["view_names"] == vlm["views"]
    assert len(camera["camera_keys"]) == len(camera["frame_ids"]) == 5


@pytest.mark.parametrize("key", sorted(catalog.NODES))
def test_yaml_topics_resolve_to_the_node_defaults(key):
    """Relative names in the YAMLs (so namespace:= moves them) equal the defaults at the root."""
    kind = catalog.NODES[key]
    params = _node_params(kind.config, kind)
    specs = kind.spec_map()
    checked = 0
    for name in TOPIC_PARAMS & set(params):
        default, value = specs[name].default, params[name]
        if value.startswith("~"):
            assert value == default
        else:
            assert not value.startswith("/"), f"{name} should be relative to follow namespace:="
            assert names.resolve_topic(value) == default
        checked += 1
    if key == "vlm":
        from asyncvla_vlm_node.view_topics import view_topics

        topics = view_topics(params["views"], params["image_topics"])
        assert [names.resolve_topic(t) for t in topics] == \
            [f"/camera/{v}/image_raw/compressed" for v in params["views"]]
        checked += 1
    if key == "camera_bridge":
        assert names.resolve_topic(params["topic_prefix"]) == specs["topic_prefix"].default
        checked += 1
    assert checked or key in ("robot_bridge", "sensor_bridge")  # they publish fixed names
