"""Camera bridge: the Jetson's ZMQ camera frames -> sensor_msgs CompressedImage (and Image).

Binds a ZMQ PULL socket at `wire.bind_address`:`wire.port` (default tcp://127.0.0.1:5555; on the
robot PC set `wire.bind_address` to tcp://0.0.0.0 or the interface the Jetson reaches; port 0 =
any free port, logged at start). Each message is ``[meta_json, jpeg]`` (wire/camera.py). The
camera name is mapped to a view by the parallel lists `views.camera_keys` (substring of the meta
"camera", first match wins), `views.names` and `views.frame_ids` (parameters:
bridge_config.CameraBridgeConfig). Per view it publishes,
stamped with the capture `timestamp` mapped to local ROS time by the clock-offset estimator:

- `<topics.prefix>/<view>/image_raw/compressed` (sensor_msgs/CompressedImage, format "jpeg"):
  the sender's JPEG bytes as they are, never re-encoded.
- `<topics.prefix>/<view>/image_raw` (sensor_msgs/Image, rgb8): decoded, only when
  `raw.publish` is true, and then for the views in `raw.views` (all views when empty).
  Decoding costs CPU and raw frames are large for rclpy: keep it off unless a consumer needs it.
  The Image is built by cv_bridge where it imports and converts correctly, else by the builtin
  conversion (asyncvla_common.image_conversion); diagnostics name which.
- `/diagnostics`: rates (total and per view), drops by reason, clock offset/drift/jumps,
  last error.
"""
from __future__ import annotations

import array
import time

import numpy as np
import zmq
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CompressedImage, Image

from asyncvla_bridges.bridge_base import BridgeNode, run_bridge
from asyncvla_bridges.bridge_config import CameraBridgeConfig
from asyncvla_bridges.wire.camera import (CameraFrame, View, ViewMap, decode_jpeg_rgb,
                                          parse_camera_message)
from asyncvla_bridges.wire.errors import WireError
from asyncvla_common.image_conversion import ImageConverter
from asyncvla_common.qos import stream_publisher
from asyncvla_common.stats import RateMeter
from asyncvla_common.timeconv import seconds_to_stamp

POLL_MS = 100
DRAIN_MAX = 200


class CameraBridge(BridgeNode):
    DROP_REASONS = ("parts", "json", "meta", "size", "jpeg", "jpeg_decode", "unknown_camera",
                    "clock_settling", "clock_suspect", "late", "bad_stamp", "reordered")

    def __init__(self) -> None:
        super().__init__("camera_bridge", CameraBridgeConfig)
        cfg: CameraBridgeConfig = self.config
        prefix = cfg.topics.prefix.rstrip("/")
        views = list(cfg.views.names)
        raw_views = list(cfg.raw.views) or views
        self.views = ViewMap(list(cfg.views.camera_keys), views, list(cfg.views.frame_ids),
                             raw_views if cfg.raw.publish else [])
        # One second of frames per view: a burst after a network hiccup is not overwritten
        # before a reliable subscriber (e.g. ros2 bag record) has acknowledged it.
        qos = stream_publisher(depth=30)
        self._compressed = {v.name: self.create_publisher(
            CompressedImage, f"{prefix}/{v.name}/image_raw/compressed", qos)
            for v in self.views.views}
        self._raw = {v.name: self.create_publisher(Image, f"{prefix}/{v.name}/image_raw", qos)
                     for v in self.views.views if v.publish_raw}
        self._view_rates = {v.name: RateMeter() for v in self.views.views}
        self._view_sizes: dict[str, str] = {}
        # cv_bridge builds the raw Images where it imports and converts correctly (ROS from
        # apt), else the builtin conversion; chosen (and logged) only when raw images are on.
        self.image_converter = ImageConverter(warn=self.get_logger().warning)
        if cfg.raw.publish:
            self.get_logger().info(f"raw images via {self.image_converter.backend}"
                                   + (f" ({self.image_converter.reason})"
                                      if self.image_converter.reason else ""))
        self._unknown_logged: set[str] = set()
        self._zmq = zmq.Context()
        self._sock = self._zmq.socket(zmq.PULL)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.bind(f"{cfg.wire.bind_address}:{cfg.wire.port or '*'}")
        self.endpoint = self._sock.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.start_zmq_receiving(self._sock, DRAIN_MAX, POLL_MS)

    def process(self, parts: list[bytes], local_now: float, queued_for: float = 0.0) -> None:
        self.note_received()
        try:
            frame = parse_camera_message(parts)
            view = self.views.lookup(frame.camera)
            if view is None:
                self._log_unknown(frame.camera)
                raise WireError("unknown_camera", f"camera {frame.camera[:64]!r} matches no "
                                "views.camera_keys entry")
            rgb = decode_jpeg_rgb(frame.jpeg, frame.info) if view.publish_raw else None
            stamp = seconds_to_stamp(self.map_stamp(frame.timestamp, frame.send_time,
                                                    local_now, key=view.name,
                                                    queued_for=queued_for))
        except WireError as error:
            self.drop(error)
            return
        self._publish(frame, view, stamp, rgb)

    def _publish(self, frame: CameraFrame, view: View, stamp: Time,
                 rgb: np.ndarray | None) -> None:
        compressed = CompressedImage()
        compressed.header.stamp = stamp
        compressed.header.frame_id = view.frame_id
        compressed.format = "jpeg"
        compressed.data = array.array("B", frame.jpeg)
        self._compressed[view.name].publish(compressed)
        if rgb is not None:
            image = self.image_converter.rgb_to_image(rgb)
            image.header = compressed.header
            self._raw[view.name].publish(image)
        self._view_rates[view.name].tick(time.monotonic())
        self._view_sizes[view.name] = f"{frame.info.width}x{frame.info.height}"
        self.note_published()

    def _log_unknown(self, camera: str) -> None:
        if camera not in self._unknown_logged and len(self._unknown_logged) < 32:
            self._unknown_logged.add(camera)
            self.get_logger().warning(f"camera {camera[:64]!r} matches no views.camera_keys "
                                      "entry; its frames are dropped")

    def extra_values(self) -> dict[str, object]:
        now = time.monotonic()
        values: dict[str, object] = {}
        if self._raw:
            values["image_conversion"] = self.image_converter.backend
            values["image_conversion_fallbacks"] = self.image_converter.frame_fallbacks
        for name, meter in self._view_rates.items():
            values[f"{name}.rate_hz"] = meter.rate(now)
            values[f"{name}.resolution"] = self._view_sizes.get(name, "none")
        return values

    def close(self) -> None:
        super().close()
        self._sock.close(linger=0)
        self._zmq.term()


def main(args: list[str] | None = None) -> None:
    raise SystemExit(run_bridge(CameraBridge, args))


if __name__ == "__main__":
    main()
