"""The last check before an action chunk leaves the suite: limits on what the robot is told to do.

A needle is on the robot, so a chunk that would drive a joint past its limit, move faster than
allowed, leave the workspace box or jump away from the chunk published just before never goes
out as is. Depending on ``mode`` the chunk is either withheld (fail closed, the default) or
clamped to the limits; both are counted per reason so /diagnostics says exactly what happened.

Chunks are offsets from the reference state at their stamp (``asyncvla_core.conventions``):
step ``i`` targets ``stamp + (i + 1) * step_period``. The guard turns them into absolute targets,
checks (and clamps) those, and turns them back into offsets.

Limits (REP-103 units; a limit <= 0 disables that check):

* joint position window ``joint_min``/``joint_max`` (rad): the targets of a ``joint_delta`` chunk,
  and for an ``ee_delta`` chunk the current joints (without IK the targets' joints are unknown);
* per step and per second: ``max_joint_step`` (rad per step) and ``max_joint_velocity`` (rad/s),
  ``max_linear_step`` (m) / ``max_linear_velocity`` (m/s), ``max_angular_step`` (rad) /
  ``max_angular_velocity`` (rad/s), applied between the current state and step 0 and between
  consecutive steps (the per-second limit times ``step_period`` bounds each step too);
* workspace box ``workspace_min``/``workspace_max`` (m, base frame): the EE targets of an
  ``ee_delta`` chunk, and for a ``joint_delta`` chunk the current EE position (no FK here);
* chunk jump ``max_jump_joint`` (rad), ``max_jump_linear`` (m), ``max_jump_angular`` (rad):
  where the previously published chunk still covers a step time, the new target may not differ
  from the old one by more (this is what makes a chunk boundary a jerk).

Clamping order: jump, position limits/box, then steps (so the result respects the steps from the
current state); everything is checked again afterwards, and a chunk still out of bounds (e.g. the
robot already stands outside the box) is withheld whatever the mode.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from asyncvla_core.chunk import Chunk
from asyncvla_core.rotations import matrix_to_rotvec, quaternion_to_matrix, rotvec_to_matrix

GUARD_MODES = ("withhold", "clamp")


@dataclass(frozen=True)
class GuardLimits:
    mode: str = "withhold"
    joint_min: tuple[float, ...] = (-np.pi,) * 6
    joint_max: tuple[float, ...] = (np.pi,) * 6
    max_joint_step: float = 0.05
    max_joint_velocity: float = 0.5
    max_linear_step: float = 0.005
    max_linear_velocity: float = 0.05
    max_angular_step: float = 0.05
    max_angular_velocity: float = 0.5
    workspace_min: tuple[float, float, float] = (-1.0, -1.0, -0.2)
    workspace_max: tuple[float, float, float] = (1.0, 1.0, 1.2)
    max_jump_joint: float = 0.05
    max_jump_linear: float = 0.005
    max_jump_angular: float = 0.05

    def __post_init__(self) -> None:
        if self.mode not in GUARD_MODES:
            raise ValueError(f"unknown guard mode {self.mode!r}; expected one of {GUARD_MODES}")
        if len(self.joint_min) != 6 or len(self.joint_max) != 6:
            raise ValueError("joint_min and joint_max need 6 values (rad)")
        if any(lo >= hi for lo, hi in zip(self.joint_min, self.joint_max)):
            raise ValueError("joint_min must be below joint_max for every joint")
        if len(self.workspace_min) != 3 or len(self.workspace_max) != 3:
            raise ValueError("workspace_min and workspace_max need 3 values (m)")
        if any(lo >= hi for lo, hi in zip(self.workspace_min, self.workspace_max)):
            raise ValueError("workspace_min must be below workspace_max on every axis")

    def step_limit(self, per_step: float, per_second: float, step_period: float) -> float:
        """The tighter of the two limits for one step (inf when both are disabled)."""
        limits = [v for v in (per_step, per_second * step_period if per_second > 0 else 0.0)
                  if v > 0]
        return min(limits) if limits else np.inf


@dataclass
class GuardResult:
    chunk: Chunk | None  # what may be published (clamped in clamp mode), None when withheld
    violations: dict[str, int] = field(default_factory=dict)  # reason -> violating values
    message: str = ""  # one line for logs and diagnostics ("" when nothing was violated)

    @property
    def withheld(self) -> bool:
        return self.chunk is None

    @property
    def clamped(self) -> bool:
        return self.chunk is not None and bool(self.violations)


# --- rotation helpers (rotation vectors in rad) ---------------------------------------------------
def rotation_angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle (rad) of the rotation taking orientation matrix ``a`` to ``b``."""
    cos = (np.trace(b @ a.T) - 1.0) / 2.0
    return float(np.arccos(np.clip(cos, -1.0, 1.0)))


