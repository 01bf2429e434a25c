#!/usr/bin/env python3
"""The moving-target task's world over real DDS: its camera and its force/OCT probe.

For the closed loop of the real nodes (tools/bench/bench_closed_loop_dds.py) what the
simulator (closed_loop_sim.py) computes inline, published as the lab's bridges publish it:

* the world camera: sensor_msgs/CompressedImage (JPEG, ``TrackingContent.jpeg``) of the current
  scene on ``--camera-topic`` (the VLM node's topic of view "world") at 10 frames/s, stamped
  with the frame's true capture time (the instant it shows) and published at that instant;
* the force/OCT probe: asyncvla_msgs/ForceOctBatch at 650 samples/s in batches of 10, each
  sample stamped with its time and computed (``TrackingContent.rows_at``) from the robot's real
  height, the newest ``--pose-topic`` (PoseStamped: the robot bridge's) z, against the breathing
  surface at the sample's time.

Scenes come on the latched std_msgs/String ``/test/world/scene`` as JSON (:func:`scene_message`):
the scene's fields, an id and ``t0_ns``, the wall time (ROS clock, this machine) of the scene's
first action time, and optionally ``current_from_ns``. Scene time ``t`` is then
``t0_ns / 1e9 - (LEAD_IN + FIRST_SAMPLE_DELAY) + t`` on the wall clock, as in the recordings:
frames on the 100 ms grid of scene time (the simulator's frames too; negative before time 0),
samples ``k`` at ``k / 650`` s from time 0. A scene becomes current at ``current_from_ns``, at the
latest at its time 0 (``t0_ns`` - 0.8 s): earlier when a warm-started VLM must see it before
the recording's start (closed_loop_dds.py); until then the previous one goes on. Frames and samples are stamped on
their grid and published when the wall clock reaches the stamp (a frame due more than one
period ago is skipped and counted: its stamp would lie).

Logs: ``WORLD READY``, ``WORLD SCENE <id> origin_ns=<> t0_ns=<>`` when a scene becomes current,
and ``WORLD STATS frames=<> batches=<> skipped_frames=<> frame_late_ms_max=<>
batch_late_ms_max=<> no_pose_samples=<>`` every ``--stats-period`` s.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import String

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from asyncvla_common import qos  # noqa: E402
from asyncvla_common.timeconv import ns_to_stamp  # noqa: E402
from asyncvla_msgs.msg import ForceOctBatch  # noqa: E402
from asyncvla_testing import tracking_task as task  # noqa: E402

SCENE_TOPIC = "/test/world/scene"
SENSOR_RATE = 650.0  # samples/s (the simulator's)
SENSOR_BATCH = 10  # samples per ForceOctBatch (the simulator's)
FRAME_NS = int(round(1e9 / task.CAMERA_FPS))
#: Scene time of the first action time: the recordings' camera lead-in plus one sensor window.
FIRST_ACTION_S = task.LEAD_IN + task.FIRST_SAMPLE_DELAY


def scene_message(scene_id: int, scene: task.TrackingScene, t0_ns: int,
                  current_from_ns: int | None = None) -> str:
    """The JSON a world takes: ``scene`` with its first action time at wall time ``t0_ns``,
    current from ``current_from_ns`` (default: its time 0; earlier: frames of negative scene
    time, as the simulator's warm-started VLM takes before the recording's start)."""
    data = {"id": int(scene_id), "t0_ns": int(t0_ns), "scene": dataclasses.asdict(scene)}
    if current_from_ns is not None:
        data["current_from_ns"] = int(current_from_ns)
    return json.dumps(data)


def scene_from_message(text: str) -> tuple[int, task.TrackingScene, int, int]:
    """(id, scene, t0_ns, current_from_ns) of a :func:`scene_message`."""
    data = json.loads(text)
    fields = dict(data["scene"])
    for name in ("target_start", "offset_start"):
        fields[name] = tuple(float(v) for v in fields[name])
    t0_ns = int(data["t0_ns"])
    current_from = min(int(data.get("current_from_ns", origin_ns(t0_ns))), origin_ns(t0_ns))
    return int(data["id"]), task.TrackingScene(**fields), t0_ns, current_from


def origin_ns(t0_ns: int) -> int:
    """Wall time (ns) of scene time 0 for a first action time at ``t0_ns``."""
    return int(t0_ns) - int(round(FIRST_ACTION_S * 1e9))


def sample_stamp_ns(origin: int, k: int) -> int:
    return origin + int(round(k * 1e9 / SENSOR_RATE))


@dataclasses.dataclass
class _Current:
    scene_id: int
    scene: task.TrackingScene
    content: task.TrackingContent
    origin_ns: int
    next_frame: int = 0  # index of the next frame to publish (scene time k * 100 ms)
    next_sample: int = 0  # index of the next force/OCT sample


class World(Node):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__("closed_loop_world")
        self.args = args
        self.cam_pub = self.create_publisher(CompressedImage, args.camera_topic,
                                             qos.stream_publisher(2))
        self.sensor_pub = self.create_publisher(ForceOctBatch, args.sensor_topic,
                                                qos.stream_publisher(50))
        self.create_subscription(PoseStamped, args.pose_topic, self._on_pose,
                                 qos.sensor_subscriber())
        self.create_subscription(String, SCENE_TOPIC, self._on_scene, qos.LATCHED)
        self.pending: list[tuple[int, int, task.TrackingScene]] = []  # (origin, id, scene)
        self.current: _Current | None = None
        self.z: float | None = None
        self.last_sample_ns = 0
        self.stats = {"frames": 0, "batches": 0, "skipped_frames": 0, "frame_late_ms_max": 0.0,
                      "batch_late_ms_max": 0.0, "no_pose_samples": 0}
        self.create_timer(args.step, self._step)
        if args.stats_period > 0:
            self.create_timer(args.stats_period, self._print_stats)
        print("WORLD READY", flush=True)

    def _on_pose(self, msg: PoseStamped) -> None:
        self.z = float(msg.pose.position.z)

    def _on_scene(self, msg: String) -> None:
        scene_id, scene, t0_ns, current_from = scene_from_message(msg.data)
        self.pending.append((current_from, origin_ns(t0_ns), scene_id, scene))
        self.pending.sort(key=lambda item: item[0])

    def _switch(self, now_ns: int) -> None:
        while self.pending and self.pending[0][0] <= now_ns:
            current_from, origin, scene_id, scene = self.pending.pop(0)
            cur = _Current(scene_id, scene, task.TrackingContent(scene, task.TrackingMotion(scene)),
                           origin)
            # Frames from the one due when the scene becomes current (negative scene time
            # before its origin: Python's floor division, the simulator's grid).
            cur.next_frame = int((max(now_ns, current_from) - origin) // FRAME_NS)
            # Samples go on from where the previous scene's stopped (stamps never go back).
            cur.next_sample = max(0, math.ceil((self.last_sample_ns + 1 - origin)
                                               * SENSOR_RATE / 1e9))
            self.current = cur
            t0 = origin + int(round(FIRST_ACTION_S * 1e9))
            print(f"WORLD SCENE {scene_id} origin_ns={origin} t0_ns={t0}", flush=True)

    def _step(self) -> None:
        now_ns = self.get_clock().now().nanoseconds
        self._switch(now_ns)
        cur = self.current
        if cur is None:
            return
        self._frames(cur, now_ns)
        self._samples(cur, now_ns)

    def _frames(self, cur: _Current, now_ns: int) -> None:
        due = (now_ns - cur.origin_ns) // FRAME_NS  # the newest frame whose time has come
        if due < cur.next_frame:
            return
        self.stats["skipped_frames"] += int(due - cur.next_frame)
        stamp = cur.origin_ns + due * FRAME_NS
        t = (stamp - cur.origin_ns) / 1e9
        msg = CompressedImage()
        msg.header.stamp = ns_to_stamp(stamp)
        msg.header.frame_id = "world_optical_frame"
        msg.format = "jpeg"
        msg.data = cur.content.jpeg(0, int(due), t, self.args.image_size, self.args.image_size)
        self.cam_pub.publish(msg)
        cur.next_frame = int(due) + 1
        self.stats["frames"] += 1
        late = (self.get_clock().now().nanoseconds - stamp) / 1e6
        self.stats["frame_late_ms_max"] = max(self.stats["frame_late_ms_max"], late)

    def _samples(self, cur: _Current, now_ns: int) -> None:
        while sample_stamp_ns(cur.origin_ns, cur.next_sample + SENSOR_BATCH - 1) <= now_ns:
            k = np.arange(cur.next_sample, cur.next_sample + SENSOR_BATCH)
            stamps = [sample_stamp_ns(cur.origin_ns, int(i)) for i in k]
            t = (np.asarray(stamps, dtype=np.int64) - cur.origin_ns) / 1e9
            if self.z is None:  # no robot state yet: the recorded expert's height
                z = cur.scene.tip_height(t)
                self.stats["no_pose_samples"] += len(k)
            else:
                z = np.full(len(k), self.z)
            rows = cur.content.rows_at(k, z - cur.scene.surface_height(t))
            msg = ForceOctBatch()
            msg.header.stamp = ns_to_stamp(stamps[-1])
            msg.header.frame_id = "oct_probe"
            msg.num_samples, msg.aline_length = len(k), rows.shape[1] - 1
            msg.sample_stamps = [ns_to_stamp(s) for s in stamps]
            msg.force = rows[:, 0].astype(np.float32)
            msg.alines = rows[:, 1:].astype(np.float32).reshape(-1)
            self.sensor_pub.publish(msg)
            cur.next_sample += SENSOR_BATCH
            self.last_sample_ns = stamps[-1]
            self.stats["batches"] += 1
            self.stats["batch_late_ms_max"] = max(self.stats["batch_late_ms_max"],
                                                  (now_ns - stamps[-1]) / 1e6)

    def _print_stats(self) -> None:
        s = self.stats
        print(f"WORLD STATS frames={s['frames']} batches={s['batches']} "
              f"skipped_frames={s['skipped_frames']} "
              f"frame_late_ms_max={s['frame_late_ms_max']:.1f} "
              f"batch_late_ms_max={s['batch_late_ms_max']:.1f} "
              f"no_pose_samples={s['no_pose_samples']}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--camera-topic", default="/camera/world/image_raw/compressed")
    parser.add_argument("--sensor-topic", default="/sensor/force_oct")
    parser.add_argument("--pose-topic", default="/robot/ee_pose")
    parser.add_argument("--image-size", type=int, default=140, help="px, square")
    parser.add_argument("--step", type=float, default=0.002, help="s between publishing checks")
    parser.add_argument("--stats-period", type=float, default=5.0)
    args = parser.parse_args()
    from asyncvla_common.spin import spin_node

    sys.exit(spin_node(lambda: World(args), "closed_loop_world"))


if __name__ == "__main__":
    main()
