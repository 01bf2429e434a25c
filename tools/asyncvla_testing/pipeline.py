"""Start the pipeline's processes (sources, VLM node, action node) with the demo assets."""
from __future__ import annotations

import os

from asyncvla_testing.assets import DemoAssets
from asyncvla_testing.bridge_harness import flat_params, start_bridge
from asyncvla_testing.processes import ManagedProcess, ProcessGroup

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = os.path.join(HERE, "synthetic_sources.py")
BAG_PLAYER = os.path.join(HERE, "bag_player.py")
KINEMATIC_ROBOT = os.path.join(HERE, "kinematic_robot.py")


def ros_args(params: dict[str, object]) -> list[str]:
    """`--ros-args -p name:=value ...`; nested groups become dotted names (`flat_params`)."""
    out = ["--ros-args"]
    for name, value in flat_params(params).items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            value = "[" + ",".join(str(v) for v in value) + "]"
        out += ["-p", f"{name}:={value}"]
    return out


def start_sources(group: ProcessGroup, views: list[str], extra: list[str] | None = None,
                  name: str = "sources") -> ManagedProcess:
    return group.start(name, [SOURCES, "--views", ",".join(views), "--width", "160",
                              "--height", "96", *(extra or [])])


def start_bag_player(group: ProcessGroup, bag: str, name: str = "player") -> ManagedProcess:
    """Replay a recording onto the live topics, re-stamped to now, looping."""
    return group.start(name, [BAG_PLAYER, bag, "--loop"])


def start_vlm(group: ProcessGroup, assets: DemoAssets, views: list[str],
              name: str = "vlm", **params) -> ManagedProcess:
    """The VLM node on the demo model; `params` by group, as in its YAML
    (``timing={"target_period": 0.4}``), or dotted."""
    base = {"model.path": assets.model_dir, "model.device": "cpu", "views.names": views,
            "views.image_topics": [f"/camera/{v}/image_raw/compressed" for v in views],
            "views.resize_width": assets.image_size[0],
            "views.resize_height": assets.image_size[1],
            "features.num_tokens": assets.num_feature_tokens, "timing.target_period": 0.3}
    base.update(flat_params(params))
    return group.start(name, ["-m", "asyncvla_vlm_node.vlm_node", *ros_args(base)])


def start_action(group: ProcessGroup, assets: DemoAssets, name: str = "action",
                 **params) -> ManagedProcess:
    """The action node on the demo checkpoint; `params` by group, as in its YAML
    (``timing={"action_rate_hz": 20.0}``), or dotted."""
    # Synthetic inputs and no operator: start enabled unless a test drives the enable topic.
    base = {"checkpoint": assets.checkpoint_dir, "expert.device": "cpu",
            "timing.action_rate_hz": 10.0, "safety.enabled_at_start": True}
    base.update(flat_params(params))
    return group.start(name, ["-m", "asyncvla_action_node.action_node", *ros_args(base)])


def start_closed_loop(group: ProcessGroup, **params) -> tuple[ManagedProcess, ...]:
    """The chunk executor (100 Hz twists, enabled: no operator), a kinematic robot that
    executes them and sends its state in the lab's robot wire format (ZMQ, degrees, mm, Meca500
    Euler angles), and the real robot bridge that turns it into /robot/joint_states and
    /robot/ee_pose, as on the lab's robot PC. Returns (executor, robot, robot bridge)."""
    base = {"output.kind": "twist", "safety.enabled_at_start": True}
    base.update(flat_params(params))
    executor = group.start("executor", ["-m", "asyncvla_executor.executor_node",
                                        *ros_args(base)])
    robot = group.start("robot", [KINEMATIC_ROBOT, "--roles", "robot", "--mode", "twist",
                                  "--state-out", "wire", "--log-period", "1.0"])
    endpoint = robot.wait_for_line("robot state wire:", 60).rsplit(" ", 1)[-1]
    bridge, _ = start_bridge(group, "robot", {"wire": {"endpoint": endpoint}})
    return executor, robot, bridge
