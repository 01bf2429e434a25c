"""The launch files themselves, through ROS 2 `launch`/`launch_ros`.

`launch` and `launch_ros` have no PyPI wheel, so these tests skip on CI (docs/TESTING.md says
why and what covers the launch files' decisions there); a robot PC has them from apt. Every
launch file loads the way
`ros2 launch` loads it, declares its role's arguments, and builds its nodes with the defaults
and with overrides; the parameters launch_ros hands the nodes keep the
declared types; the executables resolve in the ament index; and action.launch.py is started for
real, its nodes checked over DDS (names, namespace, parameters from YAML and arguments).
"""
from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest
import yaml

try:
    import launch
    import launch_ros.actions  # noqa: F401
except ImportError as exc:  # noqa: F841
    pytest.skip(f"launch_ros is not importable ({exc}): no PyPI wheel exists; a ROS install "
                "has it from apt (ros-jazzy-launch-ros); see docs/TESTING.md",
                allow_module_level=True)
if not hasattr(launch, "LaunchDescription"):
    pytest.skip(f"the importable `launch` ({launch.__file__}) is not ROS 2 launch",
                allow_module_level=True)

from launch import LaunchContext  # noqa: E402
from launch.actions import (DeclareLaunchArgument, ExecuteProcess, OpaqueFunction,  # noqa: E402
                            RegisterEventHandler)
from launch.launch_description_sources.python_launch_file_utilities import (  # noqa: E402
    get_launch_description_from_python_launch_file)
from launch.utilities import perform_substitutions  # noqa: E402
from launch_ros.actions import Node  # noqa: E402

from asyncvla_bringup import catalog  # noqa: E402

LAUNCH = Path(__file__).resolve().parent.parent / "launch"
ROLES = {**{r.launch_file: r.args for r in catalog.ROLES.values()},
         "monitor.launch.py": catalog.MONITOR_ARGS}
CHECKPOINT = {"checkpoint": "/data/policy"}
OVERRIDES = {
    "robot.launch.py": {**CHECKPOINT, "action_rate_hz": "20", "prompt": "yes", "vl_period": "1",
                        "namespace": "arm1", "log_level": "debug", "vlm_device": "cpu"},
    "replay.launch.py": {**CHECKPOINT, "run_vlm": "false", "bag": "/bags/run01",
                         "max_vl_age": "0.5"},
    "vlm.launch.py": {"camera_bridge": "true", "device": "cpu", "adapter": "/data/lora"},
    "action.launch.py": {**CHECKPOINT, "bridges": "false", "use_sim_time": "true"},
    "monitor.launch.py": {"rqt": "false"},
}


def _materialize(path: Path, values: dict[str, str]) -> tuple[list, LaunchContext]:
    description = get_launch_description_from_python_launch_file(str(path))
    context = LaunchContext()
    context.launch_configurations.update(values)
    produced = []
    for entity in description.entities:
        if isinstance(entity, DeclareLaunchArgument):
            entity.visit(context)  # sets the default when not given
        elif isinstance(entity, OpaqueFunction):
            produced += entity.visit(context) or []
        else:
            raise AssertionError(f"unexpected top-level action {entity!r}")
    return produced, context


def _text(context, value) -> str:
    return perform_substitutions(context, value) if isinstance(value, list) else str(value)


def test_launch_files_declare_their_roles_arguments():
    assert sorted(p.name for p in LAUNCH.glob("*.launch.py")) == sorted(ROLES)
    for name, args in ROLES.items():
        description = get_launch_description_from_python_launch_file(str(LAUNCH / name))
        declared = description.get_launch_arguments()
        context = LaunchContext()
        assert [(a.name, _text(context, a.default_value)) for a in declared] == \
            [(a.name, a.default) for a in args], name
        assert all(a.description and a.description != "no description given" for a in declared)


@pytest.mark.parametrize("name", sorted(ROLES))
@pytest.mark.parametrize("variant", ["defaults", "overrides"])
def test_launch_file_builds_its_nodes(name, variant):
    needs = "checkpoint" in {a.name for a in ROLES[name]}
    values = dict(CHECKPOINT if needs else {}) if variant == "defaults" else OVERRIDES[name]
    produced, context = _materialize(LAUNCH / name, values)
    nodes = [a for a in produced if isinstance(a, Node)]
    if name == "monitor.launch.py":
        plan = catalog.monitor_plan(values, LAUNCH.parent)
    else:
        plan = catalog.plan(name.split(".")[0], values, LAUNCH.parent / "config")
    assert [(_text(context, n.node_package), _text(context, n.node_executable)) for n in nodes] \
        == [(p.package, p.executable) for p in plan.nodes]
    # + the LogInfo banner; each plan command is an ExecuteProcess with its exit handler
    assert len(produced) == len(nodes) + 2 * len(plan.commands) + 1
    processes = [a for a in produced
                 if isinstance(a, ExecuteProcess) and not isinstance(a, Node)]  # Node is one too
    assert [[_text(context, part) for part in p.cmd] for p in processes] == plan.commands
    assert sum(isinstance(a, RegisterEventHandler) for a in produced) == len(plan.commands)
    for node, expected in zip(nodes, plan.nodes):
        node._perform_substitutions(context)  # what Node.execute does before starting it
        assert node.node_name == (expected.namespace or "") + "/" + expected.name
        if name == "monitor.launch.py":
            continue
        # The overrides dict becomes a YAML file that launch_ros writes: the types must survive.
        files = [path for path, is_file in node._Node__expanded_parameter_arguments if is_file]
        assert files[:len(expected.parameters) - 1] == [os.path.normpath(p) for p in
                                                        expected.parameters[:-1]]
        written = yaml.safe_load(Path(files[-1]).read_text())
        (params,) = [body["ros__parameters"] for body in written.values()]
        assert params == expected.overrides
        assert {k: type(v) for k, v in params.items()} == \
            {k: type(v) for k, v in expected.overrides.items()}


