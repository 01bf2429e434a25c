"""Read the bridge topics of one rosbag2 recording into time-stamped arrays (no ROS needed).

Every time used downstream is a *header stamp* (ROS time of capture; per-sample stamps for
ForceOctBatch), never the bag's receive time. Messages are screened with the rules of the runtime
nodes, so training sees what the nodes would have accepted:

- sensor samples: non-finite samples are dropped, and a sample whose stamp is not newer than the
  last accepted one is dropped (``SensorWindow.add_batch``); batches with inconsistent sizes are
  dropped whole (``ActionNode._on_sensor``);
- camera frames: a frame older than the view's newest accepted frame is dropped
  (``FrameStore.put``); an equal stamp replaces the frame;
- joint states: positions are mapped by ``joint_names`` (``conventions.joint_positions_by_name``,
  as the action node does); a message lacking one of them, or with non-finite positions, is
  dropped;
- EE poses: zero or non-finite quaternions/positions are dropped (``robot_state_vector``).

Damage is refused, never read around (``_Integrity``): a storage error part way (an mcap chunk
CRC mismatch included), per-topic counts that differ from the bag's metadata, undecodable
messages or images raise BagDataError ``corrupt``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asyncvla_core.conventions import JOINT_NAMES, joint_positions_by_name, sensor_batch_reason
from .errors import BagDataError
from .windows import image_problem

CAMERA_TYPE = "sensor_msgs/msg/CompressedImage"
JOINT_STATE_TYPE = "sensor_msgs/msg/JointState"
POSE_TYPE = "geometry_msgs/msg/PoseStamped"
SENSOR_TYPE = "asyncvla_msgs/msg/ForceOctBatch"
VL_FEATURES_TYPE = "asyncvla_msgs/msg/VLFeatures"
PROMPT_CUSTOM_DATA_KEY = "asyncvla.prompt"


@dataclass(frozen=True)
class BagTopics:
    """Topic names (defaults: what the bridges publish, asyncvla_bridges/README.md)."""

    camera_topic: str = "/camera/{view}/image_raw/compressed"
    joint_state_topic: str = "/robot/joint_states"
    pose_topic: str = "/robot/ee_pose"
    sensor_topic: str = "/sensor/force_oct"
    vl_features_topic: str = "/asyncvla/vl_features"  # optional: source of the recorded prompt
    joint_names: tuple[str, ...] = JOINT_NAMES


@dataclass
class ViewFrames:
    stamps_ns: np.ndarray  # (F,) int64, strictly increasing
    data: list[bytes]  # encoded image per stamp
    formats: list[str]


@dataclass
class BagStreams:
    """The raw, screened streams of one bag, in header-stamp time."""

    path: Path
    name: str
    views: tuple[str, ...]
    frames: dict[str, ViewFrames]
    sensor_stamps_ns: np.ndarray  # (M,) int64 strictly increasing
    sensor_rows: np.ndarray  # (M, 1 + aline_length) float32: force, A-line
    joint_stamps_ns: np.ndarray  # (J,) int64 sorted
    joint_positions: np.ndarray  # (J, 6) float64, in BagTopics.joint_names order
    pose_stamps_ns: np.ndarray  # (P,) int64 sorted
    positions: np.ndarray  # (P, 3) float64
    quaternions: np.ndarray  # (P, 4) float64 xyzw, unit, w >= 0
    prompt: str | None
    prompt_source: str
    dropped: dict[str, int] = field(default_factory=dict)
    definition_sources: dict[str, str] = field(default_factory=dict)
    #: (L, 2) int64 of the recorded VLFeatures: [time the recorder received it, its header stamp
    #: (the newest camera frame behind it)], by receive time; None when the bag has none. What
    #: a node ticking at t acted on: the newest received by t, ``t - stamp`` old.
    vl_features_ns: np.ndarray | None = None


def stamp_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _open_reader(path: Path):
    from rosbags.rosbag2 import Reader

    if not path.exists():
        raise BagDataError("does not exist", bag=path, kind="missing_bag")
    if path.is_dir() and not (path / "metadata.yaml").is_file():
        storage = sorted(p.name for p in path.iterdir() if p.suffix in (".mcap", ".db3"))
        hint = (f"; it holds {', '.join(storage)} (an interrupted recording? run "
                f"`ros2 bag reindex {path}` or pass the storage file itself)") if storage else ""
        raise BagDataError(f"no metadata.yaml: not a rosbag2 directory{hint}", bag=path,
                           kind="missing_metadata")
    try:
        reader = Reader(path)
        reader.open()
    except BagDataError:
        raise
    except Exception as exc:  # noqa: BLE001 - rosbags raises several types for broken storage
        raise BagDataError(f"cannot open: {exc} (a damaged or unfinished file: restore it, or "
                           "re-index it with `ros2 bag reindex`)", bag=path,
                           kind="unreadable") from exc
    return reader


def discover_views(topics: dict[str, object], camera_topic: str) -> tuple[str, ...]:
    """View names whose camera topic is in the bag, sorted (view1, view2, ...)."""
    if "{view}" not in camera_topic:
        raise ValueError(f"camera_topic must contain '{{view}}', got {camera_topic!r}")
    head, tail = camera_topic.split("{view}", 1)
    pattern = re.compile(re.escape(head) + r"([^/]+)" + re.escape(tail) + r"\Z")
    return tuple(sorted(m.group(1) for t in topics if (m := pattern.match(t))))


def read_bag_streams(path: str | Path, topics: BagTopics = BagTopics(),
                     views: tuple[str, ...] | None = None, aline_length: int = 1025) -> BagStreams:
    """Read and screen the bridge topics of the bag at ``path`` (directory, .mcap or .db3 file).

    ``views``: the camera views in model order; None = every view found, sorted by name.
    Raises BagDataError for a missing bag/metadata, a missing required topic, a wrong message type,
    a stream without usable messages, or a definition that does not match the recording.
    """
    from .bag_types import build_typestore

    path = Path(path)
    reader = _open_reader(path)
    try:
        name = path.stem if path.is_file() else path.name
        bag_topics = reader.topics
        if views is None:
            views = discover_views(bag_topics, topics.camera_topic)
            if not views:
                raise BagDataError(f"no camera topic matching {topics.camera_topic}", bag=path,
                                   topic=topics.camera_topic, kind="missing_topic")
        views = tuple(views)
        required = {topics.sensor_topic: SENSOR_TYPE, topics.joint_state_topic: JOINT_STATE_TYPE,
                    topics.pose_topic: POSE_TYPE}
        for view in views:
            required[topics.camera_topic.format(view=view)] = CAMERA_TYPE
        for topic, msgtype in required.items():
            info = bag_topics.get(topic)
            if info is None:
                present = ", ".join(sorted(bag_topics)) or "none"
                raise BagDataError(f"required topic is missing (topics in the bag: {present})",
                                   bag=path, topic=topic, kind="missing_topic")
            if info.msgtype != msgtype:
                raise BagDataError(f"has type {info.msgtype}, expected {msgtype}", bag=path,
                                   topic=topic, kind="wrong_type")
            if info.msgcount == 0:
                raise BagDataError("has no messages", bag=path, topic=topic, kind="empty_stream")
        optional = {}
        vl_info = bag_topics.get(topics.vl_features_topic)
        if vl_info is not None and vl_info.msgtype == VL_FEATURES_TYPE and vl_info.msgcount:
            optional[topics.vl_features_topic] = VL_FEATURES_TYPE
        wanted = [c for c in reader.connections if c.topic in required or c.topic in optional]
        typestore, sources = build_typestore(wanted, path)
        for connection in wanted:
            if connection.msgtype not in typestore.types:
                raise BagDataError(f"no definition for {connection.msgtype} (not embedded in the "
                                   f"bag, not a Jazzy or asyncvla_msgs type)", bag=path,
                                   topic=connection.topic, kind="definition_mismatch")
        collector = _Collector(path, topics, views, aline_length)
        vl_prompt = None
        vl_times: list[tuple[int, int]] = []
        integrity = _Integrity(path, {t: bag_topics[t].msgcount for t in {c.topic for c in wanted}})
        messages = reader.messages(connections=wanted)
        while True:
            try:
                connection, bag_time, raw = next(messages)
            except StopIteration:
                break
            except Exception as exc:  # noqa: BLE001 - rosbags/sqlite raise several types
                integrity.storage_error(exc)
                break
            try:
                msg = typestore.deserialize_cdr(raw, connection.msgtype)
            except Exception as exc:  # noqa: BLE001
                integrity.undecodable(connection.topic, f"cannot deserialise a "
                                      f"{connection.msgtype}: {exc}")
                continue
            integrity.read(connection.topic)
            if connection.topic in optional:
                if vl_prompt is None and getattr(msg, "prompt", ""):
                    vl_prompt = str(msg.prompt)
                vl_times.append((int(bag_time), stamp_ns(msg.header.stamp)))
                continue
            problem = collector.add(connection.topic, msg)
            if problem:
                integrity.undecodable(connection.topic, problem)
        integrity.check()
        custom = getattr(getattr(reader, "storage", None), "metadata", None)
        custom = (getattr(custom, "custom", None) or {}) if custom is not None else {}
    finally:
        reader.close()
    if custom.get(PROMPT_CUSTOM_DATA_KEY):
        prompt, prompt_source = str(custom[PROMPT_CUSTOM_DATA_KEY]), "custom_data"
    elif vl_prompt:
        prompt, prompt_source = vl_prompt, topics.vl_features_topic
    else:
        prompt, prompt_source = None, "none"
    streams = collector.finish(name, prompt, prompt_source)
    streams.definition_sources = sources
    if vl_times:
        streams.vl_features_ns = np.array(sorted(vl_times), dtype=np.int64).reshape(-1, 2)
    return streams


class _Integrity:
    """Evidence that the storage is damaged, collected over one pass and refused as a whole.

    Three checks: the storage reader failed part way (for mcap this includes a chunk whose CRC
    does not match, checked by rosbags where the writer stored one); a topic yields fewer (or
    more) messages than the bag's metadata counts (a damaged mcap can lose whole chunks without an
    error); messages that cannot be deserialised and images that cannot be decoded, counted per
    topic. Any of them raises BagDataError ``corrupt``: a damaged recording is never trained on
    silently (``skip_errors`` / ``--skip-errors`` leaves the bag out instead).
    """

    def __init__(self, path: Path, expected: dict[str, int]) -> None:
        self.path = path
        self.expected = expected
        self.counts = {topic: 0 for topic in expected}
        self.bad: dict[str, int] = {}
        self.first_problem: dict[str, str] = {}
        self.failure: str | None = None

    def read(self, topic: str) -> None:
        self.counts[topic] += 1

    def undecodable(self, topic: str, problem: str) -> None:
        self.counts[topic] += 1
        self.bad[topic] = self.bad.get(topic, 0) + 1
        self.first_problem.setdefault(topic, problem)

    def storage_error(self, exc: Exception) -> None:
        self.failure = f"{type(exc).__name__}: {exc}"

    def check(self) -> None:
        problems = []
        if self.failure:
            problems.append(f"the storage cannot be read past message {sum(self.counts.values())} "
                            f"({self.failure})")
        short = {t: (self.counts[t], n) for t, n in self.expected.items() if self.counts[t] != n}
        if short and not self.failure:
            problems.append("read " + ", ".join(f"{got} of the {n} messages of {t}"
                                                for t, (got, n) in sorted(short.items()))
                            + " that the bag's metadata counts")
        for topic, n in sorted(self.bad.items()):
            problems.append(f"{n} of {self.counts[topic]} messages of {topic} are undecodable "
                            f"(first: {self.first_problem[topic]})")
        if problems:
            topic = next(iter(sorted(self.bad)), None) if len(self.bad) == 1 and not short else None
            raise BagDataError("damaged recording: " + "; ".join(problems) + ": restore the file "
                               "or re-record it", bag=self.path, topic=topic, kind="corrupt")


class _Collector:
    """Accumulates screened messages per stream."""

    def __init__(self, path: Path, topics: BagTopics, views: tuple[str, ...], aline_length: int):
        self.path, self.topics, self.views, self.aline_length = path, topics, views, aline_length
        self.camera_topics = {topics.camera_topic.format(view=v): v for v in views}
        self.dropped: dict[str, int] = {}
        self.sensor_stamps: list[np.ndarray] = []
        self.sensor_rows: list[np.ndarray] = []
        self.sensor_last: int | None = None
        self.frames: dict[str, dict] = {v: {"stamps": [], "data": [], "formats": []} for v in views}
        self.joints: list[tuple[int, np.ndarray]] = []
        self.poses: list[tuple[int, np.ndarray, np.ndarray]] = []

    def drop(self, key: str, n: int = 1) -> None:
        self.dropped[key] = self.dropped.get(key, 0) + n

    def add(self, topic: str, msg) -> str | None:
        """Screen and keep one message; returns why its payload is undecodable, else None."""
        t = self.topics
        if topic == t.sensor_topic:
            self._sensor(msg)
        elif topic == t.joint_state_topic:
            self._joints(msg)
        elif topic == t.pose_topic:
            self._pose(msg)
        else:
            return self._frame(self.camera_topics[topic], msg)
        return None

    def _sensor(self, msg) -> None:
        n = int(msg.num_samples)
        force = np.asarray(msg.force, dtype=np.float32)
        alines = np.asarray(msg.alines, dtype=np.float32)
        if sensor_batch_reason(n, len(msg.sample_stamps), force.size, alines.size,
                               int(msg.aline_length), self.aline_length):
            self.drop("sensor_bad_batch")
            return
        if n == 0:
            return
        stamps = np.fromiter((stamp_ns(s) for s in msg.sample_stamps), dtype=np.int64, count=n)
        rows = np.empty((n, 1 + self.aline_length), dtype=np.float32)
        rows[:, 0] = force
        rows[:, 1:] = alines.reshape(n, self.aline_length)
        finite = np.isfinite(rows).all(axis=1)
        if not finite.all():
            self.drop("sensor_non_finite", int((~finite).sum()))
        keep = np.zeros(n, dtype=bool)
        last = self.sensor_last
        for i in np.flatnonzero(finite):  # runtime rule: strictly newer than the last accepted
            if last is None or stamps[i] > last:
                keep[i] = True
                last = int(stamps[i])
            else:
                self.drop("sensor_out_of_order")
        self.sensor_last = last
        if keep.any():
            self.sensor_stamps.append(stamps[keep])
            self.sensor_rows.append(rows[keep])

    def _frame(self, view: str, msg) -> str | None:
        store = self.frames[view]
        ns = stamp_ns(msg.header.stamp)
        data = bytes(np.asarray(msg.data, dtype=np.uint8).tobytes())
        if not data:
            self.drop(f"{view}_empty")
            return None
        problem = image_problem(data)
        if problem:
            return f"{msg.format or 'image'} frame stamped {ns} ns: {problem}"
        if store["stamps"] and ns < store["stamps"][-1]:
            self.drop(f"{view}_out_of_order")
            return None
        if store["stamps"] and ns == store["stamps"][-1]:
            store["data"][-1], store["formats"][-1] = data, str(msg.format)
            return None
        store["stamps"].append(ns)
        store["data"].append(data)
        store["formats"].append(str(msg.format))
        return None

    def _joints(self, msg) -> None:
        try:
            values = joint_positions_by_name(msg.name, msg.position, self.topics.joint_names)
        except ValueError:
            self.drop("joint_state_rejected")
            return
        self.joints.append((stamp_ns(msg.header.stamp), values))

    def _pose(self, msg) -> None:
        p, o = msg.pose.position, msg.pose.orientation
        pos = np.array([p.x, p.y, p.z], dtype=np.float64)
        quat = np.array([o.x, o.y, o.z, o.w], dtype=np.float64)
        norm = np.linalg.norm(quat)
        if not (np.all(np.isfinite(pos)) and np.isfinite(norm) and norm >= 1e-6):
            self.drop("pose_rejected")
            return
        quat /= norm
        if quat[3] < 0:
            quat = -quat
        self.poses.append((stamp_ns(msg.header.stamp), pos, quat))

    def finish(self, name: str, prompt: str | None, prompt_source: str) -> BagStreams:
        t = self.topics
        if not self.sensor_stamps:
            raise BagDataError("no usable samples (all batches malformed or non-finite)",
                               bag=self.path, topic=t.sensor_topic, kind="empty_stream")
        if not self.joints:
            raise BagDataError("no usable joint states", bag=self.path, topic=t.joint_state_topic,
                               kind="empty_stream")
        if not self.poses:
            raise BagDataError("no usable poses", bag=self.path, topic=t.pose_topic,
                               kind="empty_stream")
        frames = {}
        for view, store in self.frames.items():
            if not store["stamps"]:
                raise BagDataError("no usable frames", bag=self.path,
                                   topic=t.camera_topic.format(view=view), kind="empty_stream")
            frames[view] = ViewFrames(np.asarray(store["stamps"], dtype=np.int64), store["data"],
                                      store["formats"])
        streams = {t.sensor_topic: np.concatenate(self.sensor_stamps),
                   t.joint_state_topic: np.array([j[0] for j in self.joints]),
                   t.pose_topic: np.array([p[0] for p in self.poses])}
        streams.update({t.camera_topic.format(view=v): f.stamps_ns for v, f in frames.items()})
        for topic, stamps in streams.items():
            if np.count_nonzero(stamps == 0) * 2 > stamps.size:
                raise BagDataError("header stamps are not set (zero): the publisher must stamp "
                                   "its messages; receive times are never used for alignment",
                                   bag=self.path, topic=topic, kind="bad_message")
        joints = sorted(self.joints, key=lambda x: x[0])  # stable: equal stamps keep bag order
        poses = sorted(self.poses, key=lambda x: x[0])
        return BagStreams(
            path=self.path, name=name, views=self.views, frames=frames,
            sensor_stamps_ns=np.concatenate(self.sensor_stamps),
            sensor_rows=np.concatenate(self.sensor_rows),
            joint_stamps_ns=np.array([j[0] for j in joints], dtype=np.int64),
            joint_positions=np.stack([j[1] for j in joints]),
            pose_stamps_ns=np.array([p[0] for p in poses], dtype=np.int64),
            positions=np.stack([p[1] for p in poses]), quaternions=np.stack([p[2] for p in poses]),
            prompt=prompt, prompt_source=prompt_source, dropped=dict(self.dropped))
