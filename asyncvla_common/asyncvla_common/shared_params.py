"""Parameters that several nodes declare alike: one spec each, whichever node declares it.

The action node, the executor and the Meca500 driver read the same robot topics, join chunks
with the same blending strategies and report at the same periods. Their tables take these specs
by name (`shared`), so a default, a range or a description is changed here once; no node module
imports another node's module to reuse its settings. The safety parameters they share are
`safety_ros.SAFETY_PARAMETERS`.
"""
from __future__ import annotations

from asyncvla_common.params import ParamSpec, select_specs
from asyncvla_core.chunk_blending import blending_modes
from asyncvla_core.conventions import JOINT_NAMES

SHARED_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("chunk_blending", "latest_only", f"Overlap handling: {blending_modes()}",
              read_only=True),
    ParamSpec("blend_old_weight", 0.3, "weighted_blend: weight of the previously published "
              "chunk", read_only=True, min_value=0.0, max_value=0.99),
    ParamSpec("ensemble_decay", 0.1, "temporal_ensemble: exp(-decay*k) weights, k=0 oldest",
              read_only=True, min_value=0.0),
    ParamSpec("robot_state_max_age", 0.1, "Max age (s) of the joint state and EE pose at a "
              "tick", min_value=0.0),
    ParamSpec("joint_names", list(JOINT_NAMES), "The 6 joints, base to wrist: JointState is read "
              "by these names (a message lacking one is refused), and the trajectory uses them",
              read_only=True),
    ParamSpec("max_future_stamp", 0.2, "Inputs stamped further ahead of this node's clock (s) "
              "are refused at arrival and counted (a clock step or a bad sender)",
              read_only=True, min_value=0.0),
    ParamSpec("joint_state_topic", "/robot/joint_states", "JointState input", read_only=True),
    ParamSpec("pose_topic", "/robot/ee_pose", "PoseStamped input (EE in base frame)",
              read_only=True),
    ParamSpec("action_topic", "/asyncvla/action_chunk", "ActionChunk output", read_only=True),
    ParamSpec("diagnostics_period", 1.0, "Seconds between /diagnostics", read_only=True,
              min_value=0.05),
    ParamSpec("log_period", 1.0, "Seconds between status log lines (throttle)", min_value=0.0),
)


def shared(*names: str) -> tuple[ParamSpec, ...]:
    """The shared specs named `names`, in that order (KeyError names a missing one)."""
    return select_specs(SHARED_PARAMETERS, names)
