"""What each launch file starts, with which parameters: plain Python, no `launch` import.

The launch files (launch/*.launch.py) are thin: they declare the arguments of their role and, at
launch time, call `plan()` with the argument values and turn the result into launch_ros actions
(launch_support.py). The decisions live here so they are tested everywhere, also where `launch`
and `launch_ros` are not installed (CI gets ROS 2 from PyPI, which has neither).

Parameters come in three layers, later ones win: the package's config/<node>.yaml (the original system's
defaults), an optional `params_file:=` YAML, then the launch arguments that were given. An empty
launch argument keeps the YAML value. Launch argument strings are converted to the parameter's
declared type (from the node's parameter table), so `action_rate_hz:=20` reaches the node as the
double 20.0 that it declares (``timing.action_rate_hz``), not as an integer it would refuse. The
arguments that set a node parameter are described from that parameter's spec (`param_arg`).
"""
from __future__ import annotations

import importlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from asyncvla_bringup import record
from asyncvla_bringup import security
from asyncvla_bringup.names import default_config_dir, normalize_namespace

LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")


@dataclass(frozen=True)
class NodeKind:
    """One of the project's node executables and where its parameters are described."""

    key: str
    package: str
    executable: str
    node_name: str
    table: str  # "module:ATTRIBUTE" of the node's ParamSpec tuple
    config: str  # parameter YAML in config/
    old: str = ""  # "module:ATTRIBUTE" of {replaced name: new name} ('' = none)

    def specs(self) -> tuple:
        return tuple(_attribute(self.table))

    def spec_map(self) -> dict[str, Any]:
        from asyncvla_common.param_spec import spec_table

        return spec_table(self.specs())

    def old_names(self) -> dict[str, str]:
        """Names the node used to declare -> the parameter that replaced each (it stops on
        them)."""
        return dict(_attribute(self.old)) if self.old else {}


def _attribute(ref: str) -> Any:
    module, attribute = ref.split(":")
    return getattr(importlib.import_module(module), attribute)


NODES: dict[str, NodeKind] = {kind.key: kind for kind in (
    NodeKind("camera_bridge", "asyncvla_bridges", "camera_bridge", "camera_bridge",
             "asyncvla_bridges.bridge_config:CAMERA_BRIDGE_PARAMETERS", "bridges.yaml",
             "asyncvla_bridges.bridge_config:CAMERA_OLD_NAMES"),
    NodeKind("robot_bridge", "asyncvla_bridges", "robot_bridge", "robot_bridge",
             "asyncvla_bridges.bridge_config:ROBOT_BRIDGE_PARAMETERS", "bridges.yaml",
             "asyncvla_bridges.bridge_config:ROBOT_OLD_NAMES"),
    NodeKind("sensor_bridge", "asyncvla_bridges", "sensor_bridge", "sensor_bridge",
             "asyncvla_bridges.bridge_config:SENSOR_BRIDGE_PARAMETERS", "bridges.yaml",
             "asyncvla_bridges.bridge_config:SENSOR_OLD_NAMES"),
    NodeKind("vlm", "asyncvla_vlm_node", "vlm_node", "asyncvla_vlm_node",
             "asyncvla_vlm_node.vlm_config:VLM_NODE_PARAMETERS", "vlm_node.yaml",
             "asyncvla_vlm_node.vlm_config:OLD_NAMES"),
    NodeKind("action", "asyncvla_action_node", "action_node", "asyncvla_action_node",
             "asyncvla_action_node.action_config:ACTION_NODE_PARAMETERS", "action_node.yaml",
             "asyncvla_action_node.action_config:OLD_NAMES"),
    NodeKind("executor", "asyncvla_executor", "executor_node", "asyncvla_executor",
             "asyncvla_executor.executor_config:EXECUTOR_NODE_PARAMETERS", "executor_node.yaml",
             "asyncvla_executor.executor_config:OLD_NAMES"),
    NodeKind("meca500", "asyncvla_bridges", "meca500_driver", "meca500_driver",
             "asyncvla_bridges.meca500.driver_config:MECA500_DRIVER_PARAMETERS",
             "meca500_driver.yaml", "asyncvla_bridges.meca500.driver_config:OLD_NAMES"),
)}


