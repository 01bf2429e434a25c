"""Wire parsers of the three bridges (wire/camera.py, wire/robot.py, wire/sensor.py), no ROS.

Good inputs are packed here with struct/json straight from the documented formats (the package README), not with the
parsers' own constants.
"""
from __future__ import annotations

import json
import math
import os
import struct
import sys
import time

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))

from asyncvla_testing.lab_senders import make_jpeg  # noqa: E402

from asyncvla_bridges.receive_loop import ReceiveLoop  # noqa: E402
from asyncvla_bridges.wire.camera import (ViewMap, decode_jpeg_rgb, jpeg_info,  # noqa: E402
                                              parse_camera_message)
from asyncvla_bridges.wire.errors import WireError  # noqa: E402
from asyncvla_bridges.wire.robot import parse_robot_message  # noqa: E402
from asyncvla_bridges.wire.sensor import finite_mask, parse_sensor_datagram  # noqa: E402

JPEG = make_jpeg(64, 48, seed=1)


def meta(**overrides) -> bytes:
    m = {"camera": "ZED_41182735_left", "timestamp": 1700000000.25, "send_time": 1700000000.26,
         "size": len(JPEG)}
    m.update(overrides)
    return json.dumps({k: v for k, v in m.items() if v is not ...}).encode()


def reason(fn, *args) -> str:
    with pytest.raises(WireError) as err:
        fn(*args)
    return err.value.reason


# -- camera -----------------------------------------------------------------------------------

def test_camera_good_frame():
    frame = parse_camera_message([meta(), JPEG])
    assert frame.camera == "ZED_41182735_left"
    assert frame.timestamp == 1700000000.25 and frame.send_time == 1700000000.26
    assert frame.jpeg == JPEG
    assert (frame.info.width, frame.info.height, frame.info.components) == (64, 48, 3)
    # send_time is optional; integer times are accepted.
    frame = parse_camera_message([meta(send_time=..., timestamp=17), JPEG])
    assert frame.send_time is None and frame.timestamp == 17.0


@pytest.mark.parametrize("parts, expected", [
    ([meta()], "parts"),
    ([meta(), JPEG, b""], "parts"),
    ([b"{not json", JPEG], "json"),
    ([b"\xff\xfe", JPEG], "json"),
    ([b"[1, 2]", JPEG], "json"),
    ([meta(camera=...), JPEG], "meta"),
    ([meta(camera=7), JPEG], "meta"),
    ([meta(camera=""), JPEG], "meta"),
    ([meta(timestamp="now"), JPEG], "meta"),
    ([meta(timestamp=True), JPEG], "meta"),
    ([meta(timestamp=float("nan")), JPEG], "meta"),
    ([meta(send_time=float("inf")), JPEG], "meta"),
    ([meta(size="12"), JPEG], "meta"),
    ([meta(size=...), JPEG], "meta"),
    ([meta(size=len(JPEG) + 1), JPEG], "size"),
    ([meta(size=len(JPEG) - 10), JPEG[:-10]], "jpeg"),           # truncated: no EOI
    ([meta(size=len(JPEG)), b"\x00" * len(JPEG)], "jpeg"),        # no SOI
    ([meta(size=4), b"\xff\xd8\xff\xd9"], "jpeg"),                # no frame header
    ([meta(size=len(JPEG)), JPEG[:2] + bytes(np.random.default_rng(0).integers(
        0, 256, len(JPEG) - 4, dtype=np.uint8)) + JPEG[-2:]], "jpeg"),  # garbage inside
])
def test_camera_rejects(parts, expected):
    assert reason(parse_camera_message, parts) == expected


def test_jpeg_info_and_decode_agree_with_opencv():
    import cv2

    jpeg = make_jpeg(320, 180, seed=2)
    assert jpeg_info(jpeg).width == 320 and jpeg_info(jpeg).height == 180
    rgb = decode_jpeg_rgb(jpeg, jpeg_info(jpeg))
    bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert rgb.shape == (180, 320, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, bgr[:, :, ::-1])
    # Trailing zero padding after EOI is tolerated by the cheap check.
    assert jpeg_info(jpeg + b"\x00\x00").width == 320


