"""The parameter YAMLs against the parameters the nodes declare (their specs).

A typo, a wrong type (int vs float vs string vs list), a value out of range, a replaced name or
an unknown node key in config/*.yaml fails here, statically (param_check) and through rclpy
itself (a node declares its table with the YAML as --params-file, as at start-up). The package's
YAMLs list only what differs from the nodes' defaults (a default lives in one place, the node's
spec): an entry that repeats a default fails too.
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


def _is_topic(name: str) -> bool:
    """Topic parameters: ``topics.<name>`` in the typed configs, ``<name>_topic`` elsewhere."""
    return name.startswith("topics.") or name.endswith("_topic")


def _load(name: str) -> dict:
    return yaml.safe_load((CONFIG / name).read_text())


def _node_params(name: str, kind: catalog.NodeKind) -> dict:
    """What the YAML itself gives the node (dotted names)."""
    return catalog.yaml_node_parameters(CONFIG / name, kind.node_name)


def _start_values(name: str, kind: catalog.NodeKind) -> dict:
    """What the node starts with: its defaults, then the YAML."""
    return catalog.effective_parameters(kind, [CONFIG / name])


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
            assert param_check.value_type(spec.default) == spec.type_name
        if spec.min_value is not None:
            assert spec.default >= spec.min_value, f"{key}.{spec.name} default below its range"
        if spec.max_value is not None:
            assert spec.default <= spec.max_value, f"{key}.{spec.name} default above its range"


@pytest.mark.parametrize("name", sorted(PARAM_FILES))
def test_yaml_matches_the_tables_statically(name):
    """Known names, declared types and ranges, and only values that differ from the default
    (a node with nothing to override has no entry)."""
    assert param_check.check_file(CONFIG / name, only_overrides=True) == []
    keys = list(_load(name))
    assert keys and all(k.startswith("/**/") for k in keys), "keys /**/<node> match anywhere"
    assert set(k.split("/")[-1] for k in keys) <= set(
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
                assert set(expected) <= set(node._parameter_overrides), \
                    sorted(set(expected) - set(node._parameter_overrides))
                for param, value in expected.items():
                    got = values[param]
                    if value == [] and got == []:
                        continue
                    assert got == value and type(got) is type(value) or \
                        isinstance(got, (list, tuple)) and list(got) == value, (param, got, value)
                    assert node.get_parameter(param).type_.name == \
                        kind.spec_map()[param].type_name or value == []
            finally:
                node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_checker_catches_typos_types_ranges_old_names_and_unknown_nodes(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "/**/asyncvla_action_node:\n  ros__parameters:\n"
        "    timing:\n      action_rate_hz: 10\n"  # int where the node declares a double
        "    freshness:\n      max_vl_agee: 1.0\n"  # typo
        "    blending:\n"
        "      old_weight: 2.0\n"                   # outside [0, 0.99]
        "      mode: [latest_only]\n"               # list where the node declares a string
        "    joint_names: [a, 1]\n"                 # mixed list
        "    robot_state_timeout: 0.2\n"            # a replaced name
        "/**/asyncvla_vlm_nod:\n  ros__parameters: {}\n")  # unknown node
    problems = param_check.check_file(bad)
    text = "\n".join(problems)
    assert len(problems) == 7, text
    assert "timing.action_rate_hz: INTEGER value 10, the node declares DOUBLE" in text
    assert ("unknown parameter 'freshness.max_vl_agee' (did you mean "
            "'freshness.max_vl_age'?)") in text
    assert "blending.old_weight: 2.0 is outside the declared range" in text
    assert "blending.mode: STRING_ARRAY value" in text
    assert "joint_names: list ['a', 1] mixes types" in text
    assert ("parameter 'robot_state_timeout' was replaced by 'freshness.robot_state_max_age'"
            in text)
    assert "no AsyncVLA node is named 'asyncvla_vlm_nod'" in text
    # The command line tool says the same and fails.
    assert param_check.main([str(bad)]) == 1
    assert param_check.main([str(CONFIG / "action_node.yaml"), "--only-overrides"]) == 0


def test_checker_reports_an_entry_that_repeats_the_default():
    data = _load("action_node.yaml")
    params = data["/**/asyncvla_action_node"]["ros__parameters"]
    params["freshness"] = {"max_vl_age": 1.0, "sensor_max_age": 0.07}  # the default; not
    problems = param_check.check_data(data, "copy", only_overrides=True)
    assert len(problems) == 1 and "freshness.max_vl_age: 1.0 is the node's default" in \
        problems[0], problems
    assert param_check.check_data(data, "copy", only_overrides=False) == []


#: The nodes whose parameters moved from flat names to a typed, grouped config.
CONVERTED = ["action", "camera_bridge", "executor", "meca500", "robot_bridge", "sensor_bridge",
             "vlm"]


@pytest.mark.parametrize("key", CONVERTED)
def test_every_old_flat_name_maps_to_a_declared_parameter(key):
    """One name per fact: each replaced name points at a parameter the node declares, and no
    replaced name is still declared (robot_state_max_age and robot_state_timeout, which meant
    the same, are one parameter now)."""
    kind = catalog.NODES[key]
    old, declared = kind.old_names(), kind.spec_map()
    assert old and set(old.values()) <= set(declared)
    assert not set(old) & set(declared)
    if key in ("action", "executor"):
        assert old["robot_state_max_age"] == old["robot_state_timeout"] == \
            "freshness.robot_state_max_age"


@pytest.mark.parametrize("key", CONVERTED)
def test_a_node_stops_on_an_old_name_with_one_line_naming_the_new_one(tmp_path, key):
    """What rclpy would ignore (an override nobody declares) stops the node instead."""
    import rclpy
    from rclpy.context import Context
    from rclpy.node import Node

    from asyncvla_common.params import declare_config

    kind = catalog.NODES[key]
    old, new = sorted(kind.old_names().items())[0]
    configs = {"action": "asyncvla_action_node.action_config:ActionNodeConfig",
               "executor": "asyncvla_executor.executor_config:ExecutorNodeConfig",
               "meca500": "asyncvla_bridges.meca500.driver_config:Meca500DriverConfig",
               "camera_bridge": "asyncvla_bridges.bridge_config:CameraBridgeConfig",
               "robot_bridge": "asyncvla_bridges.bridge_config:RobotBridgeConfig",
               "sensor_bridge": "asyncvla_bridges.bridge_config:SensorBridgeConfig",
               "vlm": "asyncvla_vlm_node.vlm_config:VLMNodeConfig"}
    module, attribute = configs[key].split(":")
    cls = getattr(__import__(module, fromlist=[attribute]), attribute)
    path = tmp_path / "old.yaml"
    value = kind.spec_map()[new].default
    path.write_text(yaml.safe_dump({f"/**/{kind.node_name}": {"ros__parameters": {
        old: list(value) if isinstance(value, tuple) else value}}}))

    def declare():
        context = Context()
        rclpy.init(args=["--ros-args", "--params-file", str(path)], context=context)
        try:
            node = Node(kind.node_name, context=context, start_parameter_services=False,
                        enable_rosout=False)
            try:
                return declare_config(node, cls)
            finally:
                node.destroy_node()
        finally:
            rclpy.shutdown(context=context)

    with pytest.raises(ValueError) as err:
        declare()
    assert str(err.value) == (f"parameter {old!r} was replaced by {new!r}: remove {old} "
                              f"from the YAML or launch file and set {new}")
    # the same file with the new (dotted) name starts, with the value it gives
    path.write_text(path.read_text().replace(f"{old}:", f"{new}:"))
    assert declare() is not None


def test_rclpy_refuses_the_int_for_float_the_checker_flags(tmp_path):
    """Why the type check matters: the node would not start."""
    import rclpy
    from rclpy.context import Context
    from rclpy.exceptions import InvalidParameterTypeException
    from rclpy.node import Node

    from asyncvla_common.params import declare_all

    path = tmp_path / "int.yaml"
    path.write_text("/**/asyncvla_action_node:\n  ros__parameters:\n"
                    "    timing:\n      action_rate_hz: 10\n")
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
    vlm = _start_values("vlm_node.yaml", catalog.NODES["vlm"])
    from asyncvla_vlm_node.view_topics import view_topics

    topics = view_topics(vlm["views.names"], vlm["views.image_topics"])
    assert len(vlm["views.names"]) == 5 and len(topics) == 5
    assert [t.split("/")[1] for t in topics] == vlm["views.names"]
    assert (vlm["views.resize_width"], vlm["views.resize_height"]) == (640, 360)
    assert vlm["prompt"] == "Insert the needle through the trocar into the eye phantom model"
    assert vlm["features.layer"] == -1
    action = _start_values("action_node.yaml", catalog.NODES["action"])
    assert action["timing.action_rate_hz"] == 10.0
    assert action["safety.enabled_at_start"] is False, "a robot must start disabled"
    # Horizon, action dim and sensor window come from the checkpoint: the defaults a new
    # policy is built with are the original system's.
    from asyncvla_core.conventions import DEFAULT_SENSOR_RATE_HZ
    from asyncvla_policy.config import PolicyConfig

    config = PolicyConfig()
    assert (config.horizon, config.action_dim) == (8, 7)
    assert config.sensor.window == 65 and DEFAULT_SENSOR_RATE_HZ == 650.0
    # The window (65 samples, 100 ms at 650 Hz) must pass the gap check: neighbouring samples
    # are 1.5 ms apart, the allowed gap several periods.
    assert action["freshness.sensor_max_gap"] >= 3 / DEFAULT_SENSOR_RATE_HZ
    camera = _start_values("bridges.yaml", catalog.NODES["camera_bridge"])
    assert camera["views.names"] == vlm["views.names"]
    assert len(camera["views.camera_keys"]) == len(camera["views.frame_ids"]) == 5


@pytest.mark.parametrize("key", sorted(catalog.NODES))
def test_yaml_topics_resolve_to_the_node_defaults(key):
    """Relative names in the YAMLs (so namespace:= moves them) equal the defaults at the root."""
    kind = catalog.NODES[key]
    params = _start_values(kind.config, kind)
    specs = kind.spec_map()
    checked = 0
    for name in filter(_is_topic, params):
        default, value = specs[name].default, params[name]
        if value.startswith("~"):
            assert value == default
        else:
            assert not value.startswith("/"), f"{name} should be relative to follow namespace:="
            assert names.resolve_topic(value) == default
        checked += 1
    if key == "vlm":
        from asyncvla_vlm_node.view_topics import view_topics

        topics = view_topics(params["views.names"], params["views.image_topics"])
        assert [names.resolve_topic(t) for t in topics] == \
            [f"/camera/{v}/image_raw/compressed" for v in params["views.names"]]
        checked += 1
    assert checked or key in ("robot_bridge", "sensor_bridge")  # they publish fixed names
