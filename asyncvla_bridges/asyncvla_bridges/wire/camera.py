"""The Jetson camera sender's ZMQ frames: parse, validate, map camera names to views.

Wire format (the lab's Jetson sender, as in Najongs/Insertion_VLA): a 2-part multipart message ``[meta_json_utf8, jpeg_bytes]``
with meta ``{"camera": str, "timestamp": float s (capture, sender clock), "send_time": float s,
"size": int}``. ``camera``, ``timestamp`` and ``size`` are required; ``send_time`` is optional
(it is only needed when the bridge estimates the clock offset from send times) but must be a
finite number when present.

JPEG validation is cheap by default: SOI at the start, EOI at the end (trailing zero padding
allowed), and a walk over the header segments up to the start of scan that must find a frame
header with a non-zero size. That rejects truncated, empty and random payloads in microseconds
without decoding; corrupt entropy-coded data inside a well-formed file is only caught by the full
decode (`decode_jpeg_rgb`, strict: a cut-short scan is refused, not grey-filled), which the bridge
runs only where raw images are published (drop reason `jpeg_decode`). A compressed view's
corrupted frame is forwarded and refused by the VLM node's decode (`dropped_undecodable`).
"""
from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import WireError

META_MAX_BYTES = 64 * 1024
CAMERA_NAME_MAX = 256
# Start-of-frame markers carry the image size; C4 (DHT), C8 (JPG) and CC (DAC) share the range.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE_MARKERS = frozenset([0x01, *range(0xD0, 0xD8)])
_EOI_SEARCH = 64


@dataclass(frozen=True)
class JpegInfo:
    width: int
    height: int
    components: int


