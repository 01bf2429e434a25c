"""The Meca500 driver's parameters: one typed config, grouped by concern, readable without ROS.

`Meca500DriverConfig` is the one spec: the node declares its leaves as dotted ROS parameters
(``robot.address``; `params.declare_config`); the launch catalog and the YAML checker read
`MECA500_DRIVER_PARAMETERS` (the same leaves as flat `ParamSpec`) and `OLD_NAMES` (every flat
name of before, with the parameter that replaced it). The topics, joint names, e-stop heartbeat
and diagnostics period are `asyncvla_common.node_config`'s (the action node and the executor
declare them too).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from asyncvla_common import node_config as common
from asyncvla_common.param_spec import ParamSpec, flat_specs, old_names, param


@dataclass(frozen=True)
class RobotConfig:
    """The robot and its own settings (sent at bring-up)."""

    address: str = param("192.168.0.100", "IP address of the Meca500 (its factory default)",
                         read_only=True, was="robot_address")
    control_port: int = param(10000, "TCP control port (10000 on a robot; mecademicpy enables "
                              "firmware 11's JSON API only there)", read_only=True,
                              min_value=1, max_value=65535, was="control_port")
    world_frame: str = param("base_link", "frame_id of twists sent as MoveLinVelWrf (the "
                             "robot's WRF, its base unless SetWrf was used) and of the "
                             "published EE pose", read_only=True, was="world_frame")
    tool_frame: str = param("tool0", "frame_id of twists sent as MoveLinVelTrf (the robot's "
                            "TRF, its flange unless SetTrf was used); other frames are refused",
                            read_only=True, was="tool_frame")
    joint_velocity_percent: float = param(10.0, "The robot's SetJointVel (% of its maximum "
                                          "joint speeds)", read_only=True, min_value=0.001,
                                          max_value=100.0, was="joint_velocity_percent")
    velocity_timeout: float = param(0.05, "The robot's SetVelTimeout (s): it stops by itself "
                                    "when no velocity command arrives for this long",
                                    read_only=True, min_value=0.001, max_value=1.0,
                                    was="velocity_timeout")


@dataclass(frozen=True)
class LimitsConfig:
    """What the driver sends at most (also the robot's own Cartesian velocity limits)."""

    max_linear_velocity: float = param(0.05, "Largest EE speed sent (m/s); also the robot's "
                                       "SetCartLinVel", read_only=True, min_value=0.001,
                                       was="max_linear_velocity")
    max_angular_velocity: float = param(0.5, "Largest EE angular speed sent (rad/s); also the "
                                        "robot's SetCartAngVel", read_only=True,
                                        min_value=0.001, was="max_angular_velocity")


@dataclass(frozen=True)
class TimingConfig:
    """The tick rate and how long each thing may take."""

    rate_hz: float = param(100.0, "Command and monitoring ticks per second", read_only=True,
                           min_value=1.0, max_value=1000.0, was="rate_hz")
    setpoint_timeout: float = param(0.05, "Oldest setpoint (s since arrival) still sent to the "
                                    "robot", read_only=True, min_value=0.001,
                                    was="setpoint_timeout")
    link_timeout: float = param(0.2, "Seconds without a new monitoring cycle (the robot sends "
                                "one every ~17 ms) after which the link counts as lost: ERROR, "
                                "nothing sent, enable again once it is back", read_only=True,
                                min_value=0.02, max_value=1.0, was="link_timeout")
    connect_timeout: float = param(2.0, "Seconds allowed for connecting to the robot",
                                   read_only=True, min_value=0.1, was="connect_timeout")
    step_timeout: float = param(10.0, "Seconds allowed for each other bring-up step "
                                "(activation and homing move the robot for seconds)",
                                read_only=True, min_value=0.1, was="step_timeout")


@dataclass(frozen=True)
class DriverTopics:
    setpoint: str = param("/asyncvla/setpoint/twist", "TwistStamped setpoints (the executor's "
                          "twist output; m/s, rad/s, in robot.world_frame or robot.tool_frame)",
                          read_only=True, was="setpoint_topic")
    joint_state: str = common.JOINT_STATE_TOPIC.as_field(was="joint_state_topic")
    pose: str = common.POSE_TOPIC.as_field(was="pose_topic")
    enable: str = common.ENABLE_TOPIC.as_field(was="enable_topic")
    estop: str = common.ESTOP_TOPIC.as_field(was="estop_topic")
    safety_status: str = common.SAFETY_STATUS_TOPIC.as_field(was="safety_status_topic")


@dataclass(frozen=True)
class DriverSafety:
    """The driver never starts enabled (the robot cannot be ready yet): no enabled_at_start."""

    estop_timeout: float = common.ESTOP_TIMEOUT.as_field(was="estop_timeout")


@dataclass(frozen=True)
class DriverReporting:
    diagnostics_period: float = common.DIAGNOSTICS_PERIOD.as_field(was="diagnostics_period")


@dataclass(frozen=True)
class Meca500DriverConfig:
    """Every parameter of the Meca500 driver."""

    joint_names: tuple[str, ...] = common.JOINT_NAMES_SPEC.as_field()
    robot: RobotConfig = field(default_factory=RobotConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    timing: TimingConfig = field(default_factory=TimingConfig)
    topics: DriverTopics = field(default_factory=DriverTopics)
    safety: DriverSafety = field(default_factory=DriverSafety)
    reporting: DriverReporting = field(default_factory=DriverReporting)


#: The node's parameters as flat specs (dotted names), in declaration order.
MECA500_DRIVER_PARAMETERS: tuple[ParamSpec, ...] = flat_specs(Meca500DriverConfig)
#: Every replaced name -> the parameter that replaced it (the node stops on an old one).
OLD_NAMES: dict[str, str] = old_names(Meca500DriverConfig)
