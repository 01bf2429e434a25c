"""The data conventions shared by the action node, the datasets and the checkpoints.

One place defines what the numbers mean, so a policy trained from bags sees at run time exactly
the layout it was trained on (the original system left this implicit and mixed mm, degrees and
unnormalised targets).

Units follow REP-103: metres, radians, seconds, newtons.

Joints: JOINT_NAMES (joint_1..joint_6, base to wrist) is the one default for every node, bag reader
and synthetic recording; a sensor_msgs/JointState is read *by name* (joint_positions_by_name), so
the order of its names does not matter, extra joints are ignored and a missing one refuses it.

Robot state vector (ROBOT_STATE_DIM = 13):
    [q1..q6 (rad), x, y, z (m, base frame), qx, qy, qz, qw (EE orientation quaternion)]

Orientation sign (continuous_orientation): q and -q are one rotation, and the policy must see one
of them consistently. A per-sample rule (the former w >= 0) jumps where w crosses 0, which is
exactly a tool pointing straight down (qx = +1 in one recording, -1 in the next). So each state
takes the sign closest to the previous state of the same motion (dot product >= 0), and the first
state of a motion (an episode segment in training; the first state after a reset or a gap longer
than robot_state_max_age in the action node) takes the sign closest to ORIENTATION_ANCHOR_XYZW, a
tool pointing straight down (180 degrees about the base x axis): the sign can then only be
ambiguous at the start of a motion for orientations 90 degrees or more away from tool-down, which
an insertion does not start from. Actions do not depend on the sign (offsets are rotation vectors
of R_target R_ref^T), only the state input does.

Sensor sample (SENSOR_CHANNELS = 1026): [force (N), A-line[0..1024]] — one row of the window;
a window is the newest `T` samples (default 65 = 100 ms at 650 Hz) ending at the action time.

Action chunk: `horizon` steps x ACTION_DIM = 7, each step an *offset from the reference state at
the chunk's stamp* (not a per-step increment), so chunks computed at different times can be
re-referenced and blended exactly for positions and joints:
    ee_delta:    [dx, dy, dz (m), drx, dry, drz (rad, rotation vector of R_target R_ref^T), tool]
    joint_delta: [dq1..dq6 (rad), tool]
Step i (0-based) is the target for time stamp + (i + 1) * step_period. `tool` is the tool/gripper
command (the original system recorded a constant 1.0; kept so checkpoints stay 7-wide).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .rotations import quat_sign_continuous, quat_to_rotvec

@dataclass(frozen=True)
class CameraView:
    """One camera view: its name (topic segment, model input order), the substring of the lab
    sender's camera name that identifies it, and the frame of its images."""

    name: str
    camera_key: str

    @property
    def frame_id(self) -> str:
        return view_frame_id(self.name)

    def topic(self, prefix: str = "/camera", compressed: bool = True) -> str:
        """``<prefix>/<view>/image_raw[/compressed]``: what the camera bridge publishes."""
        return f"{prefix.rstrip('/')}/{self.name}/image_raw" + ("/compressed" if compressed else "")


def view_frame_id(view_name: str) -> str:
    """The optical frame of a view's images (REP-103 optical frame naming)."""
    return f"{view_name}_optical_frame"


#: The lab's five cameras, in the order the model sees them: four ZED cameras by serial (left
#: eye) and the OAK camera. The bridge's defaults, the VLM node's and the recorder's come from here.
LAB_VIEWS = (CameraView("view1", "41182735"), CameraView("view2", "49429257"),
             CameraView("view3", "44377151"), CameraView("view4", "49045152"),
             CameraView("view5", "OAK"))
VIEW_NAMES = tuple(v.name for v in LAB_VIEWS)
#: Image slots the VL model is built with (more views than this are refused).
MAX_VIEWS = len(LAB_VIEWS)

#: The orientation the first state of a motion is signed against (module docstring): the tool
#: pointing straight down, a rotation of 180 degrees about the base x axis, as xyzw.
ORIENTATION_ANCHOR_XYZW = (1.0, 0.0, 0.0, 0.0)

#: The task prompt of the lab's needle insertion (the VLM node's and the datasets' default).
DEFAULT_PROMPT = "Insert the needle through the trocar into the eye phantom model"

NUM_JOINTS = 6
JOINT_NAMES = tuple(f"joint_{i}" for i in range(1, NUM_JOINTS + 1))
ROBOT_STATE_DIM = 13
ROBOT_STATE_NAMES = ("q1_rad", "q2_rad", "q3_rad", "q4_rad", "q5_rad", "q6_rad",
                     "x_m", "y_m", "z_m", "qx", "qy", "qz", "qw")