@dataclass(frozen=True)
class Arg:
    """A launch argument; `node`/`parameter` name the node parameter it sets ('' = special)."""

    name: str
    default: str
    description: str
    node: str = ""
    parameter: str = ""
    also: tuple[tuple[str, str], ...] = ()  # further (node, parameter) pairs it sets

    def targets(self) -> tuple[tuple[str, str], ...]:
        return ((self.node, self.parameter),) + self.also if self.node else ()


@dataclass(frozen=True)
class Role:
    """What one launch file starts: (node key, boolean argument that gates it or '')."""

    name: str
    launch_file: str
    description: str
    nodes: tuple[tuple[str, str], ...]
    args: tuple[Arg, ...]
    bag_player: bool = False

    def arg(self, name: str) -> Arg:
        return {a.name: a for a in self.args}[name]


def _common(use_sim_time: str = "false") -> tuple[Arg, ...]:
    return (
        Arg("namespace", "", "ROS namespace of every node; the relative topic names in the "
            "parameter files follow it ('' = none: /camera/..., /robot/..., /asyncvla/...)"),
        Arg("log_level", "info", f"Log level of every node: {', '.join(LOG_LEVELS)}"),
        Arg("use_sim_time", use_sim_time, "true: follow /clock (ros2 bag play --clock) instead "
            "of the system clock"),
        Arg("params_file", "", "Extra parameter YAML applied after the package's "
            "config/*.yaml, for any node ('' = none)"),
        Arg("secure", "false", "true: SROS2, every node in its enclave from keystore:= "
            "(needs a Fast DDS built with security; ROBOT_PC.md, Secured DDS)"),
        Arg("keystore", "", "SROS2 keystore directory (ros2 security create_keystore), used "
            "with secure:=true"),
    )


_KEEP = " ('' = the parameter file's value)"
_LABELS = {"action": "Action node", "executor": "Executor", "meca500": "Meca500 driver",
           "vlm": "VLM node"}


def param_arg(name: str, node: str, parameter: str, default: str = "", why: str = "") -> Arg:
    """A launch argument that sets one node parameter, described from the parameter's own spec
    (description, type, range): the launch file and `ros2 param describe` say the same.
    `default` '' keeps the parameter file's value; `why` says why the role sets another."""
    spec = NODES[node].spec_map()[parameter]
    lo, hi = spec.min_value, spec.max_value
    bounds = (f" in [{lo}, {hi}]" if lo is not None and hi is not None else
              f" >= {lo}" if lo is not None else f" <= {hi}" if hi is not None else "")
    keep = f" (here {default}: {why})" if default else _KEEP
    return Arg(name, default, f"{_LABELS[node]} {parameter}: {spec.description} "
               f"({spec.type_name.lower()}{bounds}){keep}", node, parameter)


VLM_ARGS = (
    param_arg("model_path", "vlm", "model.path"),
    param_arg("adapter", "vlm", "model.adapter_path"),
    param_arg("prompt", "vlm", "prompt"),
    param_arg("vl_period", "vlm", "timing.target_period"),
)
ACTION_ARGS = (
    Arg("checkpoint", "", "Policy checkpoint directory (required unless a parameter file sets "
        "it): the action node's policy, and the VLM node takes its VL settings from it "
        "(policy_checkpoint)", "action", "checkpoint", (("vlm", "policy_checkpoint"),)),
    param_arg("action_rate_hz", "action", "timing.action_rate_hz"),
    param_arg("max_vl_age", "action", "freshness.max_vl_age"),
)
VLM_DEVICE = param_arg("vlm_device", "vlm", "model.device")
EXECUTOR_ARG = Arg("executor", "false", "true: also run the chunk executor (setpoints at the "
                   "robot's rate from the action chunks; config/executor_node.yaml)")
