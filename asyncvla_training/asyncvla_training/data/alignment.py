"""Align screened bag streams to the action clock: BagStreams -> Episode(s).

Rules (documented in asyncvla_training/TRAINING_DATA.md, "Alignment"):

- Action times: every ``step_period`` from the first time all inputs exist (the sensor stream
  holds ``sensor_window`` samples, every view has a frame, a joint state and a pose exist) to the
  last time whose ``horizon`` future steps still lie inside the recorded robot motion.
- At each time ``t``, exactly as the action node at a tick (``ActionCore.tick``):
  sensor window = the newest ``sensor_window`` samples stamped <= t, refused when the newest is
  older than ``sensor_max_age`` or two neighbours are more than ``sensor_max_gap`` apart;
  state = newest joint state <= t and newest EE pose <= t (no interpolation: the node uses the
  newest message), refused when the older of the two is more than ``robot_state_max_age`` old;
  frames = per view the newest frame <= t (its stamp is recorded), refused when a frame is older
  than ``max_frame_age`` or the views are more than ``max_view_skew`` apart (the VLM node's rules).
- Targets: the recorded robot motion at t + (i+1) step_period, i < horizon, interpolated between
  the two bracketing messages (linear for joints and position, slerp for orientation); refused when
  the bracketing messages are more than ``robot_max_gap`` apart. Expressed per
  ``conventions``: offsets from the reference components of the state at t (joint_delta: q - q_ref;
  ee_delta: p - p_ref and the rotation vector of R_target R_ref^T), tool = ``tool_value``.
- Times whose inputs are refused are skipped and counted by reason; an episode is split at them
  (segments named ``<bag>#<k>``) so a sample never spans a hole.
- Frame sets: besides the set at each action time, every set the VLM could have used up to
  ``vl_lookback`` before a segment's first action time (a set per frame that completed one: per
  view the newest frame at or before it, kept when it passes ``max_view_skew``), so training can
  pair a sample with the features of a set hundreds of milliseconds older.
- Recorded VL ages: where the bag has the VLM node's VLFeatures, the age a node would have met at
  each action time (the newest message received by then: time minus its stamp; -1 before the first).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from asyncvla_core import freshness
from asyncvla_core.conventions import ACTION_DIM, ACTION_SPACES, continuous_orientation
from asyncvla_core.rotations import quat_conjugate, quat_multiply, quat_slerp, quat_to_rotvec
from .bag_reader import BagStreams
from .episode import Episode
from .errors import BagDataError
from .windows import FrameLoader, SensorWindows

SEGMENT_SEPARATOR = "#"


@dataclass(frozen=True)
class AlignmentConfig:
    step_period: float = 0.1  # s between action times (== the chunk step period)
    horizon: int = 8
    sensor_window: int = 65
    action_space: str = "ee_delta"
    sensor_max_gap: float = freshness.SENSOR_MAX_GAP_S  # s, the action node's rule
    sensor_max_age: float = freshness.SENSOR_MAX_AGE_S  # s, the action node's rule
    robot_state_max_age: float = freshness.ROBOT_STATE_MAX_AGE_S  # s, the action node's rule
    robot_max_gap: float = 0.05  # s between the robot messages a target is interpolated from
    max_frame_age: float | None = freshness.MAX_FRAME_AGE_S  # s, the VLM node's (None: no limit)
    max_view_skew: float | None = freshness.MAX_VIEW_SKEW_S  # s, the VLM node's (None: no limit)
    tool_value: float = 1.0  # no tool topic exists; the original system recorded a constant 1.0
    min_episode_length: int = 1  # segments shorter than this are dropped (counted)
    vl_lookback: float = 2.0  # s of frame sets kept before a segment's first action time

    def __post_init__(self) -> None:
        if self.action_space not in ACTION_SPACES:
            raise ValueError(f"action_space must be one of {sorted(ACTION_SPACES)}, "
                             f"got {self.action_space!r}")
        if not self.step_period > 0 or self.horizon < 1 or self.sensor_window < 1:
            raise ValueError("step_period must be > 0, horizon and sensor_window >= 1")


@dataclass
class AlignmentReport:
    """What happened to one bag: how many action times were used, skipped (why), split."""

    bag: str
    name: str
    action_times: int = 0
    samples: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    segments: int = 0
    short_segments_dropped: int = 0
    dropped_messages: dict[str, int] = field(default_factory=dict)
    prompt_source: str = ""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


# ----------------------------------------------------------------------------- helpers
def states_from(joints: np.ndarray, positions: np.ndarray, quaternions: np.ndarray) -> np.ndarray:
    """Vectorised conventions.robot_state_vector for the consecutive states of ONE motion (an
    episode segment): (n, 13) float32, quaternions signed by conventions.continuous_orientation,
    the first against the anchor orientation, as the action node's first state after a reset."""
    q = continuous_orientation(quaternions)
    return np.concatenate([joints, positions, q], axis=1).astype(np.float32)


