"""Camera bridge: the Jetson's ZMQ camera frames -> sensor_msgs CompressedImage (and Image).

Binds a ZMQ PULL socket at `bind_address`:`port` (default tcp://127.0.0.1:5555; on the robot PC
set `bind_address` to tcp://0.0.0.0 or the interface the Jetson reaches; port 0 = any free
port, logged at start). Each message is ``[meta_json, jpeg]`` (wire/camera.py). The camera
name is mapped to a view by the parallel lists `camera_keys` (substring of the meta "camera",
first match wins), `view_names` and `frame_ids`. Per view it publishes,
stamped with the capture `timestamp` mapped to local ROS time by the clock-offset estimator:

- `<topic_prefix>/<view>/image_raw/compressed` (sensor_msgs/CompressedImage, format "jpeg"):
  the sender's JPEG bytes as they are, never re-encoded.
- `<topic_prefix>/<view>/image_raw` (sensor_msgs/Image, rgb8): decoded, only when
  `publish_raw` is true, and then for the views in `raw_views` (all views when empty).
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

from asyncvla_bridges.bridge_base import BRIDGE_PARAMETERS, BridgeNode, run_bridge
from asyncvla_bridges.wire.camera import (CameraFrame, View, ViewMap, decode_jpeg_rgb,
                                          parse_camera_message)
from asyncvla_bridges.wire.errors import WireError
from asyncvla_common import params
from asyncvla_common.image_conversion import ImageConverter
from asyncvla_common.qos import stream_publisher
from asyncvla_common.stats import RateMeter
from asyncvla_common.timeconv import seconds_to_stamp
from asyncvla_core.conventions import LAB_VIEWS, view_frame_id

POLL_MS = 100
DRAIN_MAX = 200
DEFAULT_KEYS = [v.camera_key for v in LAB_VIEWS]
DEFAULT_VIEWS = [v.name for v in LAB_VIEWS]


#: The camera bridge's own parameters (declared after the common BRIDGE_PARAMETERS).
CAMERA_BRIDGE_OWN_PARAMETERS: tuple[params.ParamSpec, ...] = (
    params.ParamSpec(
        "bind_address", "tcp://127.0.0.1", "ZMQ address to bind the PULL socket to, without "
        "port. The robot PC sets tcp://0.0.0.0 or the interface the Jetson reaches.",
        read_only=True),
    params.ParamSpec("port", 5555, "TCP port to bind (0 = any free port).", read_only=True,
                     min_value=0, max_value=65535),
    params.ParamSpec("topic_prefix", "/camera", "Topics are "
                     "<topic_prefix>/<view>/image_raw[/compressed].", read_only=True),
    params.ParamSpec("camera_keys", DEFAULT_KEYS, "Substrings of the sender's camera name (ZED "
                     "serials, 'OAK'), one per view; the first key contained in the name wins.",
                     read_only=True),
    params.ParamSpec("view_names", DEFAULT_VIEWS, "View name for each camera key (topic "
                     "segment).", read_only=True),
    params.ParamSpec("frame_ids", [v.frame_id for v in LAB_VIEWS], "Header "
                     "frame_id for each view.", read_only=True,
                     default_from=lambda p: [view_frame_id(v) for v in p["view_names"]]),
    params.ParamSpec("publish_raw", False, "Also decode and publish sensor_msgs/Image (rgb8) "
                     "on <prefix>/<view>/image_raw.", read_only=True),
    params.ParamSpec("raw_views", [], "Views to publish raw images for when publish_raw is true "
                     "(empty = all views).", read_only=True,
                     param_type="STRING_ARRAY"),
)
#: Every parameter of the camera bridge, in declaration order.
CAMERA_BRIDGE_PARAMETERS = BRIDGE_PARAMETERS + CAMERA_BRIDGE_OWN_PARAMETERS


class CameraBridge(BridgeNode):
    DROP_REASONS = ("parts", "json", "meta", "size", "jpeg", "jpeg_decode", "unknown_camera",
                    "clock_settling", "clock_suspect", "late", "bad_stamp", "reordered")

    def __init__(self) -> None:
        super().__init__("camera_bridge")
        p = params.declare_all(self, CAMERA_BRIDGE_OWN_PARAMETERS)
        bind_address, port = p["bind_address"], p["port"]
        prefix = p["topic_prefix"].rstrip("/")
        keys, views, frame_ids = p["camera_keys"], p["view_names"], p["frame_ids"]
        publish_raw, raw_views = p["publish_raw"], p["raw_views"]
        if publish_raw and not raw_views:
            raw_views = list(views)
        self.views = ViewMap(keys, views, frame_ids, raw_views if publish_raw else [])
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
        if publish_raw:
            self.get_logger().info(f"raw images via {self.image_converter.backend}"
                                   + (f" ({self.image_converter.reason})"
                                      if self.image_converter.reason else ""))
        self._unknown_logged: set[str] = set()
        self._zmq = zmq.Context()
        self._sock = self._zmq.socket(zmq.PULL)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.bind(f"{bind_address}:{port if port else '*'}")
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
                                "camera_keys entry")
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
            self.get_logger().warning(f"camera {camera[:64]!r} matches no camera_keys entry; "
                                      "its frames are dropped")

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
