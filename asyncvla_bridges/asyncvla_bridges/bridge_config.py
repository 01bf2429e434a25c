"""The three bridges' parameters: one typed config each, grouped by concern, readable without ROS.

`BridgeConfig` is the group every bridge declares alike (``clock.*``, ``freshness.*``,
``reporting.*``); `CameraBridgeConfig`, `RobotBridgeConfig` and `SensorBridgeConfig` add each
bridge's own (``wire.*`` where it listens or connects, then what it publishes). A bridge node
declares its config's leaves as dotted ROS parameters (`params.declare_config`, in
`bridge_base.BridgeNode`); the launch catalog and the YAML checker read the
``*_BRIDGE_PARAMETERS`` tables (the same leaves as flat `ParamSpec`) and ``*_OLD_NAMES`` (every
flat name of before, with the parameter that replaced it), without importing rclpy or a node.
The diagnostics period is `asyncvla_common.node_config`'s (every node reports alike).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from asyncvla_bridges.wire.clock_offset import ClockConfig as EstimatorConfig
from asyncvla_common import node_config as common
from asyncvla_common.param_spec import ParamSpec, flat_specs, old_names, param
from asyncvla_core.conventions import LAB_VIEWS, view_frame_id

#: Sender times the clock offset can be estimated from (`clock.offset_source`).
CLOCK_SOURCES = ("capture", "send")


@dataclass(frozen=True)
class ClockParams:
    """The sender->local clock-offset estimator (`wire.clock_offset`)."""

    offset_source: str = param(
        "capture", "Which sender time estimates the sender->local clock offset: 'capture' (the "
        "sample's own timestamp; stamps are then late by the smallest capture-to-receive "
        "latency seen) or 'send' (the send time; more exact, but only valid when the sender "
        "stamps both with the same clock).", read_only=True, was="clock_offset_source")
    window: float = param(5.0, "Sliding window (s) of the minimum filter over (receive - "
                          "sender) times.", read_only=True, min_value=0.1, max_value=600.0,
                          was="clock_window")
    bucket: float = param(0.25, "Bucket length (s) of the per-bucket minima the drift is "
                          "fitted to.", read_only=True, min_value=0.01, max_value=60.0,
                          was="clock_bucket")
    jump_threshold: float = param(0.05, "A sample whose (receive - sender) time differs from "
                                  "the estimate by more than this (s) is a clock-jump "
                                  "candidate.", read_only=True, min_value=1e-4,
                                  max_value=3600.0, was="clock_jump_threshold")
    jump_confirm_samples: int = param(5, "Consecutive consistent candidates that confirm a "
                                      "clock jump.", read_only=True, min_value=1,
                                      max_value=100000, was="clock_jump_confirm_samples")
    jump_confirm_duration: float = param(0.2, "Local time (s) the candidates must span to "
                                         "confirm a jump; must exceed clock.jump_threshold.",
                                         read_only=True, min_value=1e-3, max_value=3600.0,
                                         was="clock_jump_confirm_duration")
    max_delay: float = param(0.25, "A sample later than the delay floor by more than this (s) "
                             "is dropped as 'late' (stale, or the sender clock stepped back); a "
                             "smaller delay is published with its sender-clock stamp.",
                             read_only=True, min_value=1e-4, max_value=3600.0,
                             was="clock_max_delay")
    max_drift_ppm: float = param(500.0, "Clamp (ppm) of the estimated clock drift.",
                                 read_only=True, min_value=0.0, max_value=1e5,
                                 was="clock_max_drift_ppm")

    def estimator(self) -> EstimatorConfig:
        """The estimator's settings (ValueError names values that cannot work together)."""
        if self.offset_source not in CLOCK_SOURCES:
            raise ValueError(f"clock.offset_source {self.offset_source!r}: expected one of "
                             f"{CLOCK_SOURCES}")
        return EstimatorConfig(
            window=self.window, bucket=self.bucket, jump_threshold=self.jump_threshold,
            jump_confirm_samples=self.jump_confirm_samples,
            jump_confirm_duration=self.jump_confirm_duration, max_delay=self.max_delay,
            max_drift=1e-6 * self.max_drift_ppm)