ACTION_DEVICE = param_arg("action_device", "action", "expert.device")

ROLES: dict[str, Role] = {role.name: role for role in (
    Role("robot", "robot.launch.py",
         "Whole pipeline on the robot PC: camera, robot and force/OCT bridges, VLM node, action "
         "node.",
         (("camera_bridge", ""), ("robot_bridge", ""), ("sensor_bridge", ""), ("vlm", ""),
          ("action", ""), ("executor", "executor")),
         _common() + VLM_ARGS + (VLM_DEVICE,) + ACTION_ARGS + (ACTION_DEVICE, EXECUTOR_ARG)),
    Role("replay", "replay.launch.py",
         "The nodes only, on simulated time, fed by `ros2 bag play --clock` (started here when "
         "bag:= is given).",
         (("vlm", "run_vlm"), ("action", "")),
         _common("true") + VLM_ARGS + (VLM_DEVICE,) + ACTION_ARGS + (ACTION_DEVICE,) + (
             param_arg("enabled_at_start", "action", "safety.enabled_at_start", "true",
                       "no enable topic is replayed"),
             Arg("run_vlm", "true", "true: run the VLM node on the recorded images; false: the "
                 "action node uses the recorded VL features"),
             Arg("bag", "", "rosbag2 directory to play ('' = play it yourself: see "
                 "ROBOT_PC.md)"),
             Arg("rate", "1.0", "Playback rate of the bag"),
             Arg("clock_hz", "200", "Rate (Hz) of the /clock the player publishes"),
         ), bag_player=True),
    Role("vlm", "vlm.launch.py",
         "VLM node only (a GPU server), optionally with the camera bridge.",
         (("vlm", ""), ("camera_bridge", "camera_bridge")),
         _common() + VLM_ARGS + (
             Arg("checkpoint", "", "VLM: the policy checkpoint it serves; VL settings left at "
                 "their defaults come from it" + _KEEP, "vlm", "policy_checkpoint"),
             param_arg("device", "vlm", "model.device"),
             Arg("camera_bridge", "false", "true: also run the camera bridge here (the Jetson "
                 "sends to this machine)"),
         )),
    Role("action", "action.launch.py",
         "Action node on the robot PC (the VLM runs elsewhere), with the robot and force/OCT "
         "bridges and optionally the camera bridge.",
         (("action", ""), ("robot_bridge", "bridges"), ("sensor_bridge", "bridges"),
          ("camera_bridge", "camera_bridge"), ("executor", "executor")),
         _common() + ACTION_ARGS + (
             param_arg("device", "action", "expert.device"),
             Arg("bridges", "true", "true: also run the robot and force/OCT bridges"),
             Arg("camera_bridge", "true", "true: also run the camera bridge here (false when "
                 "the Jetson sends to the VLM machine)"),
             EXECUTOR_ARG,
         )),
)}


@dataclass
class NodePlan:
    """Everything a launch_ros Node action needs."""

    key: str
    package: str
    executable: str
    name: str
    namespace: str
    parameters: list[Any]  # YAML paths, then one dict of typed overrides
    ros_arguments: list[str]
    arguments: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # e.g. the SROS2 variables

    @property
    def overrides(self) -> dict[str, Any]:
        return self.parameters[-1]


@dataclass
class Plan:
    nodes: list[NodePlan]
    commands: list[list[str]]  # other processes (the bag player)

    def node(self, key: str) -> NodePlan:
        matches = [n for n in self.nodes if n.key == key]
        if not matches:
            raise KeyError(f"no {key} node in the plan ({[n.key for n in self.nodes]})")
        return matches[0]


# --- helpers --------------------------------------------------------------------------------

def parse_bool(name: str, text: str) -> bool:
    value = str(text).strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"{name}:={text!r} is not a boolean (true or false)")


