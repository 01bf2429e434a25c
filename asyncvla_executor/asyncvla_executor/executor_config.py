"""The chunk executor's parameters: one typed config, grouped by concern, readable without ROS.

`ExecutorNodeConfig` is the one spec: the node declares its leaves as dotted ROS parameters
(``timing.rate_hz``; `params.declare_config`) and builds its core from the typed config; the
launch catalog and the YAML checker read `EXECUTOR_NODE_PARAMETERS` (the same leaves as flat
`ParamSpec`) and `OLD_NAMES` (every flat name of before, with the parameter that replaced it).
The groups the action node and the Meca500 driver declare too are
`asyncvla_common.node_config`'s.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from asyncvla_common import node_config as common
from asyncvla_common.param_spec import ParamSpec, flat_specs, old_names, param
from asyncvla_executor.executor_core import ExecutorConfig

#: Setpoint outputs (`output.kind`) and the topic each publishes when `output.topic` is ''.
OUTPUT_TOPICS = {"joint_trajectory": "/asyncvla/setpoint/joint_trajectory",
                 "pose": "/asyncvla/setpoint/pose", "twist": "/asyncvla/setpoint/twist"}


@dataclass(frozen=True)
class TimingConfig:
    rate_hz: float = param(100.0, "Setpoints per second (the robot's command rate)",
                           read_only=True, min_value=1.0, max_value=1000.0, was="rate_hz")


@dataclass(frozen=True)
class FreshnessConfig:
    """How old a chunk and the robot state may be when a setpoint is made from them."""

    max_chunk_age: float = param(
        ExecutorConfig.max_chunk_age, "Oldest chunk (s, its stamp to the tick) still executed; "
        "older -> hold", min_value=0.0, was="max_chunk_age")
    future_tolerance: float = param(
        ExecutorConfig.future_tolerance, "Chunks stamped further ahead (s) are dropped (clock "
        "problem)", read_only=True, min_value=0.0, was="future_tolerance")
    robot_state_max_age: float = common.ROBOT_STATE_MAX_AGE.as_field(was=common.ROBOT_STATE_WAS)
    max_future_stamp: float = common.MAX_FUTURE_STAMP.as_field(was="max_future_stamp")


@dataclass(frozen=True)
class OutputConfig:
    """What the executor publishes."""

    action_space: str = param("ee_delta", "Action space of the chunks it executes (ee_delta or "
                              "joint_delta); chunks of another space are dropped",
                              read_only=True, was="action_space")
    kind: str = param("twist", f"Setpoint output: {sorted(OUTPUT_TOPICS)} (pose and twist carry "
                      "ee_delta, joint_trajectory joint_delta)", read_only=True, was="output")
    topic: str = param("", "Topic of the setpoint output ('' = the output's default: "
                       + ", ".join(f"{k} {t}" for k, t in sorted(OUTPUT_TOPICS.items())) + ")",
                       read_only=True, was="output_topic")
    frame_id: str = param("base_link", "frame_id of pose and twist setpoints (the chunks' base "
                          "frame)", read_only=True, was="frame_id")


@dataclass(frozen=True)
class ExecutorTopics:
    joint_state: str = common.JOINT_STATE_TOPIC.as_field(was="joint_state_topic")
    pose: str = common.POSE_TOPIC.as_field(was="pose_topic")
    action: str = common.ACTION_TOPIC.as_field(was="action_topic")
    enable: str = common.ENABLE_TOPIC.as_field(was="enable_topic")
    estop: str = common.ESTOP_TOPIC.as_field(was="estop_topic")
    safety_status: str = common.SAFETY_STATUS_TOPIC.as_field(was="safety_status_topic")


@dataclass(frozen=True)
class ExecutorNodeConfig:
    """Every parameter of the executor node. Its guard checks every setpoint (no between-chunk
    jump limits: that is the action node's check)."""

    joint_names: tuple[str, ...] = common.JOINT_NAMES_SPEC.as_field()
    timing: TimingConfig = field(default_factory=TimingConfig)
    freshness: FreshnessConfig = field(default_factory=FreshnessConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    blending: common.BlendingConfig = field(default_factory=common.BlendingConfig)
    topics: ExecutorTopics = field(default_factory=ExecutorTopics)
    safety: common.SafetyConfig = field(default_factory=common.SafetyConfig)
    guard: common.GuardConfig = field(default_factory=common.GuardConfig)
    reporting: common.ReportingConfig = field(default_factory=common.ReportingConfig)

    def core(self) -> ExecutorConfig:
        """The core's settings."""
        fresh = self.freshness
        return ExecutorConfig(self.output.action_space, 1.0 / self.timing.rate_hz,
                              fresh.max_chunk_age, fresh.future_tolerance,
                              fresh.robot_state_max_age)


#: The node's parameters as flat specs (dotted names), in declaration order.
EXECUTOR_NODE_PARAMETERS: tuple[ParamSpec, ...] = flat_specs(ExecutorNodeConfig)
#: Every replaced name -> the parameter that replaced it (the node stops on an old one).
OLD_NAMES: dict[str, str] = old_names(ExecutorNodeConfig)