@dataclass(frozen=True)
class BridgeFreshness:
    stale_timeout: float = param(2.0, "Diagnostics warn when no input arrived for this long "
                                 "(s).", min_value=0.01, max_value=3600.0, was="stale_timeout")


@dataclass(frozen=True)
class BridgeReporting:
    diagnostics_period: float = common.DIAGNOSTICS_PERIOD.as_field(was="diagnostics_period")


@dataclass(frozen=True)
class BridgeConfig:
    """What every bridge declares alike; each bridge's config adds its own groups."""

    clock: ClockParams = field(default_factory=ClockParams)
    freshness: BridgeFreshness = field(default_factory=BridgeFreshness)
    reporting: BridgeReporting = field(default_factory=BridgeReporting)


# --- camera ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CameraWire:
    """Where the Jetson's frames arrive (ZMQ PULL, bound here)."""

    bind_address: str = param("tcp://127.0.0.1", "ZMQ address to bind the PULL socket to, "
                              "without port. The robot PC sets tcp://0.0.0.0 or the interface "
                              "the Jetson reaches.", read_only=True, was="bind_address")
    port: int = param(5555, "TCP port to bind (0 = any free port).", read_only=True,
                      min_value=0, max_value=65535, was="port")


@dataclass(frozen=True)
class CameraViews:
    """Which sender camera is which view (parallel lists, the model's view order)."""

    camera_keys: tuple[str, ...] = param(
        [v.camera_key for v in LAB_VIEWS], "Substrings of the sender's camera name (ZED "
        "serials, 'OAK'), one per view; the first key contained in the name wins.",
        read_only=True, was="camera_keys")
    names: tuple[str, ...] = common.VIEW_NAMES_SPEC.as_field(was="view_names")
    #: Default computed from views.names (each view's conventional frame), so renaming the
    #: views does not leave the lab's frame ids behind.
    frame_ids: tuple[str, ...] = ParamSpec(
        "frame_ids", [v.frame_id for v in LAB_VIEWS], "Header frame_id for each view (default: "
        "each of views.names' conventional frame).", read_only=True,
        default_from=lambda p: [view_frame_id(v) for v in p["views.names"]]).as_field(
            was="frame_ids")


@dataclass(frozen=True)
class CameraRaw:
    """Decoded sensor_msgs/Image output (costs CPU; off unless a consumer needs it)."""

    publish: bool = param(False, "Also decode and publish sensor_msgs/Image (rgb8) on "
                          "<topics.prefix>/<view>/image_raw.", read_only=True,
                          was="publish_raw")
    views: tuple[str, ...] = ParamSpec(
        "views", [], "Views to publish raw images for when raw.publish is true (empty = all "
        "views).", read_only=True, param_type="STRING_ARRAY").as_field(was="raw_views")


@dataclass(frozen=True)
class CameraTopics:
    prefix: str = param("/camera", "Topics are <topics.prefix>/<view>/image_raw[/compressed].",
                        read_only=True, was="topic_prefix")


@dataclass(frozen=True)
class CameraBridgeConfig(BridgeConfig):
    """Every parameter of the camera bridge."""

    wire: CameraWire = field(default_factory=CameraWire)
    views: CameraViews = field(default_factory=CameraViews)
    raw: CameraRaw = field(default_factory=CameraRaw)
    topics: CameraTopics = field(default_factory=CameraTopics)


# --- robot -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RobotWire:
    endpoint: str = param("tcp://127.0.0.1:5556", "ZMQ endpoint of the robot PC's state "
                          "publisher to connect to (the robot PC's address on the lab "
                          "network).", read_only=True, was="endpoint")