def coerce(kind: NodeKind, spec: Any, text: str, arg_name: str) -> Any:
    """Launch argument string -> the declared type of `spec`; range-checked."""
    where = f"{arg_name}:={text!r} (parameter {kind.node_name} {spec.name})"
    t = spec.type_name
    try:
        if t == "DOUBLE":
            value: Any = float(text)
            if not math.isfinite(value):
                raise ValueError
        elif t == "INTEGER":
            value = int(text)
        elif t == "BOOL":
            value = parse_bool(arg_name, text)
        elif t == "STRING":
            value = str(text)
        else:
            raise TypeError(f"{where}: {t} parameters cannot be set by a launch argument; "
                            "use params_file:=")
    except ValueError:
        raise ValueError(f"{where} is not a valid {t.lower()}") from None
    if spec.min_value is not None and value < spec.min_value \
            or spec.max_value is not None and value > spec.max_value:
        raise ValueError(f"{where} is outside [{spec.min_value}, {spec.max_value}]")
    return value


def yaml_node_parameters(path: str | os.PathLike, node_name: str) -> dict[str, Any]:
    """The ros__parameters a parameter YAML gives a node named `node_name` (any namespace),
    by dotted name (nested maps flattened, as rcl reads them)."""
    import yaml

    with open(path, encoding="utf-8") as stream:
        data = yaml.safe_load(stream) or {}
    merged: dict[str, Any] = {}
    for key, body in data.items():
        key = str(key)
        if key in ("/**", "**") or key.rstrip("/").split("/")[-1] == node_name:
            merged.update(flatten((body or {}).get("ros__parameters", {}) or {}))
    return merged


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested YAML maps -> {dotted name: value} (``timing: {action_rate_hz: 10.0}`` is the
    parameter ``timing.action_rate_hz``)."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = value
    return out


def effective_parameters(kind: NodeKind, files: list[str | os.PathLike]) -> dict[str, Any]:
    """The values a node of `kind` starts with from these YAMLs: its defaults, then each
    file's entries for it (later files win), by dotted name."""
    values = {spec.name: spec.default for spec in kind.specs()}
    for path in files:
        values.update(yaml_node_parameters(path, kind.node_name))
    return values


# --- the plan -------------------------------------------------------------------------------

def plan(role_name: str, values: Mapping[str, str] | None = None,
         config_dir: str | os.PathLike | None = None) -> Plan:
    """Nodes (and processes) the role's launch file starts for these launch argument values."""
    role = ROLES[role_name]
    values = dict(values or {})
    known = {a.name for a in role.args}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{role.launch_file} has no argument(s) {unknown}; it has "
                         f"{sorted(known)}")
    config = Path(config_dir) if config_dir is not None else default_config_dir()
    v = {a.name: str(values.get(a.name, a.default)) for a in role.args}
    namespace = normalize_namespace(v["namespace"])
    log_level = v["log_level"].strip().lower()
    if log_level not in LOG_LEVELS:
        raise ValueError(f"log_level:={v['log_level']!r} is not one of {LOG_LEVELS}")
    sim_time = parse_bool("use_sim_time", v["use_sim_time"])
    extra = v["params_file"].strip()
    if extra and not os.path.isfile(extra):
        raise ValueError(f"params_file:={extra!r} does not exist")

    overrides: dict[str, dict[str, Any]] = {}
    for arg in role.args:
        for node_key, parameter in arg.targets() if v[arg.name] != "" else ():
            kind = NODES[node_key]
            spec = kind.spec_map()[parameter]
            overrides.setdefault(node_key, {})[parameter] = coerce(kind, spec, v[arg.name],
                                                                   arg.name)

    nodes: list[NodePlan] = []
    for key, gate in role.nodes:
        if gate and not parse_bool(gate, v[gate]):
            continue
        kind = NODES[key]
        files = [str(config / kind.config)] + ([extra] if extra else [])
        nodes.append(NodePlan(key, kind.package, kind.executable, kind.node_name, namespace,
                              files + [{**overrides.get(key, {}), "use_sim_time": sim_time}],
                              ["--log-level", log_level]))
    if parse_bool("secure", v["secure"]):
        keystore = security.check_keystore(v["keystore"])
        if role.bag_player and v["bag"].strip():
            raise ValueError(f"{role.launch_file}: secure:=true cannot play a bag (the player "
                             "has no enclave); play it yourself with --enclave")
        for node in nodes:
            node.ros_arguments += ["--enclave", security.ENCLAVES[node.key]]
            node.env.update(security.security_env(keystore))
    for node in nodes:
        if node.key == "action" and not _checkpoint_given(node):
            raise ValueError(f"{role.launch_file}: checkpoint:=<policy checkpoint directory> is "
                             "required (or set `checkpoint` in params_file:=)")

    commands: list[list[str]] = []
    if role.bag_player and v["bag"].strip():

        run_vlm = any(n.key == "vlm" for n in nodes)
        topics = record.replay_topics(record.load_config(config / record.RECORD_CONFIG),
                                      namespace, with_vl_features=not run_vlm)
        commands.append(record.play_command(
            v["bag"].strip(), topics, str(config / record.QOS_OVERRIDES),
            rate=_positive("rate", v["rate"]), clock_hz=_positive("clock_hz", v["clock_hz"])))
    return Plan(nodes, commands)