ALINE_LENGTH = 1025
SENSOR_CHANNELS = 1 + ALINE_LENGTH
DEFAULT_SENSOR_WINDOW = 65
DEFAULT_SENSOR_RATE_HZ = 650.0
ACTION_DIM = 7
DEFAULT_HORIZON = 8
ACTION_SPACES = {
    "ee_delta": ("dx_m", "dy_m", "dz_m", "drx_rad", "dry_rad", "drz_rad", "tool"),
    "joint_delta": ("dq1_rad", "dq2_rad", "dq3_rad", "dq4_rad", "dq5_rad", "dq6_rad", "tool"),
}


def joint_positions_by_name(names: list[str] | tuple[str, ...], positions,
                            wanted: tuple[str, ...] = JOINT_NAMES) -> np.ndarray:
    """Positions of `wanted`, in that order, from a JointState's parallel name/position arrays.

    ValueError (with the reason) when a wanted name is missing or repeated, the arrays differ in
    length, or a wanted position is not finite. Extra joints are ignored. Never positional: a
    message whose names are not the configured joints is refused, not read as the first six.
    """
    names = list(names)
    values = np.asarray(positions, dtype=np.float64).reshape(-1)
    if len(names) != values.size:
        raise ValueError(f"{len(names)} joint names but {values.size} positions")
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in wanted and name in index:
            raise ValueError(f"joint {name!r} named twice")
        index.setdefault(name, i)
    missing = [n for n in wanted if n not in index]
    if missing:
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        raise ValueError(f"joint state lacks {', '.join(missing)} (it names {len(names)}: "
                         f"{shown or 'none'})")
    out = values[[index[n] for n in wanted]]
    if not np.all(np.isfinite(out)):
        raise ValueError("joint positions contain NaN or inf")
    return out


def sensor_batch_reason(num_samples: int, stamps: int, force: int, alines: int,
                        aline_length: int, expected_aline_length: int = ALINE_LENGTH) -> str:
    """"" when a ForceOctBatch's array lengths agree with each other and the A-line length, else
    why not (arguments are the lengths of its arrays)."""
    if aline_length != expected_aline_length:
        return f"A-line length {aline_length}, expected {expected_aline_length}"
    if stamps != num_samples or force != num_samples or alines != num_samples * aline_length:
        return (f"batch of {num_samples} samples with {stamps} stamps, {force} force values and "
                f"{alines} A-line values (needs {num_samples * aline_length})")
    return ""


def continuous_orientation(quaternions_xyzw: np.ndarray,
                           previous_xyzw: np.ndarray | None = None) -> np.ndarray:
    """The state orientation convention (module docstring), the one function training and the
    action node both use: (n, 4) unit quaternions, each signed against the one before it, the
    first against ``previous_xyzw`` (the last state of the same motion) or, when None,
    ORIENTATION_ANCHOR_XYZW. ValueError for a zero or non-finite quaternion."""
    anchor = ORIENTATION_ANCHOR_XYZW if previous_xyzw is None else previous_xyzw
    return quat_sign_continuous(quaternions_xyzw, anchor)


def robot_state_vector(joint_positions: np.ndarray, position: np.ndarray,
                       quaternion_xyzw: np.ndarray,
                       previous_xyzw: np.ndarray | None = None) -> np.ndarray:
    """Assemble the 13-d state; the quaternion is normalised and signed by continuous_orientation
    (against ``previous_xyzw``, the previous state's quaternion of the same motion, if any)."""
    joints = np.asarray(joint_positions, dtype=np.float64).reshape(-1)
    pos = np.asarray(position, dtype=np.float64).reshape(-1)
    quat = np.asarray(quaternion_xyzw, dtype=np.float64).reshape(-1)
    if joints.size != 6 or pos.size != 3 or quat.size != 4:
        raise ValueError(f"robot state needs 6 joints, 3 position values and a 4-value quaternion; "
                         f"got {joints.size}, {pos.size}, {quat.size}")
    try:
        quat = continuous_orientation(quat, previous_xyzw)[0]
    except ValueError as exc:
        raise ValueError(f"robot state {exc}") from None
    state = np.concatenate([joints, pos, quat]).astype(np.float32)
    if not np.all(np.isfinite(state)):
        raise ValueError("robot state contains NaN or inf")
    return state


def reference_components(state: np.ndarray, action_space: str) -> np.ndarray:
    """The 6 state values an action's first 6 dims are offsets of (joints, or position + rotvec)."""
    state = np.asarray(state, dtype=np.float64)
    if action_space == "joint_delta":
        return state[:6].copy()
    if action_space == "ee_delta":
        return np.concatenate([state[6:9], quat_to_rotvec(state[9:13])])
    raise ValueError(f"unknown action space {action_space!r}; expected one of {sorted(ACTION_SPACES)}")
