"""Newest camera frame per view, and the rule for when a set of views may feed the VLM.

Frames are kept encoded (JPEG bytes) and decoded only when a VL update takes them: at 5 views x
30 FPS, decoding every frame would cost more CPU than the updates that use one in ten.
A set is refused — never silently filled with old frames — when a view is missing, when a view's
frame is older than `max_frame_age`, or when the views are further apart than `max_skew` (the
VLM node's freshness.max_frame_age and freshness.max_view_skew).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from asyncvla_common.image_conversion import (COMPRESSED_FORMATS, ImageConverter,
                                              builtin_compressed_to_rgb, builtin_raw_to_rgb)


@dataclass(frozen=True)
class StoredFrame:
    stamp_ns: int
    encoding: str  # "jpeg"/"png" (compressed bytes) or "rgb8"/"bgr8"/"mono8" (raw)
    data: bytes
    width: int = 0
    height: int = 0
    step: int = 0  # raw row length in bytes (sensor_msgs/Image.step); 0 = packed rows


@dataclass(frozen=True)
class FrameSet:
    images: list[np.ndarray] | None  # RGB uint8 HxWx3 in view order, or None when refused
    stamps_ns: list[int]
    reason: str


def decode_frame(frame: StoredFrame, converter: ImageConverter | None = None) -> np.ndarray:
    """RGB uint8 HxWx3; ValueError with the cause when the frame cannot be used.

    `converter` picks cv_bridge or the builtin conversion (asyncvla_common.image_conversion);
    without one the builtin conversion decodes."""
    if frame.encoding in COMPRESSED_FORMATS:
        if converter is None:
            return builtin_compressed_to_rgb(frame.data, frame.encoding)
        return converter.compressed_to_rgb(frame.data, frame.encoding)
    if converter is None:
        return builtin_raw_to_rgb(frame.encoding, frame.width, frame.height, frame.data,
                                  frame.step)
    return converter.raw_to_rgb(frame.encoding, frame.width, frame.height, frame.data,
                                frame.step)


class FrameStore:
    """Thread-safe: image callbacks `put`, the update timer `collect`s."""

    def __init__(self, views: list[str], min_size: int = 28,
                 converter: ImageConverter | None = None) -> None:
        if not views:
            raise ValueError("at least one view is needed")
        self.views = list(views)
        self.min_size = min_size
        self.converter = converter
        self._frames: dict[str, StoredFrame] = {}
        self._lock = threading.Lock()
        self.received = {v: 0 for v in views}
        self.dropped: dict[str, int] = {}

    def _drop(self, key: str) -> None:
        self.dropped[key] = self.dropped.get(key, 0) + 1

    def put(self, view: str, frame: StoredFrame) -> None:
        with self._lock:
            self.received[view] = self.received.get(view, 0) + 1
            old = self._frames.get(view)
            if old is not None and frame.stamp_ns < old.stamp_ns:
                self._drop("out_of_order")
                return
            self._frames[view] = frame

    def newest_stamps(self) -> dict[str, int]:
        with self._lock:
            return {v: f.stamp_ns for v, f in self._frames.items()}

    def collect(self, now_ns: int, max_frame_age: float, max_skew: float) -> FrameSet:
        with self._lock:
            frames = [self._frames.get(v) for v in self.views]
        missing = [v for v, f in zip(self.views, frames) if f is None]
        if missing:
            return FrameSet(None, [], f"no frame yet from view(s) {', '.join(missing)}")
        stamps = [f.stamp_ns for f in frames]
        ages = [(now_ns - s) / 1e9 for s in stamps]
        stale = [f"{v} ({a * 1e3:.0f} ms)" for v, a in zip(self.views, ages) if a > max_frame_age]
        if stale:
            return FrameSet(None, stamps, f"stale view(s): {', '.join(stale)}; "
                                          f"freshness.max_frame_age "
                                          f"{max_frame_age * 1e3:.0f} ms")
        skew = (max(stamps) - min(stamps)) / 1e9
        if skew > max_skew:
            return FrameSet(None, stamps, f"views {skew * 1e3:.0f} ms apart "
                                          f"(freshness.max_view_skew {max_skew * 1e3:.0f} ms)")
        images = []
        for view, frame in zip(self.views, frames):
            try:
                image = decode_frame(frame, self.converter)
            except ValueError as exc:
                self._drop("undecodable")
                return FrameSet(None, stamps, f"view {view}: {exc}")
            if min(image.shape[:2]) < self.min_size:
                self._drop("too_small")
                return FrameSet(None, stamps, f"view {view}: image {image.shape[1]}x"
                                              f"{image.shape[0]} is smaller than {self.min_size} px")
            images.append(image)
        return FrameSet(images, stamps, "")
