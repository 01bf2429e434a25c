"""Camera bridge as a real process: a ZMQ PUSH peer (the Jetson) and an rclpy subscriber.

One test runs the whole life of a bridge: good frames from two cameras with every published
field checked (JPEG bytes passed through, decoded RGB where asked, stamps, frame ids), a fuzz
pass whose drop counters must match exactly, good frames again, and a clean SIGINT shutdown.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))

from asyncvla_testing.bridge_harness import (domain_id, drops, start_bridge,  # noqa: E402
                                             wait_diagnostics)
from asyncvla_testing.lab_senders import CameraSender, camera_parts, make_jpeg  # noqa: E402
from asyncvla_testing.ros_listener import RosListener  # noqa: E402

OFFSET = 3.5  # the Jetson's clock is 3.5 s behind ours
CAMERAS = {"front": "ZED_41182735_left", "top": "OAK-D-PRO"}
FRAMES = {"front": "front_optical", "top": "top_optical"}
COMPRESSED = {v: f"/cams/{v}/image_raw/compressed" for v in CAMERAS}
RAW_TOP = "/cams/top/image_raw"


def stamp_s(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


class Jetson:
    def __init__(self, endpoint: str) -> None:
        self.sender = CameraSender(endpoint)
        self.jpegs = [make_jpeg(320, 240, seed=s) for s in range(4)]
        self.k = 0

    def frame(self, view: str, age: float = 0.004) -> dict:
        """A frame captured `age` s ago (local), stamped with the Jetson's clock."""
        capture_local = time.time() - age
        self.k += 1
        return {"view": view, "jpeg": self.jpegs[self.k % len(self.jpegs)],
                "timestamp": capture_local - OFFSET, "capture_local": capture_local}

    def send(self, f: dict) -> None:
        self.sender.send(camera_parts(CAMERAS[f["view"]], f["timestamp"], f["jpeg"],
                                      send_time=f["timestamp"] + 0.003))


def check_frames(ros, sent: list[dict], start: dict[str, int]) -> None:
    import cv2

    for view in CAMERAS:
        mine = [f for f in sent if f["view"] == view]
        msgs = ros[COMPRESSED[view]].wait_for(start[view] + len(mine), 10)[start[view]:]
        assert len(msgs) == len(mine)
        raws = (ros[RAW_TOP].wait_for(start["raw"] + len(mine), 10)[start["raw"]:]
                if view == "top" else [None] * len(mine))
        for f, msg, raw in zip(mine, msgs, raws):
            assert msg.format == "jpeg" and msg.header.frame_id == FRAMES[view]
            assert bytes(msg.data) == f["jpeg"]  # passed through, not re-encoded
            lag = stamp_s(msg.header.stamp) - f["capture_local"]
            assert 0.0 <= lag < 0.05, lag
            if raw is not None:
                assert raw.header == msg.header and raw.encoding == "rgb8"
                assert (raw.width, raw.height, raw.step, raw.is_bigendian) == (320, 240, 960, 0)
                expected = cv2.imdecode(np.frombuffer(f["jpeg"], np.uint8), cv2.IMREAD_COLOR)
                got = np.frombuffer(bytes(raw.data), np.uint8).reshape(240, 320, 3)
                np.testing.assert_array_equal(got, expected[:, :, ::-1])


