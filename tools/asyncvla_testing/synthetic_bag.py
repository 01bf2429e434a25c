"""Write short synthetic rosbag2 recordings of the bridge topics (mcap or sqlite3), without ROS.

For tests and demos: the content is analytic, so an aligned episode can be checked against known
values. What is written (topics and types exactly as the bridges publish them, see
asyncvla_bridges/README.md):

- ``/camera/<view>/image_raw/compressed`` sensor_msgs/CompressedImage, JPEG, ``camera_fps`` per
  view, views offset by a few ms; the picture is a per-view background with a bar that moves with
  the frame number.
- ``/sensor/force_oct`` asyncvla_msgs/ForceOctBatch: samples at ``sensor_rate`` in batches of
  ``sensor_batch``, each with its own stamp. Sample ``k``: force = 0.2 + 0.05 sin(pi t) N,
  A-line[0] = k (the sample index, exact in float32), A-line[j] = sin(0.02 j + t) for j >= 1.
- ``/robot/joint_states`` sensor_msgs/JointState and ``/robot/ee_pose`` geometry_msgs/PoseStamped
  at ``robot_rate``; joint names in a shuffled order plus an extra joint (readers must map by name).
  Motion: see :class:`SyntheticMotion`.
- optionally ``/asyncvla/vl_features`` (one asyncvla_msgs/VLFeatures carrying the prompt) and the
  prompt in the bag's custom data (``asyncvla.prompt``).

Header stamps are on exact grids from ``start_ns``; the bag (receive) time of every message is its
stamp plus a latency, so a reader that used receive times would be visibly wrong.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asyncvla_core.conventions import DEFAULT_PROMPT, JOINT_NAMES
from asyncvla_core.rotations import quat_multiply

SYNTHETIC_START_NS = 1_700_000_000_000_000_000
_WRITTEN_JOINT_ORDER = (2, 0, 5, 1, 4, 3)  # indices into JOINT_NAMES, as the message lists them

TOPICS = {
    "sensor": ("/sensor/force_oct", "asyncvla_msgs/msg/ForceOctBatch"),
    "joints": ("/robot/joint_states", "sensor_msgs/msg/JointState"),
    "pose": ("/robot/ee_pose", "geometry_msgs/msg/PoseStamped"),
    "vl_features": ("/asyncvla/vl_features", "asyncvla_msgs/msg/VLFeatures"),
}
CAMERA_TOPIC = "/camera/{view}/image_raw/compressed"
CAMERA_TYPE = "sensor_msgs/msg/CompressedImage"


@dataclass(frozen=True)
class SyntheticMotion:
    """Smooth analytic robot motion; ``t`` is seconds since the recording start.

    Orientation R(t) = Rot(axis, theta(t)) R0, so R(t2) R(t1)^T is a rotation about ``axis`` by
    theta(t2) - theta(t1): its rotation vector is known in closed form.
    """

    axis: tuple[float, float, float] = (0.26726124, 0.53452248, 0.80178373)  # (1,2,3)/sqrt(14)
    base_quaternion: tuple[float, float, float, float] = (0.0, 0.70710678, 0.0, 0.70710678)

    def joints(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)[..., None]
        j = np.arange(6, dtype=np.float64)
        return 0.05 * j - 0.1 + 0.2 * np.sin(0.9 * t + j) + 0.03 * t

    def position(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        return np.stack([0.40 + 0.02 * np.sin(1.1 * t), -0.05 + 0.01 * t,
                         0.30 - 0.004 * t * t], axis=-1)

    def theta(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        return 0.1 + 0.25 * t + 0.05 * np.sin(2.0 * t)

    def quaternion(self, t: np.ndarray) -> np.ndarray:
        """(..., 4) xyzw, w >= 0."""
        half = self.theta(t)[..., None] / 2.0
        rot = np.concatenate([np.sin(half) * np.asarray(self.axis), np.cos(half)], axis=-1)
        q = quat_multiply(rot, np.broadcast_to(np.asarray(self.base_quaternion), rot.shape))
        q /= np.linalg.norm(q, axis=-1, keepdims=True)
        return np.where(q[..., 3:4] < 0, -q, q)

    def rotation_offset(self, t_ref: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Rotation vector of R(t) R(t_ref)^T."""
        delta = self.theta(t) - self.theta(t_ref)
        return np.asarray(delta)[..., None] * np.asarray(self.axis)


