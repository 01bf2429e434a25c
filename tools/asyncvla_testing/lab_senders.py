"""Stand-ins for the lab's senders, speaking the exact wire formats the bridges README documents.

Used by the bridge integration tests and tools/bench/bench_bridges.py. Deliberately written from
the format description with `struct`/`json`, not with the bridges' own `wire` parsers, so a
shared misunderstanding cannot make a test pass.
"""
from __future__ import annotations

import json
import socket
import struct

import numpy as np
import zmq

ROBOT_STRUCT = struct.Struct("<ddf12f")
SENSOR_RECORD_HEADER = struct.Struct("<ddf")
ALINE_LENGTH = 1025


def make_jpeg(width: int, height: int, seed: int, quality: int = 70) -> bytes:
    """A JPEG of a smooth random pattern (compresses like a camera image, not like noise)."""
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(2, height // 16), max(2, width // 16), 3),
                         dtype=np.uint8)
    img = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    noise = rng.integers(0, 24, size=img.shape, dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", cv2.add(img, noise), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def camera_parts(camera: str, timestamp: float, jpeg: bytes, send_time: float | None = None,
                 size: int | None = None) -> list[bytes]:
    meta = {"camera": camera, "timestamp": timestamp,
            "send_time": timestamp if send_time is None else send_time,
            "size": len(jpeg) if size is None else size}
    return [json.dumps(meta).encode("utf-8"), jpeg]


def robot_payload(origin_ts: float, send_ts: float, force: float, joints_deg, pose) -> bytes:
    return ROBOT_STRUCT.pack(origin_ts, send_ts, force, *joints_deg, *pose)


def sensor_datagram(records) -> bytes:
    """records: iterable of (ts, send_ts, force, aline of 1025 float32)."""
    records = list(records)
    out = [struct.pack("<I", len(records))]
    for ts, send_ts, force, aline in records:
        aline = np.asarray(aline, dtype="<f4")
        assert aline.shape == (ALINE_LENGTH,)
        out.append(SENSOR_RECORD_HEADER.pack(ts, send_ts, force))
        out.append(aline.tobytes())
    return b"".join(out)


class CameraSender:
    """The Jetson: ZMQ PUSH connecting to the bridge's bound PULL socket."""

    def __init__(self, endpoint: str) -> None:
        self._ctx = zmq.Context()
        self.sock = self._ctx.socket(zmq.PUSH)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, 0)  # never drop or block in tests: queue everything
        self.sock.connect(endpoint)

    def send(self, parts: list[bytes]) -> None:
        self.sock.send_multipart(parts)

    def close(self) -> None:
        self.sock.close(linger=0)
        self._ctx.term()


class RobotPublisher:
    """The robot PC: ZMQ PUB bound to a free loopback port; `endpoint` is for the bridge."""

    def __init__(self) -> None:
        self._ctx = zmq.Context()
        self.sock = self._ctx.socket(zmq.PUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, 0)  # PUB drops at the HWM; unlimited in tests
        port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"

    def send(self, parts: list[bytes]) -> None:
        self.sock.send_multipart(parts)

    def close(self) -> None:
        self.sock.close(linger=0)
        self._ctx.term()


class SensorSender:
    """The sensor PC: UDP datagrams to the bridge's port on loopback."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addr = (host, port)

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.addr)

    def close(self) -> None:
        self.sock.close()