@dataclass(frozen=True)
class CameraFrame:
    """One validated camera message."""

    camera: str
    timestamp: float
    send_time: float | None
    jpeg: bytes
    info: JpegInfo


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_camera_message(parts: Sequence[bytes]) -> CameraFrame:
    """Validate a received multipart message; raise WireError(reason) if it must be dropped.

    Reasons: "parts" (not exactly 2 parts), "json" (meta not a UTF-8 JSON object), "meta"
    (required key missing, wrong type or non-finite time), "size" (meta size != JPEG length),
    "jpeg" (not a well-formed JPEG by the cheap check).
    """
    if len(parts) != 2:
        raise WireError("parts", f"expected 2 parts [meta, jpeg], got {len(parts)}")
    raw_meta, jpeg = bytes(parts[0]), bytes(parts[1])
    if len(raw_meta) > META_MAX_BYTES:
        raise WireError("json", f"meta of {len(raw_meta)} bytes is too large")
    try:
        meta = json.loads(raw_meta.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WireError("json", f"meta is not UTF-8 JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise WireError("json", f"meta is a JSON {type(meta).__name__}, not an object")
    camera = meta.get("camera")
    if not isinstance(camera, str) or not 0 < len(camera) <= CAMERA_NAME_MAX:
        raise WireError("meta", "meta 'camera' must be a non-empty string")
    timestamp = meta.get("timestamp")
    if not _is_number(timestamp) or not math.isfinite(timestamp):
        raise WireError("meta", "meta 'timestamp' must be a finite number")
    send_time = meta.get("send_time")
    if send_time is not None and (not _is_number(send_time) or not math.isfinite(send_time)):
        raise WireError("meta", "meta 'send_time' must be a finite number when present")
    size = meta.get("size")
    if not isinstance(size, int) or isinstance(size, bool):
        raise WireError("meta", "meta 'size' must be an integer")
    if size != len(jpeg):
        raise WireError("size", f"meta size {size} != JPEG part of {len(jpeg)} bytes")
    info = jpeg_info(jpeg)
    return CameraFrame(camera, float(timestamp), None if send_time is None else float(send_time),
                       jpeg, info)


def jpeg_info(data: bytes) -> JpegInfo:
    """Size and components from the JPEG headers; raise WireError("jpeg") if malformed."""
    n = len(data)
    if n < 4 or data[0] != 0xFF or data[1] != 0xD8:
        raise WireError("jpeg", "no JPEG start-of-image marker")
    tail = data[-_EOI_SEARCH:].rstrip(b"\x00")
    if not tail.endswith(b"\xff\xd9"):
        raise WireError("jpeg", "no JPEG end-of-image marker (truncated?)")
    i, info = 2, None
    while True:
        if i + 4 > n or data[i] != 0xFF:
            raise WireError("jpeg", f"bad JPEG segment at byte {i}")
        while i + 1 < n and data[i + 1] == 0xFF:  # fill bytes
            i += 1
        marker = data[i + 1]
        if marker in _STANDALONE_MARKERS:
            i += 2
            continue
        if marker == 0xD9:
            raise WireError("jpeg", "JPEG ends before its first scan")
        (length,) = struct.unpack_from(">H", data, i + 2)
        if length < 2 or i + 2 + length > n:
            raise WireError("jpeg", f"JPEG segment length {length} at byte {i} out of bounds")
        if marker in _SOF_MARKERS:
            if length < 8:
                raise WireError("jpeg", "JPEG frame header too short")
            height, width, components = struct.unpack_from(">HHB", data, i + 5)
            if width == 0 or height == 0 or components not in (1, 3, 4):
                raise WireError("jpeg", f"JPEG frame header {width}x{height}x{components}")
            info = JpegInfo(width, height, components)
        elif marker == 0xDA:
            if info is None:
                raise WireError("jpeg", "JPEG scan before any frame header")
            return info
        i += 2 + length


def decode_jpeg_rgb(data: bytes, info: JpegInfo | None = None) -> np.ndarray:
    """Decode to an HxWx3 uint8 RGB array, refusing corrupted data; raise WireError("jpeg_decode").

    The decode is strict (asyncvla_common.image_conversion.strict_jpeg_to_rgb): a scan cut short
    or damaged inside a well-formed file is refused, not filled with grey."""
    # the one builtin decoder; imported here as only the bridge's raw-image path needs OpenCV
    from asyncvla_common.image_conversion import builtin_compressed_to_rgb

    try:
        rgb = builtin_compressed_to_rgb(data, "jpeg")
    except ValueError as exc:
        raise WireError("jpeg_decode", str(exc)) from None
    if info is not None and (rgb.shape[1], rgb.shape[0]) != (info.width, info.height):
        raise WireError("jpeg_decode", f"decoded {rgb.shape[1]}x{rgb.shape[0]}, header says "
                        f"{info.width}x{info.height}")
    return rgb


@dataclass(frozen=True)
class View:
    """Where one camera's frames go: view name (topic segment), frame_id, raw publishing."""

    name: str
    frame_id: str
    publish_raw: bool


class ViewMap:
    """Camera name -> view by substring keys, first key in list order wins.

    Why substrings: the sender names cameras by device (ZED serial numbers, "OAK" for the OAK
    camera) inside longer strings; the lab's mapping is data, so it is a parameter. A key such as
    "41182735_left" can pin one eye of a stereo camera when the sender names both.
    """

    _CACHE_MAX = 1024

    def __init__(self, camera_keys: Sequence[str], view_names: Sequence[str],
                 frame_ids: Sequence[str], raw_views: Sequence[str] = ()) -> None:
        if not (len(camera_keys) == len(view_names) == len(frame_ids)) or not camera_keys:
            raise ValueError("camera_keys, view_names and frame_ids must be non-empty lists of "
                             f"equal length (got {len(camera_keys)}, {len(view_names)}, "
                             f"{len(frame_ids)})")
        if any(not key for key in camera_keys):
            raise ValueError("camera_keys must not contain an empty string (it matches anything)")
        if len(set(view_names)) != len(view_names):
            raise ValueError(f"view_names must be unique: {list(view_names)}")
        unknown = set(raw_views) - set(view_names)
        if unknown:
            raise ValueError(f"raw views {sorted(unknown)} are not in view_names")
        self._entries = [(key, View(name, frame_id, name in raw_views))
                         for key, name, frame_id in zip(camera_keys, view_names, frame_ids)]
        self._cache: dict[str, View | None] = {}

    @property
    def views(self) -> list[View]:
        return [view for _, view in self._entries]

    def lookup(self, camera: str) -> View | None:
        if camera in self._cache:
            return self._cache[camera]
        view = next((v for key, v in self._entries if key in camera), None)
        if len(self._cache) < self._CACHE_MAX:
            self._cache[camera] = view
        return view