class SyntheticContent:
    """What the force/OCT probe and the cameras record; this default is the analytic test pattern.

    Why a class: a task family (``tools/asyncvla_testing/tracking_task.py``) records a scene whose pictures and
    contact signals depend on the episode, through the same writer. ``t`` is seconds since the
    recording start.
    """

    def sensor_rows(self, k: np.ndarray, t: np.ndarray, aline_length: int) -> np.ndarray:
        """(n, 1 + aline_length) float32: [force, A-line] of samples ``k`` at times ``t``."""
        return _sensor_rows(k, t, aline_length)

    def jpeg(self, view_index: int, frame: int, t: float, width: int, height: int) -> bytes:
        """The JPEG of frame ``frame`` of view ``view_index``, captured at ``t``."""
        return synthetic_jpeg(view_index, frame, width, height)


@dataclass(frozen=True)
class SyntheticBagSpec:
    """What to write. Stream keys (for ``omit``/``mistype``/``empty``): "sensor", "joints", "pose",
    and the view names."""

    duration: float = 2.5
    views: tuple[str, ...] = ("view1", "view2")
    image_size: tuple[int, int] = (56, 56)  # width, height
    camera_fps: float = 15.0
    sensor_rate: float = 650.0
    sensor_batch: int = 10
    robot_rate: float = 100.0
    aline_length: int = 1025
    start_ns: int = SYNTHETIC_START_NS
    latency_ns: int = 3_000_000
    camera_latency_ns: int = 20_000_000
    prompt: str | None = DEFAULT_PROMPT
    prompt_in_custom_data: bool = True
    vl_features_prompt: str | None = None  # also write one VLFeatures message with this prompt
    sensor_holes: tuple[tuple[float, float], ...] = ()  # [a, b) seconds: sensor samples dropped
    omit: tuple[str, ...] = ()  # streams not written at all
    mistype: tuple[str, ...] = ()  # streams written as std_msgs/String instead
    empty: tuple[str, ...] = ()  # streams whose topic exists but has no messages
    unstamped: tuple[str, ...] = ()  # streams written with zero header stamps (a driver bug)
    chunk_crcs: bool = True  # mcap: fill in chunk CRCs (as ros2 bag record does; rosbags writes 0)
    motion: SyntheticMotion = field(default_factory=SyntheticMotion)
    content: SyntheticContent = field(default_factory=SyntheticContent)


@dataclass
class SyntheticBag:
    """A written bag and the ground truth needed to check what is read from it."""

    path: Path
    spec: SyntheticBagSpec
    sensor_stamps_ns: np.ndarray  # stamps of the samples actually written (holes removed)
    sensor_index: np.ndarray  # sample index k of each written sample (== A-line[0])
    robot_stamps_ns: np.ndarray
    frame_stamps_ns: dict[str, np.ndarray]

    @property
    def motion(self) -> SyntheticMotion:
        return self.spec.motion

    def seconds(self, stamps_ns: np.ndarray) -> np.ndarray:
        """Seconds since the recording start of ROS-time stamps."""
        return (np.asarray(stamps_ns, dtype=np.int64) - self.spec.start_ns) / 1e9

    def sensor_rows(self, k: np.ndarray) -> np.ndarray:
        """(n, 1 + aline_length) float32: the rows written for sample indices ``k``."""
        k = np.asarray(k, dtype=np.int64).reshape(-1)
        stamps = self.spec.start_ns + np.round(k * 1e9 / self.spec.sensor_rate).astype(np.int64)
        return self.spec.content.sensor_rows(k, self.seconds(stamps), self.spec.aline_length)


def _sensor_rows(k: np.ndarray, t: np.ndarray, aline_length: int) -> np.ndarray:
    rows = np.empty((k.size, 1 + aline_length), dtype=np.float32)
    rows[:, 0] = 0.2 + 0.05 * np.sin(math.pi * t)
    rows[:, 1] = k
    j = np.arange(1, aline_length, dtype=np.float64)
    rows[:, 2:] = np.sin(0.02 * j[None, :] + t[:, None])
    return rows