def _orientation(state: np.ndarray) -> np.ndarray:
    """The EE orientation matrix of a 13-d robot state (its xyzw quaternion, renormalised)."""
    quat = np.asarray(state[9:13], dtype=np.float64)
    return quaternion_to_matrix(quat / np.linalg.norm(quat))


def _limit_rotation(previous: np.ndarray, target: np.ndarray, limit: float) -> np.ndarray:
    """``target`` moved towards ``previous`` so the rotation between them is at most ``limit``."""
    relative = matrix_to_rotvec(target @ previous.T)
    angle = float(np.linalg.norm(relative))
    if angle <= limit:
        return target
    return rotvec_to_matrix(relative * (limit / angle)) @ previous


def _limit_vector(previous: np.ndarray, target: np.ndarray, limit: float) -> np.ndarray:
    delta = target - previous
    norm = float(np.linalg.norm(delta))
    return target if norm <= limit else previous + delta * (limit / norm)


# --- the guard -----------------------------------------------------------------------------------
class OutputGuard:
    """Stateless apart from the limits: ``check(chunk, state, previous)`` per tick."""

    TOLERANCE = 1e-6  # m or rad: float32 rounding slack, so a clamped chunk passes its re-check

    def __init__(self, limits: GuardLimits, action_space: str) -> None:
        if action_space not in ("ee_delta", "joint_delta"):
            raise ValueError(f"the output guard knows ee_delta and joint_delta, not {action_space!r}")
        self.limits = limits
        self.action_space = action_space

    def check(self, chunk: Chunk, state: np.ndarray, previous: Chunk | None) -> GuardResult:
        """Check ``chunk`` (offsets from ``chunk.reference``) against the limits.

        ``state`` is the 13-d robot state the chunk was computed from; ``previous`` the chunk
        published last (None after a gap: then there is no jump to check).
        """
        actions = np.asarray(chunk.actions, dtype=np.float64)
        if not np.all(np.isfinite(actions)) or not np.all(np.isfinite(chunk.reference)):
            return GuardResult(None, {"non_finite": 1}, "chunk contains NaN or inf")
        targets = self._targets(chunk)
        violations = self._violations(chunk, targets, state, previous)
        if not violations:
            return GuardResult(chunk)
        message = "limit violated: " + ", ".join(f"{k} x{v}" for k, v in sorted(violations.items()))
        if self.limits.mode == "withhold":
            return GuardResult(None, violations, message + " (chunk withheld)")
        clamped_targets = self._clamp(chunk, targets, state, previous)
        clamped = Chunk(chunk.stamp_ns, chunk.step_period, chunk.reference,
                        self._offsets(chunk, clamped_targets, actions).astype(np.float32))
        remaining = self._violations(clamped, self._targets(clamped), state, previous)
        if remaining:
            detail = ", ".join(f"{k} x{v}" for k, v in sorted(remaining.items()))
            return GuardResult(None, violations,
                               message + f"; still violated after clamping ({detail}): withheld")
        return GuardResult(clamped, violations, message + " (clamped)")

    # --- absolute targets ---------------------------------------------------------------------
    def _targets(self, chunk: Chunk) -> dict[str, np.ndarray]:
        """Absolute targets per step: joints (H,6), or positions (H,3) + rotations (H,3,3)."""
        actions = np.asarray(chunk.actions, dtype=np.float64)
        ref = np.asarray(chunk.reference, dtype=np.float64)
        if self.action_space == "joint_delta":
            return {"joints": ref[None, :6] + actions[:, :6]}
        ref_rot = rotvec_to_matrix(ref[3:6])
        return {"positions": ref[None, :3] + actions[:, :3],
                "rotations": np.stack([rotvec_to_matrix(a[3:6]) @ ref_rot for a in actions])}

    def _offsets(self, chunk: Chunk, targets: dict[str, np.ndarray],
                 actions: np.ndarray) -> np.ndarray:
        out = actions.copy()
        ref = np.asarray(chunk.reference, dtype=np.float64)
        if self.action_space == "joint_delta":
            out[:, :6] = targets["joints"] - ref[None, :6]
        else:
            ref_rot_t = rotvec_to_matrix(ref[3:6]).T
            out[:, :3] = targets["positions"] - ref[None, :3]
            out[:, 3:6] = np.stack([matrix_to_rotvec(r @ ref_rot_t) for r in targets["rotations"]])
        return out

    def _previous_targets(self, previous: Chunk | None, chunk: Chunk
                          ) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
        """The previous chunk's targets at this chunk's step times (and which steps it covers)."""
        if previous is None:
            return None
        times_old, times_new = previous.step_times(), chunk.step_times()
        covered = (times_new >= times_old[0] - 1e-9) & (times_new <= times_old[-1] + 1e-9)
        if not covered.any():
            return None
        old = self._targets(previous)
        out: dict[str, np.ndarray] = {}
        for key, values in old.items():
            if key == "rotations":  # nearest step; rotations are not interpolated linearly
                index = np.abs(times_new[:, None] - times_old[None, :]).argmin(axis=1)
                out[key] = values[index]
            else:
                out[key] = np.stack([np.interp(times_new, times_old, values[:, d])
                                     for d in range(values.shape[1])], axis=1)
        return out, covered

    # --- checks -------------------------------------------------------------------------------
    def _violations(self, chunk: Chunk, targets: dict[str, np.ndarray], state: np.ndarray,
                    previous: Chunk | None) -> dict[str, int]:
        lim, tol = self.limits, self.TOLERANCE
        found: dict[str, int] = {}

        def count(key: str, mask: np.ndarray) -> None:
            n = int(np.count_nonzero(mask))
            if n:
                found[key] = found.get(key, 0) + n

        state = np.asarray(state, dtype=np.float64)
        joint_min, joint_max = np.asarray(lim.joint_min), np.asarray(lim.joint_max)
        box_min, box_max = np.asarray(lim.workspace_min), np.asarray(lim.workspace_max)
        dt = chunk.step_period
        if self.action_space == "joint_delta":
            joints = targets["joints"]
            count("joint_limit", (joints < joint_min - tol) | (joints > joint_max + tol))
            count("workspace", (state[6:9] < box_min - tol) | (state[6:9] > box_max + tol))
            steps = np.abs(np.diff(np.vstack([state[None, :6], joints]), axis=0))
            self._count_steps(count, steps, lim.max_joint_step, lim.max_joint_velocity, dt,
                              "joint")
        else:
            positions, rotations = targets["positions"], targets["rotations"]
            count("joint_limit", (state[:6] < joint_min - tol) | (state[:6] > joint_max + tol))
            count("workspace", (positions < box_min - tol) | (positions > box_max + tol))
            start_rot = _orientation(state)
            linear = np.linalg.norm(np.diff(np.vstack([state[None, 6:9], positions]), axis=0),
                                    axis=1)
            chain = [start_rot, *rotations]
            angular = np.array([rotation_angle(a, b) for a, b in zip(chain[:-1], chain[1:])])
            self._count_steps(count, linear, lim.max_linear_step, lim.max_linear_velocity, dt,
                              "linear")
            self._count_steps(count, angular, lim.max_angular_step, lim.max_angular_velocity, dt,
                              "angular")
        old = self._previous_targets(previous, chunk)
        if old is not None:
            old_targets, covered = old
            if self.action_space == "joint_delta":
                jump = np.abs(targets["joints"] - old_targets["joints"])[covered]
                if lim.max_jump_joint > 0:
                    count("jump_joint", jump > lim.max_jump_joint + tol)
            else:
                linear = np.linalg.norm(targets["positions"] - old_targets["positions"], axis=1)
                angular = np.array([rotation_angle(a, b) for a, b in
                                    zip(old_targets["rotations"], targets["rotations"])])
                if lim.max_jump_linear > 0:
                    count("jump_linear", linear[covered] > lim.max_jump_linear + tol)
                if lim.max_jump_angular > 0:
                    count("jump_angular", angular[covered] > lim.max_jump_angular + tol)
        return found

    def _count_steps(self, count, steps: np.ndarray, per_step: float, per_second: float,
                     dt: float, kind: str) -> None:
        tol = self.TOLERANCE
        if per_step > 0:
            count(f"{kind}_step", steps > per_step + tol)
        if per_second > 0:
            count(f"{kind}_velocity", steps / dt > per_second + tol / dt)

    # --- clamping -----------------------------------------------------------------------------
    def _clamp(self, chunk: Chunk, targets: dict[str, np.ndarray], state: np.ndarray,
               previous: Chunk | None) -> dict[str, np.ndarray]:
        lim = self.limits
        state = np.asarray(state, dtype=np.float64)
        dt = chunk.step_period
        old = self._previous_targets(previous, chunk)
        if self.action_space == "joint_delta":
            joints = targets["joints"].copy()
            if old is not None and lim.max_jump_joint > 0:
                old_joints, covered = old[0]["joints"], old[1]
                joints[covered] = np.clip(joints[covered], old_joints[covered] - lim.max_jump_joint,
                                          old_joints[covered] + lim.max_jump_joint)
            joints = np.clip(joints, np.asarray(lim.joint_min), np.asarray(lim.joint_max))
            step = lim.step_limit(lim.max_joint_step, lim.max_joint_velocity, dt)
            current = state[:6]
            for i in range(len(joints)):
                joints[i] = current + np.clip(joints[i] - current, -step, step)
                current = joints[i]
            return {"joints": joints}
        positions, rotations = targets["positions"].copy(), targets["rotations"].copy()
        if old is not None:
            old_targets, covered = old
            for i in np.flatnonzero(covered):
                if lim.max_jump_linear > 0:
                    positions[i] = _limit_vector(old_targets["positions"][i], positions[i],
                                                 lim.max_jump_linear)
                if lim.max_jump_angular > 0:
                    rotations[i] = _limit_rotation(old_targets["rotations"][i], rotations[i],
                                                   lim.max_jump_angular)
        positions = np.clip(positions, np.asarray(lim.workspace_min), np.asarray(lim.workspace_max))
        linear_step = lim.step_limit(lim.max_linear_step, lim.max_linear_velocity, dt)
        angular_step = lim.step_limit(lim.max_angular_step, lim.max_angular_velocity, dt)
        current_pos = state[6:9]
        current_rot = _orientation(state)
        for i in range(len(positions)):
            positions[i] = _limit_vector(current_pos, positions[i], linear_step)
            rotations[i] = _limit_rotation(current_rot, rotations[i], angular_step)
            current_pos, current_rot = positions[i], rotations[i]
        return {"positions": positions, "rotations": rotations}
