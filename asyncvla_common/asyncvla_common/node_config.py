"""Parameter groups that several nodes declare alike, as typed configs (ROS-free).

The action node, the executor and the Meca500 driver read the same robot topics, the same
operator (enable / e-stop) topics, join chunks with the same blending strategies, check the same
output-guard limits and report at the same periods. Each fact is defined here once, as a
`param_spec.param` field of a group (or a `ParamSpec` a group's field is made from); a node's
config (`action_config.ActionNodeConfig`, `executor_config.ExecutorNodeConfig`,
`driver_config.Meca500DriverConfig`) takes the group, so a default, a range or a description is
changed here once and every node names it the same (``blending.mode``, ``guard.max_joint_step``,
``topics.enable``). No node module imports another node's module.

`was` names the flat parameter each field replaced: a YAML or launch file that still sets it
stops the node with a one-line message naming the new one (`params.declare_config`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asyncvla_common.param_spec import ParamSpec, param
from asyncvla_core import freshness
from asyncvla_core.blending.base import ENSEMBLE_DECAY, OLD_WEIGHT
from asyncvla_core.chunk_blending import DEFAULT_MODE, blending_modes
from asyncvla_core.conventions import JOINT_NAMES, VIEW_NAMES
from asyncvla_core.output_guard import GUARD_MODES, GuardLimits


# --- topics (ParamSpec, so a group's field and a flat table take the same one) ------------------
JOINT_STATE_TOPIC = ParamSpec("joint_state", "/robot/joint_states", "JointState topic",
                              read_only=True)
POSE_TOPIC = ParamSpec("pose", "/robot/ee_pose", "PoseStamped topic (EE in base frame)",
                       read_only=True)
#: The views, one fact for the camera bridge and the VLM node (``views.names``).
VIEW_NAMES_SPEC = ParamSpec("names", list(VIEW_NAMES), "View names, in the order the model was "
                            "trained on: the camera bridge's name for each views.camera_keys "
                            "entry (a topic segment), the order the VLM node feeds them in",
                            read_only=True)
VL_FEATURES_TOPIC = ParamSpec("vl_features", "/asyncvla/vl_features", "VLFeatures topic "
                              "(latched: the VLM node publishes it, the action node reads it)",
                              read_only=True)
ACTION_TOPIC = ParamSpec("action", "/asyncvla/action_chunk", "ActionChunk topic",
                         read_only=True)
ENABLE_TOPIC = ParamSpec("enable", "/asyncvla/enable", "std_msgs/Bool enable input (latched: "
                         "reliable, transient local)", read_only=True)
ESTOP_TOPIC = ParamSpec("estop", "/asyncvla/estop", "std_msgs/Bool e-stop input (True = stop; "
                        "latched until False, then enable again)", read_only=True)
SAFETY_STATUS_TOPIC = ParamSpec("safety_status", "~/safety_status", "asyncvla_msgs/SafetyStatus "
                                "output (latched; on change and every "
                                "reporting.diagnostics_period)", read_only=True)
JOINT_NAMES_SPEC = ParamSpec("joint_names", list(JOINT_NAMES), "The 6 joints, base to wrist: "
                             "JointState is read (or written) by these names (a message lacking "
                             "one is refused), and trajectories use them", read_only=True)
DIAGNOSTICS_PERIOD = ParamSpec("diagnostics_period", 1.0, "Seconds between /diagnostics",
                               read_only=True, min_value=0.05)
ESTOP_TIMEOUT = ParamSpec("estop_timeout", 0.0, "If > 0, the e-stop topic is a heartbeat: no "
                          "message for this long (s) counts as a pressed e-stop", read_only=True,
                          min_value=0.0)
MAX_FUTURE_STAMP = ParamSpec(
    "max_future_stamp", freshness.MAX_FUTURE_STAMP_S, "Inputs stamped further ahead of this "
    "node's clock (s) are refused at arrival and counted (a clock step or a bad sender)",
    read_only=True, min_value=0.0)
#: One name for one fact: the joint state and EE pose may be at most this old at a tick, and
#: this long a silence of valid ones stops output (the watchdog). It replaces
#: robot_state_max_age and robot_state_timeout, which always meant the same and defaulted alike.
ROBOT_STATE_MAX_AGE = ParamSpec(
    "robot_state_max_age", freshness.ROBOT_STATE_MAX_AGE_S, "Oldest joint state and EE pose (s, "
    "stamp to tick) acted on, and the longest silence (s) of valid ones before output stops "
    "(their watchdog)", read_only=True, min_value=0.001)
ROBOT_STATE_WAS = ("robot_state_max_age", "robot_state_timeout")


@dataclass(frozen=True)
class BlendingConfig:
    """How overlapping chunks are joined (`chunk_blending.ChunkBlender`)."""

    mode: str = param(DEFAULT_MODE, f"Overlap handling: {blending_modes()}", read_only=True,
                      was="chunk_blending")
    old_weight: float = param(
        OLD_WEIGHT, "weighted_blend: weight of the previously published chunk", read_only=True,
        min_value=0.0, max_value=0.99, was="blend_old_weight")
    ensemble_decay: float = param(
        ENSEMBLE_DECAY, "temporal_ensemble: exp(-decay*k) weights, k=0 oldest", read_only=True,
        min_value=0.0, was="ensemble_decay")


@dataclass(frozen=True)
class SafetyConfig:
    """The safety gate: start state and e-stop heartbeat."""

    enabled_at_start: bool = param(False, "Start ENABLED instead of waiting for True on the "
                                   "enable topic (tests and bag replay only; a robot should "
                                   "start disabled)", read_only=True, was="enabled_at_start")
    estop_timeout: float = ESTOP_TIMEOUT.as_field(was="estop_timeout")


#: The output guard's own defaults: the parameters below start from them (one place for each).
_LIMITS = GuardLimits()


def _limit(name: str, description: str) -> Any:
    """A guard limit's parameter: the `GuardLimits` field of that name gives its default, and the
    flat name it replaced is the same (0 turns the check off)."""
    return param(getattr(_LIMITS, name), description, read_only=True, min_value=0.0, was=name)


@dataclass(frozen=True)
class GuardConfig:
    """The output guard's limits (`output_guard.GuardLimits`); every robot needs its own."""

    mode: str = param(_LIMITS.mode, f"What the output guard does on a violation: {GUARD_MODES} "
                      "(always counted and reported)", read_only=True, was="guard_mode")
    joint_position_min: tuple[float, ...] = param(
        list(_LIMITS.joint_min), "Lower joint limits (rad), joint_names order", read_only=True,
        was="joint_position_min")
    joint_position_max: tuple[float, ...] = param(
        list(_LIMITS.joint_max), "Upper joint limits (rad), joint_names order", read_only=True,
        was="joint_position_max")
    max_joint_step: float = _limit(
        "max_joint_step", "Largest joint change (rad) per step (0 = off)")
    max_joint_velocity: float = _limit(
        "max_joint_velocity", "Largest joint velocity (rad/s) between steps (0 = off)")
    max_linear_step: float = _limit(
        "max_linear_step", "Largest EE translation (m) per step (0 = off)")
    max_linear_velocity: float = _limit(
        "max_linear_velocity", "Largest EE speed (m/s) between steps (0 = off)")
    max_angular_step: float = _limit(
        "max_angular_step", "Largest EE rotation (rad) per step (0 = off)")
    max_angular_velocity: float = _limit(
        "max_angular_velocity", "Largest EE angular speed (rad/s) between steps (0 = off)")
    workspace_min: tuple[float, ...] = param(
        list(_LIMITS.workspace_min), "Workspace box lower corner (m, base frame x y z)",
        read_only=True, was="workspace_min")
    workspace_max: tuple[float, ...] = param(
        list(_LIMITS.workspace_max), "Workspace box upper corner (m, base frame x y z)",
        read_only=True, was="workspace_max")

    def limits(self) -> GuardLimits:
        """GuardLimits without the between-chunk jump checks (ValueError names a bad limit)."""
        return self._limits(0.0, 0.0, 0.0)

    def _limits(self, jump_joint: float, jump_linear: float, jump_angular: float) -> GuardLimits:
        return GuardLimits(
            mode=self.mode, joint_min=tuple(float(v) for v in self.joint_position_min),
            joint_max=tuple(float(v) for v in self.joint_position_max),
            max_joint_step=self.max_joint_step, max_joint_velocity=self.max_joint_velocity,
            max_linear_step=self.max_linear_step, max_linear_velocity=self.max_linear_velocity,
            max_angular_step=self.max_angular_step,
            max_angular_velocity=self.max_angular_velocity,
            workspace_min=tuple(float(v) for v in self.workspace_min),
            workspace_max=tuple(float(v) for v in self.workspace_max),
            max_jump_joint=jump_joint, max_jump_linear=jump_linear,
            max_jump_angular=jump_angular)


@dataclass(frozen=True)
class ChunkGuardConfig(GuardConfig):
    """The action node's guard: the limits, and jumps between consecutive chunks."""

    max_jump_joint: float = _limit(
        "max_jump_joint", "Largest difference (rad) from the previous chunk's target at the same "
        "time (0 = off)")
    max_jump_linear: float = _limit(
        "max_jump_linear", "Largest difference (m) from the previous chunk's EE target at the "
        "same time (0 = off)")
    max_jump_angular: float = _limit(
        "max_jump_angular", "Largest rotation (rad) from the previous chunk's EE target at the "
        "same time (0 = off)")

    def limits(self) -> GuardLimits:
        """GuardLimits with the jump checks."""
        return self._limits(self.max_jump_joint, self.max_jump_linear, self.max_jump_angular)


@dataclass(frozen=True)
class ReportingConfig:
    """How often the node reports (/diagnostics, status log lines)."""

    diagnostics_period: float = DIAGNOSTICS_PERIOD.as_field(was="diagnostics_period")
    log_period: float = param(1.0, "Seconds between status log lines (throttle)",
                              min_value=0.0, was="log_period")