def synthetic_jpeg(view_index: int, frame: int, width: int, height: int) -> bytes:
    """A small JPEG: per-view colour, a bright bar at a frame-dependent column."""
    import cv2

    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:] = ((40 + 60 * view_index) % 256, 90, (200 - 50 * view_index) % 256)
    bar = (frame * 3) % max(1, width - 6)
    image[:, bar:bar + 6] = 255
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise RuntimeError("cv2 could not encode a JPEG")
    return buf.tobytes()


def write_synthetic_bag(path: str | Path, storage: str = "mcap",
                        spec: SyntheticBagSpec | None = None) -> SyntheticBag:
    """Write a rosbag2 directory at ``path`` (must not exist); ``storage`` "mcap" or "sqlite3"."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    from asyncvla_training.data.bag_types import shipped_typestore

    spec = spec or SyntheticBagSpec()
    plugins = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
    if storage not in plugins:
        raise ValueError(f"storage must be one of {sorted(plugins)}, got {storage!r}")
    path = Path(path)
    ts = shipped_typestore()
    T = ts.types
    motion = spec.motion
    events: list[tuple[int, str, bytes]] = []  # (bag time, stream key, serialized)

    def stamp(ns: int):
        return T["builtin_interfaces/msg/Time"](sec=int(ns // 1_000_000_000),
                                                nanosec=int(ns % 1_000_000_000))

    def header(ns: int, frame_id: str):
        return T["std_msgs/msg/Header"](stamp=stamp(ns), frame_id=frame_id)

    def st(key: str, ns: int) -> int:
        return 0 if key in spec.unstamped else ns

    def add(key: str, bag_ns: int, msg, msgtype: str) -> None:
        if key in spec.omit or key in spec.empty:
            return
        if key in spec.mistype:
            msg, msgtype = T["std_msgs/msg/String"](data=f"not a {msgtype}"), "std_msgs/msg/String"
        events.append((bag_ns, key, ts.serialize_cdr(msg, msgtype)))

    duration_ns = int(round(spec.duration * 1e9))
    # Force/OCT samples.
    n_samples = int(spec.duration * spec.sensor_rate)
    k_all = np.arange(n_samples, dtype=np.int64)
    s_all = spec.start_ns + np.round(k_all * 1e9 / spec.sensor_rate).astype(np.int64)
    t_all = (s_all - spec.start_ns) / 1e9
    keep = np.ones(n_samples, dtype=bool)
    for a, b in spec.sensor_holes:
        keep &= ~((t_all >= a) & (t_all < b))
    kept_k = k_all[keep]
    for start in range(0, kept_k.size, spec.sensor_batch):
        k = kept_k[start:start + spec.sensor_batch]
        s = s_all[k]
        rows = np.asarray(spec.content.sensor_rows(k, t_all[k], spec.aline_length), dtype=np.float32)
        msg = T["asyncvla_msgs/msg/ForceOctBatch"](
            header=header(st("sensor", int(s[-1])), "oct_probe"), num_samples=k.size,
            aline_length=spec.aline_length, sample_stamps=[stamp(st("sensor", int(x))) for x in s],
            force=rows[:, 0].copy(), alines=rows[:, 1:].reshape(-1).copy(), clock_offset=0.001)
        add("sensor", int(s[-1]) + spec.latency_ns, msg, TOPICS["sensor"][1])
    # Robot state.
    n_robot = int(spec.duration * spec.robot_rate)
    r_stamps = spec.start_ns + np.round(np.arange(n_robot) * 1e9 / spec.robot_rate).astype(np.int64)
    r_t = (r_stamps - spec.start_ns) / 1e9
    joints, positions, quats = motion.joints(r_t), motion.position(r_t), motion.quaternion(r_t)
    names = [JOINT_NAMES[i] for i in _WRITTEN_JOINT_ORDER] + ["tool_finger"]
    for i, ns in enumerate(r_stamps):
        values = np.array([joints[i, j] for j in _WRITTEN_JOINT_ORDER] + [0.0])
        msg = T["sensor_msgs/msg/JointState"](header=header(st("joints", int(ns)), ""), name=names,
                                              position=values, velocity=np.zeros(0),
                                              effort=np.zeros(0))
        add("joints", int(ns) + spec.latency_ns, msg, TOPICS["joints"][1])
        p, q = positions[i], quats[i]
        pose = T["geometry_msgs/msg/Pose"](
            position=T["geometry_msgs/msg/Point"](x=p[0], y=p[1], z=p[2]),
            orientation=T["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3]))
        msg = T["geometry_msgs/msg/PoseStamped"](header=header(st("pose", int(ns)), "base_link"), pose=pose)
        add("pose", int(ns) + spec.latency_ns + 1000, msg, TOPICS["pose"][1])
    # Cameras.
    frame_stamps: dict[str, np.ndarray] = {}
    width, height = spec.image_size
    for v, view in enumerate(spec.views):
        offset = v * 7_000_000
        n_frames = int((duration_ns - offset) * spec.camera_fps / 1e9)
        stamps = spec.start_ns + offset + np.round(np.arange(n_frames) * 1e9 / spec.camera_fps
                                                   ).astype(np.int64)
        frame_stamps[view] = stamps
        for n, ns in enumerate(stamps):
            msg = T["sensor_msgs/msg/CompressedImage"](
                header=header(st(view, int(ns)), f"{view}_optical_frame"), format="jpeg",
                data=np.frombuffer(spec.content.jpeg(v, n, (int(ns) - spec.start_ns) / 1e9, width,
                                                     height), dtype=np.uint8))
            add(view, int(ns) + spec.camera_latency_ns, msg, CAMERA_TYPE)
    if spec.vl_features_prompt is not None:
        import hashlib

        prompt = spec.vl_features_prompt
        msg = T["asyncvla_msgs/msg/VLFeatures"](
            header=header(spec.start_ns + 400_000_000, "vlm"), sequence=1,
            view_names=list(spec.views), view_stamps=[stamp(spec.start_ns)] * len(spec.views),
            prompt_id=hashlib.sha256(prompt.encode()).hexdigest()[:16], prompt=prompt,
            model_id="synthetic", adapter_id="", feature_layer=-1, compute_time=0.1,
            token_count=10, num_tokens=1, feature_dim=2, dtype=0,
            data=np.zeros(8, dtype=np.uint8))
        add("vl_features", spec.start_ns + 450_000_000, msg, TOPICS["vl_features"][1])

    topic_of = {k: v for k, v in TOPICS.items()}
    for view in spec.views:
        topic_of[view] = (CAMERA_TOPIC.format(view=view), CAMERA_TYPE)
    events.sort(key=lambda e: e[0])
    with Writer(path, version=9, storage_plugin=plugins[storage]) as writer:
        if spec.prompt is not None and spec.prompt_in_custom_data:
            writer.set_custom_data("asyncvla.prompt", spec.prompt)
        connections = {}
        for key, (topic, msgtype) in topic_of.items():
            if key in spec.omit or (key == "vl_features" and spec.vl_features_prompt is None):
                continue
            if key in spec.mistype:
                msgtype = "std_msgs/msg/String"
            connections[key] = writer.add_connection(topic, msgtype, typestore=ts)
        for bag_ns, key, data in events:
            writer.write(connections[key], bag_ns, data)
    if storage == "mcap" and spec.chunk_crcs:
        from asyncvla_training.data.mcap_crc import add_chunk_crcs

        for file in sorted(path.glob("*.mcap")):
            add_chunk_crcs(file)
    return SyntheticBag(path=path, spec=spec, sensor_stamps_ns=s_all[keep], sensor_index=kept_k,
                        robot_stamps_ns=r_stamps, frame_stamps_ns=frame_stamps)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a synthetic rosbag2 of the bridge topics.")
    parser.add_argument("path", help="output bag directory (must not exist)")
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--views", default="view1,view2")
    parser.add_argument("--width", type=int, default=56)
    parser.add_argument("--height", type=int, default=56)
    args = parser.parse_args(argv)
    spec = SyntheticBagSpec(duration=args.duration, views=tuple(args.views.split(",")),
                            image_size=(args.width, args.height))
    bag = write_synthetic_bag(args.path, args.storage, spec)
    print(f"wrote {bag.path} ({args.storage}, {args.duration:.1f} s, views {','.join(spec.views)})")


if __name__ == "__main__":
    main()