@dataclass(frozen=True)
class RobotPose:
    """How the wire's Euler angles become the published end-effector pose."""

    euler_convention: str = param(
        "xyz_intrinsic", "Meaning of the 3 orientation angles (degrees, wire order a1 a2 a3): "
        "'<axes>_<kind>'. The default is the lab's Mecademic Meca500 (GetPose alpha, beta, "
        "gamma: mobile XYZ, R = Rx(a1) Ry(a2) Rz(a3), 'xyz_intrinsic'). Other robots: "
        "'xyz_extrinsic' is ROS roll-pitch-yaw about fixed axes (R = Rz(a3) Ry(a2) Rx(a1)); "
        "'zyx_intrinsic' is R = Rz(a1) Ry(a2) Rx(a3); 'zyz_intrinsic' R = Rz(a1) Ry(a2) Rz(a3). "
        "Any of the 12 axis sequences with '_intrinsic' or '_extrinsic' is accepted.",
        read_only=True, was="euler_convention")
    frame_id: str = param("base_link", "frame_id of the end-effector PoseStamped (the robot "
                          "base frame the controller reports the pose in).", read_only=True,
                          was="frame_id")


@dataclass(frozen=True)
class RobotBridgeConfig(BridgeConfig):
    """Every parameter of the robot bridge."""

    #: The same fact (and spec) as the other nodes' joint_names: the wire's order is base to
    #: wrist, and JointState is written with these names.
    joint_names: tuple[str, ...] = common.JOINT_NAMES_SPEC.as_field()
    wire: RobotWire = field(default_factory=RobotWire)
    pose: RobotPose = field(default_factory=RobotPose)


# --- force/OCT sensor --------------------------------------------------------------------------

@dataclass(frozen=True)
class SensorWire:
    """Where the sensor PC's UDP datagrams arrive."""

    address: str = param("127.0.0.1", "Local address to bind the UDP socket to (the interface "
                         "the sensor PC sends to, or 0.0.0.0 for all).", read_only=True,
                         was="address")
    port: int = param(9999, "UDP port to bind (0 = any free port).", read_only=True,
                      min_value=0, max_value=65535, was="port")
    receive_buffer: int = param(4 * 1024 * 1024, "SO_RCVBUF bytes requested for the UDP "
                                "socket.", read_only=True, min_value=65536, max_value=2**30,
                                was="receive_buffer")


@dataclass(frozen=True)
class SensorProbe:
    """The force/OCT probe the samples are published in."""

    frame_id: str = param("oct_probe", "frame_id of the published messages (the force/OCT "
                          "probe).", read_only=True, was="frame_id")
    force_axis: str = param("z", "Probe axis the scalar force acts along in probe.frame_id "
                            "for the WrenchStamped: x, y, z, -x, -y or -z.", read_only=True,
                            was="force_axis")


@dataclass(frozen=True)
class SensorBridgeConfig(BridgeConfig):
    """Every parameter of the force/OCT sensor bridge."""

    publish_wrench: bool = param(True, "Also publish one WrenchStamped per sample.",
                                 read_only=True)
    wire: SensorWire = field(default_factory=SensorWire)
    probe: SensorProbe = field(default_factory=SensorProbe)


#: Each bridge's parameters as flat specs (dotted names), in declaration order.
CAMERA_BRIDGE_PARAMETERS: tuple[ParamSpec, ...] = flat_specs(CameraBridgeConfig)
ROBOT_BRIDGE_PARAMETERS: tuple[ParamSpec, ...] = flat_specs(RobotBridgeConfig)
SENSOR_BRIDGE_PARAMETERS: tuple[ParamSpec, ...] = flat_specs(SensorBridgeConfig)
#: Every replaced name -> the parameter that replaced it (the bridge stops on an old one).
CAMERA_OLD_NAMES: dict[str, str] = old_names(CameraBridgeConfig)
ROBOT_OLD_NAMES: dict[str, str] = old_names(RobotBridgeConfig)
SENSOR_OLD_NAMES: dict[str, str] = old_names(SensorBridgeConfig)
