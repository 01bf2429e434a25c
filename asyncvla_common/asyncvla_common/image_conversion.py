"""Image conversion between sensor_msgs images and RGB numpy arrays: cv_bridge where it works,
the project's own OpenCV/numpy conversion where it does not.

The design names ROS's `cv_bridge` for this job, and where ROS comes from apt it is installed
and the nodes use it. Where ROS comes from PyPI wheels there is no working cv_bridge: PyPI's
`cv-bridge` (1.13.0.post0) is a ROS 1 port with a pure-Python stand-in for its C++ part that
imports, then fails on first use (tried with numpy 2.4: imgmsg_to_cv2 reads an rgb8 image as 9
channels and raises TypeError; cv2_to_imgmsg calls `ndarray.tostring`, which numpy 2 removed). So the backend is chosen once, lazily, by importing cv_bridge and
converting a small probe image both ways; any exception or any pixel that differs from the
builtin result selects the builtin conversion, with one warning that says why. `backend` names
the choice ("cv_bridge" or "builtin") for logs and diagnostics.

Importing this module needs neither ROS nor cv_bridge: sensor_msgs is imported only where a
message is built, so the VLM node's ROS-free frame store can use the decoders.
"""
from __future__ import annotations

import array
import logging
import threading
from typing import Any, Callable

import cv2
import numpy as np

BUILTIN = "builtin"
CV_BRIDGE = "cv_bridge"
#: Raw sensor_msgs/Image encodings the decoders accept, with their channel counts.
RAW_CHANNELS = {"rgb8": 3, "bgr8": 3, "mono8": 1}
#: CompressedImage formats the decoders accept (the `format` field contains one of these).
COMPRESSED_FORMATS = ("jpeg", "png")

_log = logging.getLogger(__name__)


class BackendMismatch(Exception):
    """cv_bridge converted the probe image without error but to other pixels than the builtin."""


def strict_jpeg_to_rgb(data: bytes) -> np.ndarray:
    """JPEG bytes -> RGB uint8 HxWx3, refusing corrupted data; ValueError names libjpeg's cause.

    Why not OpenCV alone: libjpeg treats a cut-short or damaged scan as a warning, fills the rest
    of the image with grey and OpenCV returns that image; a camera frame cut short in transit
    would reach the VLM as a half-grey picture. libjpeg-turbo through `simplejpeg` in strict mode
    raises on those warnings instead (same decoder, same pixels as OpenCV's for good files)."""
    import simplejpeg

    try:
        return simplejpeg.decode_jpeg(data, colorspace="RGB", strict=True)
    except ValueError as exc:
        raise ValueError(f"corrupted or undecodable jpeg image ({len(data)} bytes): "
                         f"{exc}") from None


def builtin_compressed_to_rgb(data: bytes, fmt: str = "jpeg") -> np.ndarray:
    """JPEG/PNG bytes -> RGB uint8 HxWx3 (grey and alpha images become RGB).

    ValueError names the cause: an empty, undecodable or corrupted payload must be refused, not
    fed on. JPEG decodes strictly (`strict_jpeg_to_rgb`); PNG with OpenCV (zlib's checksums make a
    damaged PNG undecodable)."""
    if not data:
        raise ValueError(f"undecodable {fmt} image (0 bytes)")
    if fmt == "jpeg":
        return strict_jpeg_to_rgb(data)
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"undecodable {fmt} image ({len(data)} bytes)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def raw_layout(encoding: str, width: int, height: int, size: int, step: int = 0) -> tuple[int, int]:
    """(channels, row step) of a raw image, checked against its byte count; step 0 = packed rows.

    sensor_msgs/Image rows may be padded (`step` > width x channels); the data is step x height
    bytes. ValueError names the encoding or the size that does not fit."""
    channels = RAW_CHANNELS.get(encoding)
    if channels is None:
        raise ValueError(f"unsupported image encoding {encoding!r} (supported: "
                         f"{', '.join(RAW_CHANNELS)})")
    row = width * channels
    step = step or row
    expected = step * height
    if width <= 0 or height <= 0 or step < row or size != expected:
        raise ValueError(f"raw image {width}x{height} {encoding} (step {step}) needs "
                         f"{expected} bytes, got {size}")
    return channels, step


