"""ROS-free parts of the VLM node: frame store rules, worker, VL payload codec."""
from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from asyncvla_core.vl_payload import (DTYPE_BFLOAT16, DTYPE_FLOAT16, decode_features,
                                      encode_features)
from asyncvla_vlm_node.frame_store import FrameStore, StoredFrame, decode_frame
from asyncvla_vlm_node.vl_worker import VLWorker

MS = 1_000_000


def jpeg(w=64, h=48, color=(10, 200, 30)) -> bytes:
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = color  # BGR
    return cv2.imencode(".jpg", img)[1].tobytes()


def test_collect_returns_rgb_frames_in_view_order():
    store = FrameStore(["a", "b"])
    store.put("b", StoredFrame(100 * MS, "jpeg", jpeg(color=(255, 0, 0))))
    store.put("a", StoredFrame(110 * MS, "jpeg", jpeg(color=(0, 0, 255))))
    fs = store.collect(200 * MS, max_frame_age=0.5, max_skew=0.05)
    assert fs.reason == "" and fs.stamps_ns == [110 * MS, 100 * MS]
    assert fs.images[0][0, 0, 0] > 200 and fs.images[1][0, 0, 2] > 200  # RGB order


@pytest.mark.parametrize("frames, expect", [
    ({"a": 100}, "no frame yet from view(s) b"),
    ({"a": 100, "b": 100 - 900}, "stale view(s): b"),
    ({"a": 100, "b": 100 - 300}, "apart"),
])
def test_collect_refuses_missing_stale_and_skewed_views(frames, expect):
    store = FrameStore(["a", "b"])
    for view, ms in frames.items():
        store.put(view, StoredFrame(ms * MS, "jpeg", jpeg()))
    fs = store.collect(150 * MS, max_frame_age=0.5, max_skew=0.2)
    assert fs.images is None and expect in fs.reason


def test_bad_images_are_refused_not_raised():
    store = FrameStore(["a"])
    store.put("a", StoredFrame(0, "jpeg", b"\xff\xd8 not a jpeg"))
    assert "undecodable" in store.collect(0, 1.0, 1.0).reason
    store.put("a", StoredFrame(1, "jpeg", jpeg(w=8, h=8)))
    assert "smaller" in store.collect(1, 1.0, 1.0).reason
    store.put("a", StoredFrame(2, "rgb8", b"\x00" * 10, width=4, height=4))
    assert "needs 48 bytes" in store.collect(2, 1.0, 1.0).reason
    assert store.dropped == {"undecodable": 2, "too_small": 1}


def test_a_corrupted_frame_is_a_counted_drop_with_the_cause():
    """A JPEG whose scan was cut short (headers intact, EOI present): refused, not fed to the VLM
    as a grey-filled picture; the next good frame is used again."""
    good = jpeg(color=(40, 90, 200))
    sos = good.index(b"\xff\xda")
    store = FrameStore(["a"])
    store.put("a", StoredFrame(0, "jpeg", good[:sos + 30] + b"\xff\xd9"))
    refused = store.collect(0, 1.0, 1.0)
    assert refused.images is None
    assert "view a" in refused.reason and "corrupted or undecodable jpeg" in refused.reason
    assert store.dropped == {"undecodable": 1}
    store.put("a", StoredFrame(1, "jpeg", good))
    assert store.collect(1, 1.0, 1.0).images is not None
    assert store.dropped == {"undecodable": 1}


def test_raw_encodings_decode_to_rgb():
    bgr = np.zeros((2, 3, 3), np.uint8)
    bgr[..., 0] = 255
    rgb = decode_frame(StoredFrame(0, "bgr8", bgr.tobytes(), 3, 2))
    assert rgb[0, 0].tolist() == [0, 0, 255]
    with pytest.raises(ValueError, match="unsupported"):
        decode_frame(StoredFrame(0, "yuv422", b"", 1, 1))


def test_worker_runs_one_job_at_a_time_and_survives_errors():
    results, errors, gate = [], [], threading.Event()

    def run(job):
        gate.wait(2)
        if job == "boom":
            raise RuntimeError("boom")
        return job * 2

    worker = VLWorker(run, lambda j, r: results.append(r), lambda j, e: errors.append(str(e)))
    assert worker.try_submit("boom")
    assert not worker.try_submit("x")  # busy
    gate.set()
    deadline = time.monotonic() + 2
    while worker.busy and time.monotonic() < deadline:
        time.sleep(0.01)
    assert errors == ["boom"]
    assert worker.try_submit("ab")
    while not results and time.monotonic() < deadline + 2:
        time.sleep(0.01)
    worker.stop()
    assert results == ["abab"]


@pytest.mark.parametrize("dtype, code, tol", [("float32", 0, 0), ("float16", DTYPE_FLOAT16, 1e-3),
                                              ("bfloat16", DTYPE_BFLOAT16, 8e-3)])
def test_payload_round_trip(dtype, code, tol):
    x = np.random.default_rng(0).standard_normal((8, 64)).astype(np.float32)
    data, got_code = encode_features(x, dtype)
    assert got_code == code
    np.testing.assert_allclose(decode_features(data, 8, 64, code), x, atol=tol * 4, rtol=tol)


def test_payload_errors():
    with pytest.raises(ValueError, match="NaN"):
        encode_features(np.array([[np.nan]]))
    with pytest.raises(ValueError, match="budget"):
        encode_features(np.zeros((600, 1024)), "float16")
    with pytest.raises(ValueError, match="overflow"):
        encode_features(np.array([[1e6]]), "float16")
    with pytest.raises(ValueError, match="needs"):
        decode_features(b"\x00" * 10, 2, 4, DTYPE_FLOAT16)


def test_store_decodes_padded_raw_rows_through_the_node_converter():
    from asyncvla_common.image_conversion import ImageConverter

    rgb = np.random.default_rng(3).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    step = 40 * 3 + 8  # sensor_msgs/Image rows padded to `step` bytes
    padded = np.zeros((30, step), np.uint8)
    padded[:, :120] = rgb.reshape(30, 120)
    store = FrameStore(["a"], converter=ImageConverter())
    store.put("a", StoredFrame(0, "rgb8", padded.tobytes(), 40, 30, step))
    fs = store.collect(0, 1.0, 1.0)
    assert fs.reason == "" and np.array_equal(fs.images[0], rgb)
    assert store.converter.frame_fallbacks == 0