def chunk_targets(states: np.ndarray, target_joints: np.ndarray, target_positions: np.ndarray,
                  target_quaternions: np.ndarray, action_space: str, tool_value: float) -> np.ndarray:
    """(n, H, 7) float32 action chunks: targets as offsets of the states' reference components.

    The reference is taken from the float32 state, as the action node does at run time
    (``reference_components(state)``), so reference + action reproduces the target exactly.
    """
    ref = np.asarray(states, dtype=np.float64)
    n, horizon = target_joints.shape[:2]
    actions = np.empty((n, horizon, ACTION_DIM), dtype=np.float64)
    if action_space == "joint_delta":
        actions[..., :6] = target_joints - ref[:, None, :6]
    elif action_space == "ee_delta":
        actions[..., :3] = target_positions - ref[:, None, 6:9]
        relative = quat_multiply(target_quaternions, quat_conjugate(ref[:, None, 9:13]))
        actions[..., 3:6] = quat_to_rotvec(relative)
    else:
        raise ValueError(f"unknown action space {action_space!r}")
    actions[..., 6] = tool_value
    return actions.astype(np.float32)


def _newest_at_or_before(stamps: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of the newest stamp <= each time (-1 when none)."""
    return np.searchsorted(stamps, times, side="right") - 1


def _bracket(stamps: np.ndarray, times: np.ndarray, max_gap_ns: int):
    """(lo, hi, weight, ok) for linear interpolation of a stream at ``times``."""
    if stamps.size < 2:
        zeros = np.zeros(times.shape, dtype=np.int64)
        return zeros, zeros, np.zeros(times.shape), np.zeros(times.shape, dtype=bool)
    lo = np.clip(np.searchsorted(stamps, times, side="right") - 1, 0, stamps.size - 2)
    hi = lo + 1
    span = stamps[hi] - stamps[lo]
    w = (times - stamps[lo]) / np.where(span > 0, span, 1)
    ok = (times >= stamps[0]) & (times <= stamps[-1]) & (span <= max_gap_ns) & (span > 0)
    return lo, hi, np.clip(w, 0.0, 1.0), ok


def _segments(valid: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) runs of True."""
    padded = np.concatenate([[False], valid, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


# ----------------------------------------------------------------------------- alignment
def align_streams(streams: BagStreams, config: AlignmentConfig,
                  prompt: str) -> tuple[list[Episode], AlignmentReport]:
    """Episodes (one per contiguous run of valid action times) and the report of one bag."""
    cfg = config
    report = AlignmentReport(bag=str(streams.path), name=streams.name,
                             dropped_messages=dict(streams.dropped),
                             prompt_source=streams.prompt_source)
    dt = int(round(cfg.step_period * 1e9))
    T, H = cfg.sensor_window, cfg.horizon
    s_stamps = streams.sensor_stamps_ns
    if s_stamps.size < T:
        raise BagDataError(f"only {s_stamps.size} usable sensor samples; a window needs {T}",
                           bag=streams.path, kind="no_samples")
    view_first = [int(streams.frames[v].stamps_ns[0]) for v in streams.views]
    t_first = max(int(s_stamps[T - 1]), *view_first, int(streams.joint_stamps_ns[0]),
                  int(streams.pose_stamps_ns[0]))
    t_motion_end = min(int(streams.joint_stamps_ns[-1]), int(streams.pose_stamps_ns[-1]))
    t_last = t_motion_end - H * dt
    if t_last < t_first:
        ranges = {"sensor": s_stamps, "joints": streams.joint_stamps_ns,
                  "pose": streams.pose_stamps_ns}
        ranges.update({v: streams.frames[v].stamps_ns for v in streams.views})
        origin = min(int(r[0]) for r in ranges.values())
        spans = ", ".join(f"{k} {(int(r[0]) - origin) / 1e9:.2f}..{(int(r[-1]) - origin) / 1e9:.2f} s"
                          for k, r in ranges.items())
        raise BagDataError(
            f"no action time has a full input and {H} future steps of motion: inputs complete "
            f"at {(t_first - origin) / 1e9:.2f} s, motion ends at {(t_motion_end - origin) / 1e9:.2f} s "
            f"({H} x {cfg.step_period} s needed in between); stream stamps: {spans}",
            bag=streams.path, kind="no_samples")
    times = t_first + dt * np.arange((t_last - t_first) // dt + 1, dtype=np.int64)
    n = times.size
    report.action_times = n
    reasons: dict[str, np.ndarray] = {}

    # Sensor windows: newest T samples <= t, fresh, no gap.
    ends = np.searchsorted(s_stamps, times, side="right")
    enough = ends >= T
    safe_ends = np.maximum(ends, T)
    reasons["sensor_too_few_samples"] = ~enough
    age = times - s_stamps[safe_ends - 1]
    reasons["sensor_stale"] = enough & (age > int(round(cfg.sensor_max_age * 1e9)))
    big = np.concatenate([[0], np.cumsum(np.diff(s_stamps) > int(round(cfg.sensor_max_gap * 1e9)))])
    reasons["sensor_gap"] = enough & ((big[safe_ends - 1] - big[safe_ends - T]) > 0)

    # Frames: newest per view <= t.
    frame_idx = np.stack([_newest_at_or_before(streams.frames[v].stamps_ns, times)
                          for v in streams.views], axis=1)
    frame_stamps = np.stack([streams.frames[v].stamps_ns[np.maximum(frame_idx[:, k], 0)]
                             for k, v in enumerate(streams.views)], axis=1)
    reasons["frame_missing"] = (frame_idx < 0).any(axis=1)
    if cfg.max_frame_age is not None:
        reasons["frame_stale"] = ((times[:, None] - frame_stamps)
                                  > int(round(cfg.max_frame_age * 1e9))).any(axis=1)
    if cfg.max_view_skew is not None and len(streams.views) > 1:
        reasons["view_skew"] = (frame_stamps.max(axis=1) - frame_stamps.min(axis=1)
                                ) > int(round(cfg.max_view_skew * 1e9))

    # State: newest joint state and newest pose <= t.
    ji = _newest_at_or_before(streams.joint_stamps_ns, times)
    pi = _newest_at_or_before(streams.pose_stamps_ns, times)
    reasons["state_missing"] = (ji < 0) | (pi < 0)
    ji, pi = np.maximum(ji, 0), np.maximum(pi, 0)
    state_stamp = np.minimum(streams.joint_stamps_ns[ji], streams.pose_stamps_ns[pi])
    reasons["state_stale"] = (times - state_stamp) > int(round(cfg.robot_state_max_age * 1e9))

    # Targets: interpolated motion at t + (i+1) dt.
    tau = times[:, None] + dt * np.arange(1, H + 1, dtype=np.int64)[None, :]
    gap = int(round(cfg.robot_max_gap * 1e9))
    jlo, jhi, jw, jok = _bracket(streams.joint_stamps_ns, tau, gap)
    plo, phi, pw, pok = _bracket(streams.pose_stamps_ns, tau, gap)
    reasons["target_gap"] = ~(jok & pok).all(axis=1)

    invalid = np.zeros(n, dtype=bool)
    for key, mask in reasons.items():
        count = int(mask.sum())
        if count:
            report.skipped[key] = count
        invalid |= mask
    valid = ~invalid

    target_joints = (streams.joint_positions[jlo] * (1.0 - jw[..., None])
                     + streams.joint_positions[jhi] * jw[..., None])
    target_positions = (streams.positions[plo] * (1.0 - pw[..., None])
                        + streams.positions[phi] * pw[..., None])
    target_quats = quat_slerp(streams.quaternions[plo], streams.quaternions[phi], pw)

    episodes: list[Episode] = []
    segments = [(a, b) for a, b in _segments(valid)]
    kept = [(a, b) for a, b in segments if b - a >= cfg.min_episode_length]
    report.short_segments_dropped = len(segments) - len(kept)
    candidates = candidate_frame_sets(streams, cfg)
    vl_ages = recorded_vl_ages(streams.vl_features_ns, times)
    for k, (a, b) in enumerate(kept):
        name = streams.name if len(kept) == 1 else f"{streams.name}{SEGMENT_SEPARATOR}{k}"
        sel = slice(a, b)
        lookback = int(times[a]) - int(round(cfg.vl_lookback * 1e9))
        ready = candidates.max(axis=1) if candidates.size else np.zeros(0, np.int64)
        seg_sets = candidates[(ready >= lookback) & (ready <= int(times[b - 1]))]
        seg_sets = np.unique(np.concatenate([seg_sets, frame_stamps[sel]]), axis=0)
        seg_sets = seg_sets[np.lexsort(tuple(seg_sets.T[::-1]) + (seg_sets.max(axis=1),))]
        encoded = {v: {} for v in streams.views}
        for c, v in enumerate(streams.views):
            view = streams.frames[v]
            rows = np.searchsorted(view.stamps_ns, seg_sets[:, c])
            for stamp, row in zip(seg_sets[:, c], rows):
                encoded[v][int(stamp)] = (view.data[int(row)], view.formats[int(row)])
        # States per segment: orientation continuity restarts where the node's would (a gap).
        seg_states = states_from(streams.joint_positions[ji[sel]], streams.positions[pi[sel]],
                                 streams.quaternions[pi[sel]])
        actions = chunk_targets(seg_states, target_joints[sel], target_positions[sel],
                                target_quats[sel], cfg.action_space, cfg.tool_value)
        episodes.append(Episode(
            name=name, step_period=float(cfg.step_period), times_ns=times[sel].copy(),
            views=tuple(streams.views), frame_stamps_ns=frame_stamps[sel].copy(),
            sensor_windows=SensorWindows(streams.sensor_rows, ends[sel].copy(), T),
            states=seg_states.copy(), actions=actions, action_space=cfg.action_space,
            prompt=prompt, load_frames=FrameLoader(streams.views, seg_sets, encoded),
            frame_sets_ns=seg_sets,
            recorded_vl_ages_ns=None if vl_ages is None else vl_ages[sel].copy()))
        # The loader is indexed like the episode's frame sets: the same rows in the same order.
        assert np.array_equal(episodes[-1].frame_sets_ns, seg_sets)
    report.segments = len(kept)
    report.samples = int(sum(len(e) for e in episodes))
    return episodes, report


def candidate_frame_sets(streams: BagStreams, cfg: AlignmentConfig) -> np.ndarray:
    """(M, V) every frame set the VLM could have used: at each frame's stamp, per view the
    newest frame at or before it; kept when every view has one and (``max_view_skew``) the
    views are close enough in time, as the VLM node's ``FrameStore.collect`` requires."""
    views = streams.views
    instants = np.unique(np.concatenate([streams.frames[v].stamps_ns for v in views]))
    idx = np.stack([_newest_at_or_before(streams.frames[v].stamps_ns, instants) for v in views],
                   axis=1)
    ok = (idx >= 0).all(axis=1)
    sets = np.stack([streams.frames[v].stamps_ns[np.maximum(idx[:, c], 0)]
                     for c, v in enumerate(views)], axis=1)
    if cfg.max_view_skew is not None and len(views) > 1:
        ok &= (sets.max(axis=1) - sets.min(axis=1)) <= int(round(cfg.max_view_skew * 1e9))
    return np.unique(sets[ok], axis=0) if ok.any() else np.zeros((0, len(views)), np.int64)


def recorded_vl_ages(vl_features_ns: np.ndarray | None, times: np.ndarray) -> np.ndarray | None:
    """(N,) int64 age of the VL features a node ticking at ``times`` acted on (the newest
    VLFeatures received at or before each time: time minus its stamp), -1 before the first;
    None without recorded VLFeatures."""
    if vl_features_ns is None or len(vl_features_ns) == 0:
        return None
    received, stamps = vl_features_ns[:, 0], vl_features_ns[:, 1]
    newest = _newest_at_or_before(received, times)
    return np.where(newest >= 0, times - stamps[np.maximum(newest, 0)], -1).astype(np.int64)


def episode_group(episode_or_name) -> str:
    """The recording an episode comes from (segments of one bag share it): the split unit."""
    name = getattr(episode_or_name, "name", episode_or_name)
    return str(name).split(SEGMENT_SEPARATOR, 1)[0]