def builtin_raw_to_rgb(encoding: str, width: int, height: int, data: bytes,
                       step: int = 0) -> np.ndarray:
    """Raw rgb8/bgr8/mono8 bytes -> RGB uint8 HxWx3 (a copy: the message buffer is not kept)."""
    channels, step = raw_layout(encoding, width, height, len(data), step)
    rows = np.frombuffer(data, dtype=np.uint8).reshape(height, step)
    image = rows[:, :width * channels].reshape(height, width, channels)
    if encoding == "bgr8":
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if encoding == "mono8":
        return cv2.cvtColor(np.ascontiguousarray(image[:, :, 0]), cv2.COLOR_GRAY2RGB)
    return np.ascontiguousarray(image).copy()


def _check_rgb(rgb: np.ndarray) -> None:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 HxWx3 array, got {rgb.dtype} {rgb.shape}")


def builtin_rgb_to_image(rgb: np.ndarray) -> Any:
    """RGB uint8 HxWx3 -> sensor_msgs/Image rgb8, packed rows (header left to the caller)."""
    from sensor_msgs.msg import Image  # only message builders need ROS

    _check_rgb(rgb)
    image = Image()
    image.height, image.width = int(rgb.shape[0]), int(rgb.shape[1])
    image.encoding = "rgb8"
    image.is_bigendian = 0
    image.step = 3 * image.width
    image.data = array.array("B", np.ascontiguousarray(rgb).tobytes())
    return image


def _raw_message(encoding: str, width: int, height: int, data: bytes, step: int) -> Any:
    from sensor_msgs.msg import Image

    msg = Image()
    msg.encoding, msg.width, msg.height = encoding, width, height
    msg.step = step or width * RAW_CHANNELS.get(encoding, 1)
    msg.data = array.array("B", data)
    return msg


def _compressed_message(data: bytes, fmt: str) -> Any:
    from sensor_msgs.msg import CompressedImage

    msg = CompressedImage()
    msg.format = fmt
    msg.data = array.array("B", data)
    return msg


def _probe_images() -> dict[str, np.ndarray]:
    """Small images whose every pixel differs per channel, so a swapped channel is caught."""
    ramp = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3) * 2
    return {"rgb8": ramp, "bgr8": ramp[:, :, ::-1].copy(), "mono8": ramp[:, :, :1].copy()}