def test_executables_resolve_like_launch_ros_does():
    from launch_ros.substitutions import ExecutableInPackage

    context = LaunchContext()
    for kind in catalog.NODES.values():
        path = ExecutableInPackage(kind.executable, kind.package).perform(context)
        assert os.access(path, os.X_OK), path


def test_bad_argument_stops_the_launch():
    with pytest.raises(ValueError, match="action_rate_hz"):
        _materialize(LAUNCH / "action.launch.py", {**CHECKPOINT, "action_rate_hz": "fast"})


RUNNER = textwrap.dedent("""
    import sys
    from launch import LaunchDescription, LaunchService
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    path, *pairs = sys.argv[1:]
    args = [tuple(p.split(":=", 1)) for p in pairs]
    service = LaunchService()
    service.include_launch_description(LaunchDescription([IncludeLaunchDescription(
        PythonLaunchDescriptionSource(path), launch_arguments=args)]))
    sys.exit(service.run())
""")


def test_action_launch_starts_its_nodes(processes, ros_env, tmp_path_factory):
    """action.launch.py for real: the action node and the three bridges come up in the
    namespace, with the YAML's values and the launch arguments' overrides."""
    import rclpy
    from rclpy.context import Context
    from rclpy.parameter_client import AsyncParameterClient

    from asyncvla_testing.assets import build_demo_assets

    assets = build_demo_assets(str(tmp_path_factory.mktemp("assets")))
    lab = tmp_path_factory.mktemp("lab") / "lab.yaml"
    lab.write_text("/**/camera_bridge:\n  ros__parameters:\n    wire:\n      port: 0\n"
                   "/**/sensor_bridge:\n  ros__parameters:\n    wire:\n      port: 0\n")
    proc = processes.start("launch", ["-c", RUNNER, str(LAUNCH / "action.launch.py"),
                                      f"checkpoint:={assets.checkpoint_dir}",
                                      "action_rate_hz:=20", "namespace:=lt",
                                      f"params_file:={lab}"])
    proc.wait_for_line("action node ready: 20.0 Hz", 120)
    for bridge in ("camera_bridge", "robot_bridge", "sensor_bridge"):
        proc.wait_for_line(f"{bridge}]: ready: listening on", 30)

    context = Context()
    rclpy.init(context=context, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    try:
        node = rclpy.create_node("bringup_launch_probe", context=context)
        executor = rclpy.executors.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        wanted = {(n, "/lt") for n in ("asyncvla_action_node", "camera_bridge", "robot_bridge",
                                       "sensor_bridge")}
        deadline = time.monotonic() + 20
        while not wanted <= set(node.get_node_names_and_namespaces()):
            assert time.monotonic() < deadline, node.get_node_names_and_namespaces()
            executor.spin_once(timeout_sec=0.1)
        client = AsyncParameterClient(node, "/lt/asyncvla_action_node")
        assert client.wait_for_services(timeout_sec=20)
        future = client.get_parameters(["timing.action_rate_hz", "topics.vl_features",
                                        "checkpoint", "safety.enabled_at_start"])
        executor.spin_until_future_complete(future, timeout_sec=20)
        values = [v for v in future.result().values]
        assert values[0].double_value == 20.0                      # launch argument, typed
        assert values[1].string_value == "asyncvla/vl_features"    # from config/action_node.yaml
        assert values[2].string_value == assets.checkpoint_dir
        assert values[3].bool_value is False                       # a robot starts disabled
        topics = dict(node.get_topic_names_and_types())
        assert "/lt/asyncvla/action_chunk" in topics and "/lt/robot/joint_states" in topics
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    assert proc.stop(timeout=15) is not None
    assert "Traceback" not in proc.output(), proc.output()[-3000:]


def test_a_failing_command_shuts_the_launch_down_with_the_reason(capfd, caplog):
    """launch_support wires catalog.command_exit_reason: a plan command that exits 3 stops a
    launch that would otherwise run for a minute (a stand-in for the nodes waiting on /clock)."""
    import sys

    from launch import LaunchDescription, LaunchService

    from asyncvla_bringup.launch_support import to_actions

    plan = catalog.Plan([], [[sys.executable, "-c", "import time; time.sleep(60)"],
                             [sys.executable, "-c", "raise SystemExit(3)"]])
    service = LaunchService()
    service.include_launch_description(LaunchDescription(to_actions(plan, "test:")))
    start = time.monotonic()
    service.run()
    assert time.monotonic() - start < 30
    out = capfd.readouterr()  # launch logs through `logging` (caplog under pytest) or the screen
    assert "exited with code 3" in out.out + out.err + caplog.text