def test_decode_rejects_what_the_cheap_check_cannot_see():
    jpeg = bytearray(make_jpeg(64, 48, seed=3))
    info = jpeg_info(bytes(jpeg))
    # The scan header names a component the frame header does not have: every header segment
    # is well-formed, so only a real decoder notices.
    sos = bytes(jpeg).index(b"\xff\xda")
    jpeg[sos + 5] = 0x77
    assert jpeg_info(bytes(jpeg)) == info
    assert reason(decode_jpeg_rgb, bytes(jpeg), info) == "jpeg_decode"
    assert reason(decode_jpeg_rgb, b"\xff\xd8 not a jpeg \xff\xd9") == "jpeg_decode"


@pytest.mark.parametrize("damage", ["scan_cut_short", "scan_half", "scan_bytes_flipped"])
def test_corrupted_scan_inside_a_well_formed_file_is_refused(damage):
    """The cheap check passes these (every header intact, EOI present); OpenCV alone returns a
    grey-filled image for them; the strict decode refuses them with libjpeg's cause."""
    jpeg = make_jpeg(64, 48, seed=3)
    sos = jpeg.index(b"\xff\xda")
    if damage == "scan_cut_short":
        bad = jpeg[:sos + 20] + b"\xff\xd9"
    elif damage == "scan_half":
        bad = jpeg[:(sos + len(jpeg)) // 2] + b"\xff\xd9"
    else:  # 0xff bytes in the entropy-coded data: markers that may not appear there
        body = bytearray(jpeg)
        body[sos + 40:sos + 44] = b"\xff\xd0\xff\xd5"
        bad = bytes(body)
    assert jpeg_info(bad).width == 64  # the cheap check cannot see it
    with pytest.raises(WireError) as err:
        decode_jpeg_rgb(bad, jpeg_info(bad))
    assert err.value.reason == "jpeg_decode"
    assert "corrupted or undecodable jpeg" in str(err.value)


def test_view_map_substring_first_match_wins():
    views = ViewMap(["41182735", "OAK", "4118"], ["view1", "view5", "viewX"],
                    ["f1", "f5", "fx"], raw_views=["view5"])
    assert views.lookup("ZED_41182735_left").name == "view1"
    assert views.lookup("OAK-D").frame_id == "f5" and views.lookup("OAK-D").publish_raw
    assert not views.lookup("ZED_41182735_left").publish_raw
    assert views.lookup("ZED_4118").name == "viewX"
    assert views.lookup("ZED_99999999") is None


@pytest.mark.parametrize("args", [
    (["a"], ["v1", "v2"], ["f1", "f2"], []),
    (["a", "b"], ["v1", "v1"], ["f1", "f2"], []),
    (["a", ""], ["v1", "v2"], ["f1", "f2"], []),
    (["a"], ["v1"], ["f1"], ["v9"]),
    ([], [], [], []),
])
def test_view_map_rejects_bad_configuration(args):
    with pytest.raises(ValueError):
        ViewMap(*args)


# -- robot ------------------------------------------------------------------------------------

def robot_payload(*values) -> bytes:
    return struct.pack("<ddf12f", *values)


GOOD_ROBOT = (1700000000.5, 1700000000.501, 2.5, 10, -20, 30, 45, 90, 180,
              100, -250.5, 333.25, 90, 0, -45)


def test_robot_good_state_and_units():
    state = parse_robot_message([b"robot_state", robot_payload(*GOOD_ROBOT)])
    assert state.origin_ts == 1700000000.5 and state.send_ts == 1700000000.501
    assert state.force == 2.5
    assert state.joints_deg == (10, -20, 30, 45, 90, 180)
    np.testing.assert_allclose(state.joints_rad, [math.radians(a) for a in
                                                  (10, -20, 30, 45, 90, 180)])
    np.testing.assert_allclose(state.position_m, [0.1, -0.2505, 0.33325])
    assert state.orientation_deg == (90, 0, -45)


@pytest.mark.parametrize("parts, expected", [
    ([b"robot_state"], "parts"),
    ([b"robot_state", robot_payload(*GOOD_ROBOT), b"x"], "parts"),
    ([b"robot_state_debug", robot_payload(*GOOD_ROBOT)], "topic"),
    ([b"robot_state", robot_payload(*GOOD_ROBOT)[:-1]], "size"),
    ([b"robot_state", robot_payload(*GOOD_ROBOT) + b"\x00"], "size"),
    ([b"robot_state", b""], "size"),
    ([b"robot_state", robot_payload(math.nan, *GOOD_ROBOT[1:])], "nonfinite"),
    ([b"robot_state", robot_payload(*GOOD_ROBOT[:5], math.inf, *GOOD_ROBOT[6:])], "nonfinite"),
    ([b"robot_state", robot_payload(*GOOD_ROBOT[:14], math.nan)], "nonfinite"),
])
def test_robot_rejects(parts, expected):
    assert reason(parse_robot_message, parts) == expected


# -- sensor -----------------------------------------------------------------------------------

def datagram(n: int, seed: int = 0, count: int | None = None) -> tuple[bytes, list]:
    rng = np.random.default_rng(seed)
    recs = [(1700000000.0 + i / 650, 1700000000.01 + i / 650, float(rng.normal()),
             rng.normal(size=1025).astype("<f4")) for i in range(n)]
    body = b"".join(struct.pack("<ddf", ts, st, f) + a.tobytes() for ts, st, f, a in recs)
    return struct.pack("<I", n if count is None else count) + body, recs


def test_sensor_good_datagram():
    data, recs = datagram(3)
    batch = parse_sensor_datagram(data)
    assert len(batch) == 3
    for i, (ts, st, f, aline) in enumerate(recs):
        assert batch.ts[i] == ts and batch.send_ts[i] == st
        assert batch.force[i] == np.float32(f)
        np.testing.assert_array_equal(batch.alines[i], aline)
    assert finite_mask(batch).all()


@pytest.mark.parametrize("make, expected", [
    (lambda: b"", "size"),
    (lambda: b"\x01\x00", "size"),
    (lambda: struct.pack("<I", 0), "empty"),
    (lambda: datagram(2)[0][:-1], "size"),
    (lambda: datagram(2)[0] + b"\x00", "size"),
    (lambda: datagram(2, count=3)[0], "size"),
    (lambda: datagram(2, count=2**32 - 1)[0], "size"),
])
def test_sensor_rejects(make, expected):
    assert reason(parse_sensor_datagram, make()) == expected


def test_sensor_finite_mask_flags_single_records():
    data, _ = datagram(4)
    raw = bytearray(data)
    struct.pack_into("<f", raw, 4 + 16, math.nan)                  # record 0 force
    struct.pack_into("<f", raw, 4 + 2 * 4120 + 20 + 4 * 1024, math.inf)  # record 2, last value
    struct.pack_into("<d", raw, 4 + 3 * 4120, math.nan)            # record 3 ts
    mask = finite_mask(parse_sensor_datagram(bytes(raw)))
    assert mask.tolist() == [False, True, False, False]


# -- receive loop -------------------------------------------------------------------------------

def test_receive_loop_survives_exceptions_and_stops():
    calls, errors = [], []

    def step():
        calls.append(1)
        if len(calls) % 2:
            raise RuntimeError("bad message")
        time.sleep(0.001)

    loop = ReceiveLoop("t", step, errors.append, error_backoff=0.0)
    loop.start()
    deadline = time.monotonic() + 5
    while len(calls) < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert loop.alive
    assert loop.stop(timeout=2.0) and not loop.alive
    assert len(calls) >= 50 and loop.errors == len(errors) >= 25
