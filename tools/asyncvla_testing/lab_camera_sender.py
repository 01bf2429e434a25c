"""The lab's Jetson camera sender as it behaves in the field, for the camera bridge's field tests.

Written from the description of the lab's two sender generations (not from the bridge's code):

- Generation 1: meta ``{"camera", "timestamp", "send_time", "size"}``, 30 FPS per camera, JPEG
  quality 70, camera names carrying the ZED serial or "OAK".
- Generation 2: meta ``{"camera", "timestamp", "size"}`` (no ``send_time``), triggered capture at
  5 FPS, frames resized to 1280x720, JPEG quality 75, names ``ZED_<serial>_left`` and ``OAK``.
  Each camera's ``timestamp`` is taken right after its own grab, so the views of one trigger
  carry close but different times; 4 worker processes JPEG-encode and send in small batches, so
  frames of different cameras arrive out of timestamp order.
- Both: a ZMQ PUSH socket that *connects* to the bridge, SNDHWM 1000 and SNDTIMEO 5 ms. While
  nobody listens, frames queue on the sender (up to the high-water mark) and arrive as a backlog
  when the bridge (re)starts; past the mark a send times out and that frame is lost.
- The sender stamps with its own clock (``time.time()`` on the Jetson), which can be off from the
  robot PC's by any amount and can step (NTP, reboot): `clock_offset` and `step_clock`.

Every JPEG carries, in a COM segment, the true capture time on this machine's clock and the
camera index, so a test can compare each published stamp with the truth (`true_capture`).
"""
from __future__ import annotations

import json
import random
import struct
import threading
import time

import zmq

from .lab_senders import make_jpeg

ZED_SERIALS = ("41182735", "49429257", "44377151", "49045152")
GEN1_CAMERAS = tuple(f"ZED {s} left" for s in ZED_SERIALS) + ("OAK-D",)
GEN2_CAMERAS = tuple(f"ZED_{s}_left" for s in ZED_SERIALS) + ("OAK",)
_TRUTH = struct.Struct("<4sdI")
_MAGIC = b"TRUE"


def with_truth(jpeg: bytes, capture_true: float, camera_index: int) -> bytes:
    """The JPEG with a COM segment (0xFFFE) right after SOI holding the true capture time."""
    payload = _TRUTH.pack(_MAGIC, capture_true, camera_index)
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def true_capture(jpeg: bytes) -> tuple[float, int] | None:
    """(true capture time, camera index) from a JPEG made by `with_truth`, else None."""
    if jpeg[2:4] != b"\xff\xfe":
        return None
    magic, capture, index = _TRUTH.unpack_from(jpeg, 6)
    return (capture, index) if magic == _MAGIC else None


class LabCameraSender:
    """A Jetson sender thread: `start()`, `step_clock(delta)`, `stop()`; see module docstring."""

    def __init__(self, endpoint: str, generation: int = 1, fps: float | None = None,
                 cameras: tuple[str, ...] | None = None, clock_offset: float = -3.0,
                 same_stamp: bool = False, out_of_order: bool = True,
                 size: tuple[int, int] | None = None, seed: int = 0) -> None:
        if generation not in (1, 2):
            raise ValueError("generation is 1 or 2")
        self.generation = generation
        self.fps = fps or (30.0 if generation == 1 else 5.0)
        self.cameras = cameras or (GEN1_CAMERAS if generation == 1 else GEN2_CAMERAS)
        self.clock_offset = clock_offset
        self.same_stamp = same_stamp
        self.out_of_order = out_of_order
        width, height = size or ((160, 90) if generation == 1 else (1280, 720))
        quality = 70 if generation == 1 else 75
        self._jpegs = [make_jpeg(width, height, seed=seed + i, quality=quality)
                       for i in range(len(self.cameras))]
        self._rng = random.Random(seed)
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.PUSH)
        self._sock.setsockopt(zmq.SNDHWM, 1000)
        self._sock.setsockopt(zmq.SNDTIMEO, 5)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.connect(endpoint)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.sent = 0
        self.lost = 0         # send timed out at the high-water mark
        self.triggers = 0

    def start(self) -> "LabCameraSender":
        self._thread.start()
        return self

    def step_clock(self, delta: float) -> float:
        """Step the sender's clock by `delta` seconds; returns the true time of the step."""
        with self._lock:
            self.clock_offset += delta
            return time.time()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close(linger=0)
        self._ctx.term()

    def _run(self) -> None:
        period = 1.0 / self.fps
        next_trigger = time.time()
        held: list[tuple[float, list[bytes]]] = []
        while not self._stop.is_set():
            now = time.time()
            if now < next_trigger:
                time.sleep(min(0.002, next_trigger - now))
                continue
            if self.same_stamp:
                with self._lock:  # one stamp for the whole trigger, on the clock in force now
                    now = time.time()
            next_trigger += period
            self.triggers += 1
            frames = []
            for index, (camera, jpeg) in enumerate(zip(self.cameras, self._jpegs)):
                # Each camera's time is read right after its own grab, unless the cameras share
                # the trigger's stamp; read under the lock so a clock step splits frames cleanly.
                with self._lock:
                    grab = now if self.same_stamp else time.time()
                    sender_time = grab + self.clock_offset
                data = with_truth(jpeg, grab, index)
                meta = {"camera": camera, "timestamp": sender_time}
                if self.generation == 1:
                    meta["send_time"] = sender_time + 0.002
                meta["size"] = len(data)
                # A worker needs 1-8 ms to encode; the batch goes out in encode-finish order.
                encoded = grab + self._rng.uniform(0.001, 0.008)
                frames.append((encoded, [json.dumps(meta).encode(), data]))
            if self.out_of_order:
                frames.sort(key=lambda f: f[0])
                # Now and then a worker's batch waits for the next trigger.
                ready = held + [f for f in frames if self._rng.random() > 0.1]
                held = [f for f in frames if f not in ready]
            else:
                ready = frames
            for _, parts in ready:
                self._send(parts)

    def _send(self, parts: list[bytes]) -> None:
        try:
            self._sock.send_multipart(parts)
            self.sent += 1
        except zmq.Again:
            self.lost += 1