MONITOR_ARGS = (
    Arg("aggregator", "true", "true: run diagnostic_aggregator (/diagnostics -> "
        "/diagnostics_agg, shown by rqt_robot_monitor)"),
    Arg("rqt", "true", "true: open rqt with the AsyncVLA perspective"),
    Arg("use_sim_time", "false", "true: follow /clock (when monitoring a replay)"),
)
PERSPECTIVE = "rqt/asyncvla.perspective"
AGGREGATOR_CONFIG = "config/diagnostic_aggregator.yaml"


def monitor_plan(values: Mapping[str, str] | None = None,
                 share_dir: str | os.PathLike | None = None) -> Plan:
    """monitor.launch.py: diagnostic_aggregator and rqt (ROS packages, not this project's)."""
    values = dict(values or {})
    unknown = sorted(set(values) - {a.name for a in MONITOR_ARGS})
    if unknown:
        raise ValueError(f"monitor.launch.py has no argument(s) {unknown}")
    v = {a.name: str(values.get(a.name, a.default)) for a in MONITOR_ARGS}
    share = Path(share_dir) if share_dir is not None else default_config_dir().parent
    sim = {"use_sim_time": parse_bool("use_sim_time", v["use_sim_time"])}
    nodes = []
    if parse_bool("aggregator", v["aggregator"]):
        nodes.append(NodePlan("aggregator", "diagnostic_aggregator", "aggregator_node",
                              "analyzers", "", [str(share / AGGREGATOR_CONFIG), sim], []))
    if parse_bool("rqt", v["rqt"]):
        nodes.append(NodePlan("rqt", "rqt_gui", "rqt_gui", "asyncvla_rqt", "", [sim], [],
                              ["--perspective-file", str(share / PERSPECTIVE)]))
    return Plan(nodes, [])


def command_exit_reason(cmd: list[str], returncode: int | None) -> str:
    """Why the whole launch must stop when a plan command exits, or "" to keep running.

    The bag player feeds /clock: when it fails (a missing or unreadable bag, a bad QoS override
    file) the nodes would wait on /clock forever, so the launch shuts down with this reason. A
    player that finishes normally (0) leaves the nodes running, to be inspected.
    """
    if not returncode:
        return ""
    return (f"`{' '.join(cmd[:3])}` exited with code {returncode} (see its output above): "
            "shutting down, the nodes would wait on /clock forever")


def _checkpoint_given(node: NodePlan) -> bool:
    if node.overrides.get("checkpoint"):
        return True
    return any(isinstance(p, str) and yaml_node_parameters(p, node.name).get("checkpoint")
               for p in node.parameters[:-1])


def _positive(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}:={text!r} must be a positive number")
    return value
