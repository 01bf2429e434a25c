"""What each launch file starts, with which parameters (catalog.plan: runs without `launch`).

The launch files only declare their role's arguments and hand the values to catalog.plan, so
the decisions (nodes, parameter files, typed overrides, gates, the bag player) are tested here
on every machine; test_bringup_launch.py checks the launch files themselves where launch_ros is
importable.
"""
from __future__ import annotations

import inspect
import os
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from asyncvla_bringup import catalog

CONFIG = Path(__file__).resolve().parent.parent / "config"
LAUNCH = Path(__file__).resolve().parent.parent / "launch"
CHECKPOINT = {"checkpoint": "/data/policy"}
NEEDS_CHECKPOINT = {"robot", "replay", "action"}


def _plan(role, **values):
    return catalog.plan(role, values, CONFIG)


def test_every_launch_file_has_a_role():
    files = sorted(p.name for p in LAUNCH.glob("*.launch.py"))
    assert files == sorted([r.launch_file for r in catalog.ROLES.values()] + ["monitor.launch.py"])
    for role in catalog.ROLES.values():
        text = (LAUNCH / role.launch_file).read_text()
        assert f'describe("{role.name}"' in text


@pytest.mark.parametrize("role", sorted(catalog.ROLES))
def test_defaults(role):
    base = CHECKPOINT if role in NEEDS_CHECKPOINT else {}
    plan = _plan(role, **base)
    expected = [key for key, gate in catalog.ROLES[role].nodes
                if not gate or catalog.parse_bool(gate, catalog.ROLES[role].arg(gate).default)]
    assert [n.key for n in plan.nodes] == expected
    sim = role == "replay"
    for node in plan.nodes:
        kind = catalog.NODES[node.key]
        assert (node.package, node.executable, node.name) == \
            (kind.package, kind.executable, kind.node_name)
        assert node.namespace == ""
        assert node.ros_arguments == ["--log-level", "info"]
        assert node.parameters[0] == str(CONFIG / kind.config)
        assert os.path.isfile(node.parameters[0])
        expected_overrides = {"use_sim_time": sim}
        if node.key == "action":
            expected_overrides.update(checkpoint="/data/policy")
            if role == "replay":
                expected_overrides["safety.enabled_at_start"] = True
        if node.key == "vlm" and role in NEEDS_CHECKPOINT:
            expected_overrides.update(policy_checkpoint="/data/policy")
        assert node.overrides == expected_overrides
    assert plan.commands == []  # no bag:= given


@pytest.mark.parametrize("role", sorted(NEEDS_CHECKPOINT))
def test_checkpoint_is_required(role, tmp_path):
    with pytest.raises(ValueError, match="checkpoint:="):
        _plan(role)
    # ... unless a parameter file gives it.
    extra = tmp_path / "lab.yaml"
    extra.write_text("/**/asyncvla_action_node:\n  ros__parameters:\n"
                     "    checkpoint: /data/from_file\n")
    plan = _plan(role, params_file=str(extra))
    assert plan.node("action").parameters[1] == str(extra)


def test_overrides_reach_the_nodes_with_the_declared_types(tmp_path):
    extra = tmp_path / "lab.yaml"
    extra.write_text("/**/robot_bridge:\n  ros__parameters:\n    wire:\n"
                     "      endpoint: tcp://10.0.0.2:5556\n")
    plan = _plan("robot", checkpoint="/data/policy", model_path="/data/qwen",
                 adapter="/data/lora", prompt="yes", vl_period="1", action_rate_hz="20",
                 max_vl_age="0.5", vlm_device="cuda:0", action_device="cuda:1",
                 namespace="arm1/", log_level="WARN", use_sim_time="true",
                 params_file=str(extra))
    vlm, action = plan.node("vlm"), plan.node("action")
    assert vlm.overrides == {"model.path": "/data/qwen", "model.adapter_path": "/data/lora",
                             "prompt": "yes", "timing.target_period": 1.0,
                             "model.device": "cuda:0", "policy_checkpoint": "/data/policy",
                             "use_sim_time": True}
    # "1" -> 1.0: the node declares a double
    assert type(vlm.overrides["timing.target_period"]) is float
    assert type(vlm.overrides["prompt"]) is str            # "yes" stays a string
    assert action.overrides == {"checkpoint": "/data/policy", "timing.action_rate_hz": 20.0,
                                "freshness.max_vl_age": 0.5, "expert.device": "cuda:1",
                                "use_sim_time": True}
    assert type(action.overrides["timing.action_rate_hz"]) is float
    for node in plan.nodes:
        assert node.namespace == "/arm1"
        assert node.ros_arguments == ["--log-level", "warn"]
        assert node.parameters[1] == str(extra)  # after the package file, before the arguments
    assert plan.node("camera_bridge").overrides == {"use_sim_time": True}


@pytest.mark.parametrize("role", ["robot", "replay", "vlm"])
def test_checkpoint_reaches_the_vlm_node_too(role):
    """checkpoint:= alone gives a working pair: the VLM node serves that policy's VL settings."""
    plan = _plan(role, checkpoint="/data/policy")
    assert plan.node("vlm").overrides["policy_checkpoint"] == "/data/policy"
    if role != "vlm":
        assert plan.node("action").overrides["checkpoint"] == "/data/policy"
    assert "policy_checkpoint" not in _plan("vlm").node("vlm").overrides


def test_single_node_roles_name_the_device_argument_device():
    assert _plan("vlm", device="cpu").node("vlm").overrides["model.device"] == "cpu"
    assert _plan("action", device="cuda", **CHECKPOINT).node(
        "action").overrides["expert.device"] == "cuda"