class ImageConverter:
    """Converts with cv_bridge when it imports and passes the probe, else with the builtin code.

    Thread-safe: the backend is chosen once under a lock; conversions share no state but the
    counter of frames that cv_bridge refused and the builtin code converted."""

    def __init__(self, use_cv_bridge: bool = True,
                 warn: Callable[[str], None] | None = None) -> None:
        self._want_cv_bridge = use_cv_bridge
        self._warn = warn or _log.warning
        self._lock = threading.Lock()
        self._bridge: Any = None
        self._backend: str | None = None
        self.reason = ""  # why the builtin conversion is used; empty with cv_bridge
        self.probe_error: Exception | None = None  # what the cv_bridge probe raised, if anything
        self.frame_fallbacks = 0  # frames cv_bridge raised on that the builtin code converted

    @property
    def backend(self) -> str:
        """"cv_bridge" or "builtin"; the first call imports and probes cv_bridge."""
        with self._lock:
            if self._backend is None:
                self._backend = self._choose()
            return self._backend

    def _choose(self) -> str:
        if not self._want_cv_bridge:
            self.reason = "cv_bridge not requested"
            return BUILTIN
        try:
            from cv_bridge import CvBridge
        except Exception as exc:  # ImportError, or a numpy ABI error raised at import
            self.reason = f"cv_bridge not importable ({type(exc).__name__}: {exc})"
            return BUILTIN
        try:
            bridge = CvBridge()
            self._probe(bridge)
        except Exception as exc:  # numpy 2 ABI/API errors surface at first use
            self.probe_error = exc
            self.reason = (f"cv_bridge imports but fails on a probe image "
                           f"({type(exc).__name__}: {exc})")
            self._warn(f"image conversion: using the builtin conversion; {self.reason}")
            return BUILTIN
        self._bridge = bridge
        return CV_BRIDGE

    @staticmethod
    def _probe(bridge: Any) -> None:
        """Raise unless cv_bridge converts the probe images exactly as the builtin code does."""
        images = _probe_images()
        rgb = images["rgb8"]
        for encoding, pixels in images.items():
            height, width, _ = pixels.shape
            msg = _raw_message(encoding, width, height, pixels.tobytes(), 0)
            got = np.asarray(bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8"))
            if not np.array_equal(got, builtin_raw_to_rgb(encoding, width, height,
                                                          pixels.tobytes())):
                raise BackendMismatch(f"imgmsg_to_cv2 {encoding} -> rgb8 differs from the builtin")
        png = cv2.imencode(".png", images["bgr8"])[1].tobytes()
        got = np.asarray(bridge.compressed_imgmsg_to_cv2(_compressed_message(png, "png"),
                                                         desired_encoding="rgb8"))
        if not np.array_equal(got, rgb):
            raise BackendMismatch("compressed_imgmsg_to_cv2 png -> rgb8 differs from the builtin")
        msg = bridge.cv2_to_imgmsg(rgb, encoding="rgb8")
        want = builtin_rgb_to_image(rgb)
        if (msg.encoding, msg.width, msg.height, msg.step, bytes(msg.data)) != (
                want.encoding, want.width, want.height, want.step, bytes(want.data)):
            raise BackendMismatch("cv2_to_imgmsg rgb8 differs from the builtin")

    def _via_bridge(self, convert: Callable[[], np.ndarray],
                    fallback: Callable[[], np.ndarray]) -> np.ndarray:
        """cv_bridge's result when it gives an RGB uint8 image, else the builtin result.

        cv_bridge raises for inputs the builtin code accepts (e.g. a PNG with alpha, which
        cv_bridge reads as 4 channels) and for bad payloads alike; the builtin code is the
        referee, so a bad payload still ends in its ValueError with the cause."""
        try:
            out = np.asarray(convert())
            _check_rgb(out)
            return out
        except Exception:
            result = fallback()
            self.frame_fallbacks += 1
            return result

    def compressed_to_rgb(self, data: bytes, fmt: str = "jpeg") -> np.ndarray:
        """CompressedImage payload (JPEG/PNG) -> RGB uint8 HxWx3; ValueError with the cause.

        JPEG always decodes strictly with the builtin code: cv_bridge decodes with OpenCV, which
        returns a grey-filled image for a corrupted scan instead of refusing it."""
        fallback = lambda: builtin_compressed_to_rgb(data, fmt)  # noqa: E731
        if self.backend == BUILTIN or not data or fmt == "jpeg":
            return fallback()
        return self._via_bridge(lambda: self._bridge.compressed_imgmsg_to_cv2(
            _compressed_message(data, fmt), desired_encoding="rgb8"), fallback)

    def raw_to_rgb(self, encoding: str, width: int, height: int, data: bytes,
                   step: int = 0) -> np.ndarray:
        """Raw rgb8/bgr8/mono8 Image fields -> RGB uint8 HxWx3; ValueError with the cause."""
        raw_layout(encoding, width, height, len(data), step)  # refuse bad sizes before any backend
        fallback = lambda: builtin_raw_to_rgb(encoding, width, height, data, step)  # noqa: E731
        if self.backend == BUILTIN:
            return fallback()
        return self._via_bridge(lambda: self._bridge.imgmsg_to_cv2(
            _raw_message(encoding, width, height, data, step), desired_encoding="rgb8"),
            fallback)

    def rgb_to_image(self, rgb: np.ndarray) -> Any:
        """RGB uint8 HxWx3 -> sensor_msgs/Image rgb8 (header left to the caller)."""
        _check_rgb(rgb)
        if self.backend == CV_BRIDGE:
            try:
                return self._bridge.cv2_to_imgmsg(np.ascontiguousarray(rgb), encoding="rgb8")
            except Exception:
                self.frame_fallbacks += 1
        return builtin_rgb_to_image(rgb)