def test_camera_bridge_end_to_end(processes):
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import CompressedImage, Image

    proc, endpoint = start_bridge(processes, "camera", {
        "wire": {"port": 0}, "topics": {"prefix": "/cams/"},
        "views": {"camera_keys": ["41182735", "OAK"], "names": ["front", "top"],
                  "frame_ids": [FRAMES["front"], FRAMES["top"]]},
        "raw": {"publish": True, "views": ["top"]}, "reporting": {"diagnostics_period": 0.2}})
    assert endpoint.startswith("tcp://127.0.0.1:")
    jetson = Jetson(endpoint)
    topics = {COMPRESSED["front"]: CompressedImage, COMPRESSED["top"]: CompressedImage,
              RAW_TOP: Image, "/diagnostics": DiagnosticArray}
    with RosListener(domain_id(processes), topics) as ros:
        received = 0
        deadline = time.monotonic() + 20
        while (not len(ros[COMPRESSED["front"]]) or not len(ros[RAW_TOP])) \
                and time.monotonic() < deadline:
            for view in CAMERAS:
                jetson.send(jetson.frame(view))
                received += 1
            time.sleep(0.05)
        time.sleep(0.3)
        warmup = received
        assert ros.node.count_publishers("/cams/front/image_raw") == 0  # raw only for "top"
        start = {v: len(ros[COMPRESSED[v]]) for v in CAMERAS} | {"raw": len(ros[RAW_TOP])}
        warm_received = sum(start[v] for v in CAMERAS)
        sent = []
        for i in range(40):
            f = jetson.frame("front" if i % 2 else "top")
            jetson.send(f)
            sent.append(f)
            time.sleep(1 / 150)  # 5 cameras x 30 FPS
        received += len(sent)
        check_frames(ros, sent, start)

        # Fuzz: every bad input must be dropped once, under the expected reason.
        rng = np.random.default_rng(11)
        expected: dict[str, int] = {}
        good = 0
        last = {v: [f for f in sent if f["view"] == v][-1] for v in CAMERAS}
        small = make_jpeg(32, 24, seed=9)
        bad_component = bytearray(small)
        bad_component[bytes(small).index(b"\xff\xda") + 5] = 0x77
        # The scan cut short and closed with EOI: every header is intact, only the strict decode
        # sees that the image data ends early (OpenCV alone would publish it grey-filled).
        sos = bytes(small).index(b"\xff\xda")
        cut_scan = bytes(small[:sos + 20]) + b"\xff\xd9"

        def bad(reason: str, parts: list[bytes]) -> None:
            expected[reason] = expected.get(reason, 0) + 1
            jetson.sender.send(parts)

        def meta(**kw) -> bytes:
            m = {"camera": CAMERAS["front"], "timestamp": time.time() - OFFSET,
                 "send_time": time.time() - OFFSET, "size": len(small)}
            m.update(kw)
            return json.dumps({k: v for k, v in m.items() if v is not ...}).encode()

        for i in range(3000):
            kind = i % 10
            if kind == 0:
                n = [1, 3, 4][i % 3]
                bad("parts", [rng.bytes(int(rng.integers(0, 50))) for _ in range(n)])
            elif kind == 1:  # random bytes, JSON that is not an object, invalid UTF-8
                bad("json", [[rng.bytes(int(rng.integers(0, 80))), b"[1,2]", b"\xff\xfe{}",
                              b"7"][i % 4], small])
            elif kind == 2:
                bad("meta", [[meta(camera=...), meta(timestamp="x"), meta(timestamp=math.nan),
                              meta(size=...), meta(size=1.5), meta(camera=5)][i % 6], small])
            elif kind == 3:
                bad("size", [meta(size=len(small) + int(rng.integers(1, 100))), small])
            elif kind == 4:  # random bytes, or a JPEG cut short, with a consistent size
                body = rng.bytes(int(rng.integers(0, 3000))) if i % 2 else \
                    small[:int(rng.integers(0, len(small) - 1))]
                bad("jpeg", [meta(size=len(body)), body])
            elif kind == 5:  # well-formed headers, undecodable: caught on the raw view only
                body = bytes(bad_component) if i % 20 == 5 else cut_scan
                bad("jpeg_decode", [meta(camera=CAMERAS["top"], size=len(body)), body])
            elif kind == 6:
                bad("unknown_camera", [meta(camera=f"ZED_{rng.integers(1e7, 9e7)}"), small])
            elif kind == 7:  # the same frame again, or an older one (2 s older: stale), per view
                view = ["front", "top"][i % 2]
                back = float(rng.choice([0.0, 0.02, 2.0]))
                old = last[view]["timestamp"] - back
                bad("late" if back > 0.25 else "reordered",
                    camera_parts(CAMERAS[view], old, small))
            elif kind == 8:  # captured in the Jetson's future: no delay explains it
                bad("clock_suspect", camera_parts(CAMERAS["front"], time.time() - OFFSET + 60
                                                  + float(rng.uniform(0, 1e5)), small))
            else:  # good frames in between, at twice the lab's total frame rate
                f = jetson.frame(["front", "top"][(i // 12) % 2])
                jetson.send(f)
                last[f["view"]] = f
                good += 1
                time.sleep(1 / 300)
        total_bad = sum(expected.values())
        wait_diagnostics(ros, "camera_bridge", lambda v: int(v["received"]) ==
                         received + good + total_bad, 20)
        time.sleep(0.3)  # the last publications reach the listener
        start = {v: len(ros[COMPRESSED[v]]) for v in CAMERAS} | {"raw": len(ros[RAW_TOP])}
        after = []
        for i in range(20):
            f = jetson.frame(["front", "top"][i % 2])
            jetson.send(f)
            after.append(f)
            time.sleep(1 / 150)
        diag = wait_diagnostics(ros, "camera_bridge", lambda v: int(v["received"]) ==
                                received + good + total_bad + len(after), 20)
        got = drops(diag)
        # Nothing is published before the clock offset is confirmed (0.2 s of warm-up frames).
        settling = got.pop("clock_settling", 0)
        assert 0 < settling < warmup
        assert got == expected, (got, expected)
        assert int(diag["drops_total"]) == total_bad + settling
        assert int(diag["published"]) == warmup - settling + len(sent) + good + len(after)
        assert int(diag["thread_errors"]) == 0 and diag["clock_jumps"] == "0"
        assert diag["front.resolution"] == "320x240" and diag["top.resolution"] == "320x240"
        # The raw Images came from one named backend (cv_bridge only where it imports and
        # passes its probe) and no frame needed the builtin fallback.
        assert diag["image_conversion"] in ("cv_bridge", "builtin")
        assert diag["image_conversion_fallbacks"] == "0"
        assert proc.alive()
        total = sum(len(ros[COMPRESSED[v]]) for v in CAMERAS)
        assert total - warm_received == len(sent) + good + len(after)
        check_frames(ros, after, start)

    jetson.sender.close()
    assert proc.stop(timeout=10) == 0
    assert "shut down cleanly" in proc.output() and "Traceback" not in proc.output()