@pytest.mark.parametrize("role, values, nodes", [
    ("vlm", {"camera_bridge": "true"}, ["vlm", "camera_bridge"]),
    ("action", {"bridges": "false"}, ["action", "camera_bridge"]),
    ("action", {"bridges": "false", "camera_bridge": "false"}, ["action"]),
    ("action", {"camera_bridge": "0"}, ["action", "robot_bridge", "sensor_bridge"]),
    ("replay", {"run_vlm": "false"}, ["action"]),
])
def test_gates(role, values, nodes):
    base = CHECKPOINT if role in NEEDS_CHECKPOINT else {}
    assert [n.key for n in _plan(role, **base, **values).nodes] == nodes


@pytest.mark.parametrize("values, message", [
    ({"action_rate_hz": "fast"}, "is not a valid double"),
    ({"action_rate_hz": "500"}, r"outside \[0.5, 200.0\]"),
    ({"action_rate_hz": "nan"}, "is not a valid double"),
    ({"max_vl_age": "-1"}, "outside"),
    ({"log_level": "loud"}, "log_level"),
    ({"namespace": "arm 1"}, "not a valid ROS namespace"),
    ({"use_sim_time": "maybe"}, "not a boolean"),
    ({"bridges": "perhaps"}, "not a boolean"),
    ({"params_file": "/nonexistent/lab.yaml"}, "does not exist"),
    ({"model_path": "/x"}, "has no argument"),  # the VLM does not run in action.launch.py
])
def test_bad_values_stop_the_launch(values, message):
    with pytest.raises(ValueError, match=message):
        _plan("action", **CHECKPOINT, **values)


def test_a_failing_bag_player_stops_the_launch_with_its_reason():
    """`ros2 bag play` exits non-zero when it cannot play (a missing bag: rosbag2 raises and the
    CLI returns 1): the launch must then shut down, not leave the nodes waiting on /clock."""
    (cmd,) = _plan("replay", bag="/nonexistent/bag", **CHECKPOINT).commands
    reason = catalog.command_exit_reason(cmd, 1)
    assert "`ros2 bag play` exited with code 1" in reason and "/clock" in reason
    assert catalog.command_exit_reason(cmd, 0) == ""  # played to the end: nodes stay up
    assert "code -2" in catalog.command_exit_reason(cmd, -2)  # killed by a signal


def test_replay_starts_the_bag_player(tmp_path):
    plan = _plan("replay", bag="/bags/run01", rate="0.5", clock_hz="100", namespace="arm1",
                 **CHECKPOINT)
    assert [n.key for n in plan.nodes] == ["vlm", "action"]
    (cmd,) = plan.commands
    assert cmd[:4] == ["ros2", "bag", "play", "/bags/run01"]
    assert cmd[cmd.index("--clock") + 1] == "100" and cmd[cmd.index("--rate") + 1] == "0.5"
    qos = cmd[cmd.index("--qos-profile-overrides-path") + 1]
    assert os.path.isfile(qos)
    topics = cmd[cmd.index("--topics") + 1:]
    assert "/arm1/camera/view1/image_raw/compressed" in topics
    assert "/arm1/sensor/force_oct" in topics and "/arm1/robot/joint_states" in topics
    assert not any("vl_features" in t or "action_chunk" in t or "enable" in t for t in topics)
    # Without the VLM node the recorded VL features are played to the action node.
    plan = _plan("replay", bag="/bags/run01", run_vlm="false", **CHECKPOINT)
    assert "/asyncvla/vl_features" in plan.commands[0]
    with pytest.raises(ValueError, match="rate"):
        _plan("replay", bag="/bags/run01", rate="0", **CHECKPOINT)


def test_monitor_plan():
    share = CONFIG.parent
    plan = catalog.monitor_plan({}, share)
    aggregator, rqt = plan.nodes
    assert (aggregator.package, aggregator.executable) == ("diagnostic_aggregator",
                                                          "aggregator_node")
    assert os.path.isfile(aggregator.parameters[0])
    assert rqt.arguments[0] == "--perspective-file" and os.path.isfile(rqt.arguments[1])
    assert [n.key for n in catalog.monitor_plan({"rqt": "false"}, share).nodes] == ["aggregator"]
    with pytest.raises(ValueError):
        catalog.monitor_plan({"namespace": "x"}, share)


@pytest.mark.parametrize("key", sorted(catalog.NODES))
def test_named_nodes_exist_as_entry_points(key):
    """The executable each launch file names is a console script of its package, and it is the
    node whose parameter table the catalog uses (its own module's, or the config module it
    declares from)."""
    kind = catalog.NODES[key]
    matches = [ep for ep in entry_points(group="console_scripts")
               if ep.name == kind.executable and ep.dist is not None
               and ep.dist.name.replace("-", "_") == kind.package]
    assert len(matches) == 1, f"{kind.package} has no console script {kind.executable}"
    main = matches[0].load()
    module = inspect.getmodule(main)
    table_module = kind.table.split(":")[0]
    assert module.__name__ == table_module or \
        f"from {table_module} import" in inspect.getsource(module)
    assert f'"{kind.node_name}"' in inspect.getsource(module)  # the name the node gives itself
    # Where the workspace is built, ros2 run / launch_ros find it under lib/<package>/.
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_prefix
        prefix = get_package_prefix(kind.package)
    except (ImportError, PackageNotFoundError):
        pytest.skip(f"{kind.package} is not in the ament index (workspace not built)")
    assert os.access(os.path.join(prefix, "lib", kind.package, kind.executable), os.X_OK)
